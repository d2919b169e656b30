"""A small PNG decoder (stdlib only) for checking screenshots in tests.

Handles what browsers write: 8-bit greyscale, grey+alpha, RGB and RGBA,
non-interlaced, with the five scanline filters. Pixels come back as RGB tuples
(alpha dropped: screenshots are opaque).
"""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Image", "decode", "read_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel


@dataclass(frozen=True, slots=True)
class Image:
    """Decoded pixels, row by row: ``rows[y][x]`` is an ``(r, g, b)`` tuple."""

    width: int
    height: int
    rows: list[list[tuple[int, int, int]]]

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        """The colour at (x, y)."""
        return self.rows[y][x]

    def colours(
        self, box: tuple[int, int, int, int] | None = None
    ) -> Counter[tuple[int, int, int]]:
        """How often each colour occurs inside ``box`` = (left, top, right, bottom), exclusive."""
        left, top, right, bottom = box or (0, 0, self.width, self.height)
        found: Counter[tuple[int, int, int]] = Counter()
        for row in self.rows[top:bottom]:
            found.update(row[left:right])
        return found


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> list[bytearray]:
    stride = width * bpp
    rows: list[bytearray] = []
    previous = bytearray(stride)
    pos = 0
    for _ in range(height):
        kind = raw[pos]
        line = bytearray(raw[pos + 1 : pos + 1 + stride])
        pos += 1 + stride
        if kind == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:  # Up
            for i in range(stride):
                line[i] = (line[i] + previous[i]) & 0xFF
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                up_left = previous[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + _paeth(left, previous[i], up_left)) & 0xFF
        elif kind != 0:
            msg = f"unknown PNG filter type {kind}"
            raise ValueError(msg)
        rows.append(line)
        previous = line
    return rows


def decode(data: bytes) -> Image:
    """Decode a PNG file's bytes."""
    if not data.startswith(_SIGNATURE):
        raise ValueError("not a PNG file")
    pos = len(_SIGNATURE)
    header: tuple[int, ...] | None = None
    idat = bytearray()
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if zlib.crc32(kind + body) != crc:
            msg = f"bad CRC in {kind!r} chunk"
            raise ValueError(msg)
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("PNG without IHDR")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in _CHANNELS or interlace != 0:
        msg = f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}"
        raise ValueError(msg)
    bpp = _CHANNELS[colour]
    lines = _unfilter(zlib.decompress(bytes(idat)), width, height, bpp)
    rows: list[list[tuple[int, int, int]]] = []
    for line in lines:
        if bpp >= 3:
            rows.append([(line[i], line[i + 1], line[i + 2]) for i in range(0, len(line), bpp)])
        else:
            rows.append([(line[i], line[i], line[i]) for i in range(0, len(line), bpp)])
    return Image(width, height, rows)


def read_png(path: Path | str) -> Image:
    """Decode the PNG file at ``path``."""
    return decode(Path(path).read_bytes())
