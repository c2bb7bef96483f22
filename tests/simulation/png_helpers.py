"""Reading PNG files back in the tests, with only zlib and struct: the writer is not trusted."""

from __future__ import annotations

import struct
import zlib
from collections import Counter


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Parse an 8-bit RGB, non-interlaced PNG that uses filter 0: (width, height, rows)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "PNG signature"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, f"CRC of {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert pos == len(data)
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    assert chunks[-1][1] == b""
    width, height, depth, color, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", chunks[0][1]
    )
    assert (depth, color, compression, filtering, interlace) == (8, 2, 0, 0, 0)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = 1 + 3 * width
    assert len(raw) == stride * height
    rows = [raw[r * stride : (r + 1) * stride] for r in range(height)]
    assert all(row[0] == 0 for row in rows), "filter type 0 on every row"
    return width, height, [row[1:] for row in rows]


def colours(rows: list[bytes], x1: int, y1: int, x2: int, y2: int) -> Counter[tuple[int, ...]]:
    """How many pixels of each colour in columns x1 ..< x2 of rows y1 ..< y2."""
    count: Counter[tuple[int, ...]] = Counter()
    for row in rows[y1:y2]:
        for x in range(x1, x2):
            count[tuple(row[3 * x : 3 * x + 3])] += 1
    return count


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(bytes.fromhex(hex_colour.lstrip("#")))  # type: ignore[return-value]
