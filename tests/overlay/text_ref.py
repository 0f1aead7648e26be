"""The independent reference for tests/overlay/test_text.c: where Pillow's
own FreeType text path puts the ink of `text` in the same font.

    text_ref.py FONT TEXT PX...

For each line height PX (what mms_draw_text takes), the em size it stands
for, read here from the font's own head and hhea tables (unitsPerEm and
the line's ascender to descender), and the ink's bounding box relative to
the line's top-left (its ascender): one line "PX EM X0 Y0 X1 Y1" each,
half-open, in pixels.
"""
import struct
import sys

from PIL import Image, ImageDraw, ImageFont


def tables(data):
    n = struct.unpack(">H", data[4:6])[0]
    out = {}
    for i in range(n):
        tag, _, off, length = struct.unpack(">4sIII", data[12 + 16 * i:28 + 16 * i])
        out[tag.decode("latin-1")] = data[off:off + length]
    return out


def main():
    path, text = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        t = tables(f.read())
    upem = struct.unpack(">H", t["head"][18:20])[0]
    asc, desc = struct.unpack(">hh", t["hhea"][4:8])
    for arg in sys.argv[3:]:
        px = int(arg)
        em = max(1, (px * upem + (asc - desc) // 2) // (asc - desc))
        font = ImageFont.truetype(path, em, layout_engine=ImageFont.Layout.BASIC)
        pad = 4 * px
        im = Image.new("L", (len(text) * 2 * px + 2 * pad, 3 * px + 2 * pad))
        # Anchor "la": (x, y) is the left of the line's ascender, as in mmsd.
        ImageDraw.Draw(im).text((pad, pad), text, fill=255, font=font, anchor="la")
        box = im.getbbox()
        if box is None:
            print(px, em, 0, 0, 0, 0)
        else:
            print(px, em, box[0] - pad, box[1] - pad, box[2] - pad, box[3] - pad)


if __name__ == "__main__":
    main()
