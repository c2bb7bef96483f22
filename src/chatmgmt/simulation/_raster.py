"""A small pure-Python rasterizer and PNG writer: no image library.

:class:`Canvas` keeps an RGB pixel buffer in a :class:`bytearray` and draws filled rectangles,
Bresenham lines (1 pixel or a square brush, solid or dashed) and text in the 5x7 font of
:mod:`._font`; :meth:`Canvas.to_png` writes it with :mod:`zlib` and :mod:`struct`.
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections.abc import Sequence
from typing import Literal

from . import _font

__all__ = ["Canvas", "png_bytes"]

RGB = tuple[int, int, int]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DIAGONAL = math.sqrt(2.0)


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_bytes(width: int, height: int, rgb: bytes | bytearray) -> bytes:
    """A PNG file of ``width`` × ``height`` 8-bit RGB pixels, rows top to bottom.

    One IDAT chunk; every scanline has filter type 0 (none), which zlib compresses well enough
    for flat chart colours.
    """
    stride = width * 3
    if width < 1 or height < 1 or len(rgb) != stride * height:
        raise ValueError(f"{len(rgb)} bytes is not {width} × {height} RGB pixels")
    raw = b"".join(b"\x00" + rgb[row * stride : (row + 1) * stride] for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB, no interlace
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


class Canvas:
    """``width`` × ``height`` RGB pixels, (0, 0) at the top left; drawing clips at the edges."""

    def __init__(self, width: int, height: int, background: RGB = (255, 255, 255)) -> None:
        if width < 1 or height < 1:
            raise ValueError(f"a canvas needs at least one pixel, not {width} × {height}")
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(background) * (width * height))

    def pixel(self, x: int, y: int) -> RGB:
        """The colour at (x, y)."""
        i = (y * self.width + x) * 3
        return self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]

    def fill_rect(self, x1: int, y1: int, x2: int, y2: int, rgb: RGB) -> None:
        """Fill columns ``x1 ..< x2`` of rows ``y1 ..< y2`` (corners in either order)."""
        if x2 < x1:
            x1, x2 = x2, x1
        if y2 < y1:
            y1, y2 = y2, y1
        x1, x2 = max(0, x1), min(self.width, x2)
        y1, y2 = max(0, y1), min(self.height, y2)
        if x1 >= x2 or y1 >= y2:
            return
        run = bytes(rgb) * (x2 - x1)
        stride = self.width * 3
        start = y1 * stride + x1 * 3
        for _ in range(y1, y2):
            self.pixels[start : start + len(run)] = run
            start += stride

    def rect_outline(self, x1: int, y1: int, x2: int, y2: int, rgb: RGB, width: int = 1) -> None:
        """The edges of the rectangle with corners (x1, y1) and (x2, y2), ``width`` pixels
        centred on them (as an SVG stroke).
        """
        lo = -(width // 2)
        a, b = x1 + lo, x2 + lo
        c, d = y1 + lo, y2 + lo
        self.fill_rect(a, c, b + width, c + width, rgb)  # top
        self.fill_rect(a, d, b + width, d + width, rgb)  # bottom
        self.fill_rect(a, c, a + width, d + width, rgb)  # left
        self.fill_rect(b, c, b + width, d + width, rgb)  # right

    def line(
        self,
        x1: int,
        y1: int,
        x2: int,
        y2: int,
        rgb: RGB,
        width: int = 1,
        dash: Sequence[float] = (),
    ) -> None:
        """A Bresenham line from (x1, y1) to (x2, y2), both ends included."""
        self.polyline([(x1, y1), (x2, y2)], rgb, width, dash)

    def polyline(
        self,
        points: Sequence[tuple[int, int]],
        rgb: RGB,
        width: int = 1,
        dash: Sequence[float] = (),
    ) -> None:
        """Bresenham segments through ``points``, stamped with a ``width``-pixel square brush;
        ``dash`` (on, off, ... pixel lengths, as SVG's stroke-dasharray) runs on across joints.
        """
        pattern = list(dash) * (2 if len(dash) % 2 else 1)
        if pattern and (min(pattern) < 0 or sum(pattern) <= 0):
            raise ValueError(f"bad dash pattern {list(dash)}")
        if len(points) == 1:
            points = [points[0], points[0]]
        travelled = 0.0
        for (xa, ya), (xb, yb) in itertools.pairwise(points):
            travelled = self._segment(xa, ya, xb, yb, rgb, width, pattern, travelled)

    def _segment(
        self,
        x: int,
        y: int,
        xb: int,
        yb: int,
        rgb: RGB,
        width: int,
        pattern: list[float],
        travelled: float,
    ) -> float:
        lo = -(width // 2)
        if not pattern and (x == xb or y == yb):  # axis-parallel: one rectangle
            self.fill_rect(min(x, xb) + lo, min(y, yb) + lo, max(x, xb) + lo + width,
                           max(y, yb) + lo + width, rgb)  # fmt: skip
            return travelled + abs(xb - x) + abs(yb - y)
        period = sum(pattern)
        dx, dy = abs(xb - x), -abs(yb - y)
        sx, sy = (1 if x < xb else -1), (1 if y < yb else -1)
        err = dx + dy
        while True:
            if not pattern or _dash_on(travelled % period, pattern):
                self.fill_rect(x + lo, y + lo, x + lo + width, y + lo + width, rgb)
            if x == xb and y == yb:
                return travelled
            e2 = 2 * err
            moved = 0
            if e2 >= dy:
                err += dy
                x += sx
                moved += 1
            if e2 <= dx:
                err += dx
                y += sy
                moved += 1
            travelled += 1.0 if moved == 1 else _DIAGONAL

    def text_width(self, text: str, dot: int) -> int:
        """Pixels from the left of the first character to the right of the last."""
        return max(0, len(text) * _font.ADVANCE * dot - dot)

    def text(
        self,
        x: int,
        y: int,
        text: str,
        rgb: RGB,
        dot: int = 2,
        anchor: Literal["start", "middle", "end"] = "start",
        *,
        bold: bool = False,
    ) -> None:
        """``text`` in the 5x7 font, each font dot ``dot`` × ``dot`` pixels, standing on the
        baseline ``y`` and starting at, centred on or ending at ``x``.
        """
        width = self.text_width(text, dot)
        left = x if anchor == "start" else x - width // 2 if anchor == "middle" else x - width
        top = y - _font.HEIGHT * dot
        offsets = (0, max(1, dot // 2)) if bold else (0,)
        for i, char in enumerate(text):
            cx = left + i * _font.ADVANCE * dot
            for col, row in _font.glyph(char):
                px, py = cx + col * dot, top + row * dot
                for off in offsets:
                    self.fill_rect(px + off, py, px + off + dot, py + dot, rgb)

    def to_png(self) -> bytes:
        """The canvas as a PNG file."""
        return png_bytes(self.width, self.height, self.pixels)


def _dash_on(pos: float, pattern: list[float]) -> bool:
    for i, length in enumerate(pattern):
        if pos < length:
            return i % 2 == 0
        pos -= length
    return False
