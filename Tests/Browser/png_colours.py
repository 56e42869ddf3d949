#!/usr/bin/env python3
"""Counts exact colours in a PNG screenshot, by vertical band; Python's standard library only (zlib).

    png_colours.py count SHOT.png --band TOP:BOTTOM ... --colour RRGGBB ...
        prints JSON: {"width": W, "height": H, "colours": {"RRGGBB": {"total": N, "bands": [N, ...],
        "first_row": Y, "last_row": Y}}}, each band counting rows TOP <= y < BOTTOM.
    png_colours.py crop SHOT.png OUT.png TOP BOTTOM
        writes rows TOP <= y < BOTTOM as an 8-bit RGB PNG, to look at one part of a tall screenshot.

Decodes what browsers write: 8-bit greyscale, RGB, grey+alpha or RGBA, not interlaced, every PNG row
filter (PNG specification, section 9). Alpha is ignored: a headless screenshot is opaque.
"""

import json
import struct
import sys
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def decode(path):
    """Returns (width, height, rows), each row a bytes object of RGB triples."""
    data = open(path, "rb").read()
    if data[:8] != SIGNATURE:
        raise SystemExit(f"{path}: not a PNG")
    position, compressed, header = 8, [], None
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            compressed.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, colour_type, _, _, interlace = header
    if depth != 8 or colour_type not in CHANNELS or interlace != 0:
        raise SystemExit(f"{path}: unsupported PNG (depth {depth}, colour type {colour_type}, interlace {interlace})")
    channels = CHANNELS[colour_type]
    stride = width * channels
    raw = zlib.decompress(b"".join(compressed))
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:  # Sub
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif kind == 2:  # Up
            for i in range(stride):
                line[i] = (line[i] + previous[i]) & 0xFF
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = previous[i]
                c = previous[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                predictor = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + predictor) & 0xFF
        elif kind != 0:
            raise SystemExit(f"{path}: bad filter type {kind} in row {y}")
        previous = line
        if colour_type == 2:
            rows.append(bytes(line))
        else:
            rgb = bytearray()
            for x in range(width):
                pixel = line[x * channels : (x + 1) * channels]
                rgb += bytes((pixel[0],) * 3) if colour_type in (0, 4) else bytes(pixel[:3])
            rows.append(bytes(rgb))
    return width, height, rows


def count(path, bands, colours):
    width, height, rows = decode(path)
    result = {}
    for colour in colours:
        target = bytes.fromhex(colour)
        per_row = []
        for row in rows:
            # Only whole pixels: a match must start at a multiple of 3.
            hits, start = 0, row.find(target)
            while start >= 0:
                if start % 3 == 0:
                    hits += 1
                    start = row.find(target, start + 3)
                else:
                    start = row.find(target, start + 1)
            per_row.append(hits)
        touched = [y for y, hits in enumerate(per_row) if hits]
        result[colour] = {
            "total": sum(per_row),
            "bands": [sum(per_row[max(0, top) : min(height, bottom)]) for top, bottom in bands],
            "first_row": touched[0] if touched else None,
            "last_row": touched[-1] if touched else None,
        }
    return {"width": width, "height": height, "colours": result}


def crop(path, out, top, bottom):
    width, _, rows = decode(path)
    selected = rows[top:bottom]

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\x00" + row for row in selected)
    header = struct.pack(">IIBBBBB", width, len(selected), 8, 2, 0, 0, 0)
    with open(out, "wb") as file:
        file.write(SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def main(arguments):
    if len(arguments) >= 2 and arguments[0] == "count":
        path, bands, colours, rest = arguments[1], [], [], arguments[2:]
        while rest:
            option, value, rest = rest[0], rest[1], rest[2:]
            if option == "--band":
                top, bottom = value.split(":")
                bands.append((int(top), int(bottom)))
            elif option == "--colour":
                colours.append(value.lower().lstrip("#"))
            else:
                raise SystemExit(f"unknown option {option}")
        print(json.dumps(count(path, bands, colours)))
    elif len(arguments) == 5 and arguments[0] == "crop":
        crop(arguments[1], arguments[2], int(arguments[3]), int(arguments[4]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
