"""Reading the charts back in the tests: PNG pixels through Pillow (matplotlib's own
dependency), SVG through the standard library's XML parser."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

from PIL import Image

SVG = "{http://www.w3.org/2000/svg}"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG image (checks the signature)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "PNG signature"
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def pixels_near(data: bytes, hex_colour: str, *, alpha: float = 1.0, tolerance: int = 8) -> int:
    """How many pixels of a PNG are ``hex_colour`` drawn at ``alpha`` over white."""
    want = [round(c * alpha + 255 * (1 - alpha)) for c in bytes.fromhex(hex_colour.lstrip("#"))]
    with Image.open(io.BytesIO(data)) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24) or []
    return sum(
        count
        for count, rgb in colours
        if all(abs(a - b) <= tolerance for a, b in zip(rgb, want, strict=True))
    )


def svg_texts(svg: str) -> list[str]:
    """Every text of an SVG document, in order."""
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
