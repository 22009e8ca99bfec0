"""Can ``Resize`` then ``CenterCrop`` resample only the kept region and still give PIL's pixels? No.

    python bench/data_resize_region.py [--cases 600]

The eval pipeline's antialiased resize computes 256x383 pixels of which CenterCrop keeps 224x224;
``Image.resize(size, box=...)`` resamples a region only, and PIL's filter clips to the image, not
the box, so it could reproduce the full resize. This measures, on random sizes and noise images,
how often it does not, for three ways of asking:

* ``naive box``: the crop's edges in source pixels, as floats;
* ``exact box``: a region only along an axis where every number Pillow computes from the box is
  exact (``in / out`` a binary fraction, the edges and their difference exact in a C float, as
  Pillow takes the box), so each filter weight is the full resize's, the other axis whole and
  cropped after; still not enough, because
* Pillow 13 chooses which pass (horizontal or vertical) to run first from the sizes, the box
  included, and each pass rounds to uint8: the region may run the passes in the other order.
  ``order`` counts the exact-box mismatches where the full resize equals the other order.

Each mismatch is a pixel level or more, which after ToTensor and Normalize is 0.017, far over the
twins' 1e-6: the fused twins keep the full resize (docs/data.md, Speed).
"""

import argparse
import random
from fractions import Fraction

import numpy as np


def resized(h, w, size):
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    return (new_long, new_short) if w <= h else (new_short, new_long)


def exact_edges(in_size, out_size, start, count):
    scale = Fraction(in_size, out_size)
    if out_size == in_size or scale.denominator & (scale.denominator - 1):
        return None
    edges = (start * scale, (start + count) * scale)
    if any(Fraction(float(np.float32(float(v)))) != v for v in (*edges, edges[1] - edges[0])):
        return None
    return tuple(float(v) for v in edges)


def main(argv=None):
    from PIL import Image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=600)
    args = parser.parse_args(argv)
    draws, noise = random.Random(0), np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    counts = {"naive box": [0, 0], "exact box": [0, 0], "order": [0, 0]}
    for _ in range(args.cases):
        h, w = draws.randint(40, 400), draws.randint(40, 400)
        image, size = Image.fromarray(noise[:h, :w]), draws.choice([64, 128, 256, draws.randint(16, 300)])
        (oh, ow), crop = resized(h, w, size), draws.randint(8, min(h, w, size))
        if crop >= min(oh, ow) or (oh, ow) == (h, w):
            continue
        top, left = round((oh - crop) / 2.0), round((ow - crop) / 2.0)
        filt = draws.choice([2, 3])
        full = np.asarray(image.resize((ow, oh), filt).crop((left, top, left + crop, top + crop)))
        sx, sy = w / ow, h / oh
        naive = image.resize((crop, crop), filt, box=(left * sx, top * sy, (left + crop) * sx, (top + crop) * sy))
        counts["naive box"][0] += not np.array_equal(full, np.asarray(naive))
        counts["naive box"][1] += 1
        rows, cols = exact_edges(h, oh, top, crop), exact_edges(w, ow, left, crop)
        if rows is None and cols is None:
            continue
        # a region along each exact axis; a whole axis (cropped after) where it is not exact
        (y0, y1), height, top = (rows, crop, 0) if rows else ((0.0, float(h)), oh, top)
        (x0, x1), width, left = (cols, crop, 0) if cols else ((0.0, float(w)), ow, left)
        region = image.resize((width, height), filt, box=(x0, y0, x1, y1))
        differs = not np.array_equal(full, np.asarray(region.crop((left, top, left + crop, top + crop))))
        counts["exact box"][0] += differs
        counts["exact box"][1] += 1
        if differs:  # the same region, its two passes run explicitly in each order
            h_first = image.resize((width, h), filt, box=(x0, 0, x1, h)).resize(
                (width, height), filt, box=(0, y0, width, y1))
            v_first = image.resize((w, height), filt, box=(0, y0, w, y1)).resize(
                (width, height), filt, box=(x0, 0, x1, height))
            other = v_first if np.array_equal(np.asarray(region), np.asarray(h_first)) else h_first
            counts["order"][0] += np.array_equal(full, np.asarray(other.crop((left, top, left + crop, top + crop))))
            counts["order"][1] += 1
    for name, (bad, total) in counts.items():
        print(f"{name}: {bad} of {total} " + ("equal to the full resize in the other pass order" if name == "order"
                                              else "differ from the full resize then crop"))


if __name__ == "__main__":
    main()
