"""Twins of torchvision's geometric transforms on HWC uint8 images, computed with PIL as torchvision does.

torchvision resizes and rotates a PIL image with PIL itself (``Image.resize`` is antialiased for
bilinear and bicubic), so these twins hand the array to PIL for those two steps and do the rest
(output size, crop box, padding, random draws) in numpy with torchvision's formulas. Crops,
pads and flips are index operations: numpy gives PIL's pixels exactly.
"""

import math

import numpy as np

from .base import (
    PIL_FILTERS,
    Twin,
    hw,
    interpolation_name,
    uniform,
)

PAD_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect", "symmetric": "symmetric"}


def _pair(size):
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    size = tuple(int(s) for s in size)
    return (size[0], size[0]) if len(size) == 1 else size


def resized_size(height, width, size, max_size=None):
    """torchvision's output (height, width) of ``Resize(size, max_size=...)`` on a (height, width) image."""
    short, long = (width, height) if width <= height else (height, width)
    if size is None:
        new_short, new_long = int(max_size * short / long), max_size
    elif isinstance(size, (int, np.integer)) or len(size) == 1:
        requested = int(size if isinstance(size, (int, np.integer)) else size[0])
        new_short, new_long = requested, int(requested * long / short)
        if max_size is not None and new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    else:
        return int(size[0]), int(size[1])
    return (new_long, new_short) if width <= height else (new_short, new_long)


def resize_pil(pil, out_hw, interpolation="bilinear"):
    if tuple(out_hw) == (pil.height, pil.width):
        return pil  # torchvision returns the image untouched
    return pil.resize((out_hw[1], out_hw[0]), resample=PIL_FILTERS[interpolation])


def pad(image, padding, fill=0, padding_mode="constant"):
    """torchvision's ``F.pad`` on a PIL image: padding int, (lr, tb) or (l, t, r, b); negative crops."""
    if isinstance(padding, (int, np.integer)):
        padding = (padding,) * 4
    padding = tuple(int(p) for p in padding)
    left, top, right, bottom = padding * 2 if len(padding) == 2 else padding if len(padding) == 4 else padding * 4
    image = np.asarray(image)
    height, width = hw(image.shape)
    image = image[max(-top, 0):height - max(-bottom, 0), max(-left, 0):width - max(-right, 0)]
    widths = [(max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0))] + [(0, 0)] * (image.ndim - 2)
    if padding_mode == "constant":
        fills = np.broadcast_to(np.asarray(fill, dtype=np.int64), (image.shape[2] if image.ndim == 3 else 1,))
        out = np.empty((image.shape[0] + sum(widths[0]), image.shape[1] + sum(widths[1]), *image.shape[2:]),
                       image.dtype)
        out[...] = fills.astype(image.dtype) if image.ndim == 3 else fills[0]
        out[widths[0][0]:widths[0][0] + image.shape[0], widths[1][0]:widths[1][0] + image.shape[1]] = image
        return out
    return np.pad(image, widths, mode=PAD_MODES[padding_mode])


def crop(image, top, left, height, width):
    """PIL's crop: a box reaching outside the image is filled with zeros."""
    image = np.asarray(image)
    h, w = hw(image.shape)
    if top >= 0 and left >= 0 and top + height <= h and left + width <= w:
        return image[top:top + height, left:left + width]
    return pad(image, (-left, -top, left + width - w, top + height - h))


class Resize(Twin):
    torch_name = "Resize"

    def __init__(self, size, interpolation="bilinear", max_size=None, antialias=True):
        self.size, self.max_size, self.antialias = size, max_size, antialias  # PIL always antialiases
        self.interpolation = interpolation_name(interpolation)

    def apply_pil(self, pil, params=None):
        return resize_pil(pil, resized_size(pil.height, pil.width, self.size, self.max_size), self.interpolation)


class CenterCrop(Twin):
    torch_name = "CenterCrop"

    def __init__(self, size):
        self.size = _pair(size)

    def apply(self, image, params=None):
        image = np.asarray(image)
        ch, cw = self.size
        h, w = hw(image.shape)
        if ch > h or cw > w:  # torchvision pads with zeros, split as (d // 2, (d + 1) // 2)
            dw, dh = max(cw - w, 0), max(ch - h, 0)
            image = pad(image, (dw // 2, dh // 2, (dw + 1) // 2, (dh + 1) // 2))
            h, w = hw(image.shape)
        return crop(image, round((h - ch) / 2.0), round((w - cw) / 2.0), ch, cw)

    def apply_pil(self, pil, params=None):
        (ch, cw), h, w = self.size, pil.height, pil.width
        if ch > h or cw > w:
            from PIL import Image

            return Image.fromarray(self.apply(np.asarray(pil)))
        top, left = round((h - ch) / 2.0), round((w - cw) / 2.0)
        return pil.crop((left, top, left + cw, top + ch))


class Pad(Twin):
    torch_name = "Pad"

    def __init__(self, padding, fill=0, padding_mode="constant"):
        self.padding, self.fill, self.padding_mode = padding, fill, padding_mode

    def apply(self, image, params=None):
        return pad(image, self.padding, self.fill, self.padding_mode)


class RandomCrop(Twin):
    """params: ``top``, ``left`` of the crop in the padded image."""

    torch_name = "RandomCrop"
    random = True

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant", seed=None):
        self.size, self.padding, self.pad_if_needed = _pair(size), padding, pad_if_needed
        self.fill, self.padding_mode = fill, padding_mode
        self._seed(seed)

    def padded_hw(self, shape):
        h, w = hw(shape)
        if self.padding is not None:
            p = self.padding
            p = (p,) * 4 if isinstance(p, (int, np.integer)) else tuple(p) * (2 if len(p) == 2 else 1)
            p = p * 4 if len(p) == 1 else p
            h, w = h + p[1] + p[3], w + p[0] + p[2]
        if self.pad_if_needed:
            h, w = max(h, self.size[0]), max(w, self.size[1])
        return h, w

    def draw(self, rng, shape):
        h, w = self.padded_hw(shape)
        th, tw = self.size
        if h < th or w < tw:
            from msport.data.errors import DataError

            raise DataError(f"RandomCrop{self.size} is larger than the (padded) image ({h}, {w})")
        if (h, w) == (th, tw):
            return {"top": 0, "left": 0}
        return {"top": int(rng.integers(0, h - th + 1)), "left": int(rng.integers(0, w - tw + 1))}

    def apply(self, image, params):
        if self.padding is not None:
            image = pad(image, self.padding, self.fill, self.padding_mode)
        h, w = hw(np.shape(image))
        if self.pad_if_needed and w < self.size[1]:
            image = pad(image, (self.size[1] - w, 0), self.fill, self.padding_mode)
        if self.pad_if_needed and h < self.size[0]:
            image = pad(image, (0, self.size[0] - h), self.fill, self.padding_mode)
        return crop(image, params["top"], params["left"], *self.size)


class RandomResizedCrop(Twin):
    """params: the crop box ``top``, ``left``, ``height``, ``width``, resized to ``size``."""

    torch_name = "RandomResizedCrop"
    random = True

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), interpolation="bilinear",
                 antialias=True, seed=None):
        self.size, self.scale, self.ratio = _pair(size), tuple(scale), tuple(ratio)
        self.interpolation, self.antialias = interpolation_name(interpolation), antialias
        self._seed(seed)

    def draw(self, rng, shape):
        """torchvision's draw: up to 10 tries of a box of area ``scale`` and log-uniform ``ratio``."""
        height, width = hw(shape)
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * uniform(rng, *self.scale)
            aspect = math.exp(uniform(rng, *log_ratio))
            w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                return {"top": int(rng.integers(0, height - h + 1)), "left": int(rng.integers(0, width - w + 1)),
                        "height": h, "width": w}
        in_ratio = width / height  # fallback: the central crop nearest to the allowed ratios
        if in_ratio < min(self.ratio):
            w, h = width, round(width / min(self.ratio))
        elif in_ratio > max(self.ratio):
            w, h = round(height * max(self.ratio)), height
        else:
            w, h = width, height
        return {"top": (height - h) // 2, "left": (width - w) // 2, "height": h, "width": w}

    def apply_pil(self, pil, params):
        top, left = params["top"], params["left"]
        box = pil.crop((left, top, left + params["width"], top + params["height"]))
        return resize_pil(box, self.size, self.interpolation)


class RandomHorizontalFlip(Twin):
    """params: ``flip`` (bool), drawn as torchvision does, ``uniform < p``."""

    torch_name = "RandomHorizontalFlip"
    random = True
    axis = 1

    def __init__(self, p=0.5, seed=None):
        self.p = p
        self._seed(seed)

    def draw(self, rng, shape):
        return {"flip": bool(rng.random() < self.p)}

    def apply(self, image, params):
        image = np.asarray(image)
        return np.ascontiguousarray(np.flip(image, self.axis)) if params["flip"] else image

    def apply_pil(self, pil, params):
        from PIL import Image

        if not params["flip"]:
            return pil
        return pil.transpose(Image.Transpose.FLIP_LEFT_RIGHT if self.axis == 1 else Image.Transpose.FLIP_TOP_BOTTOM)


class RandomVerticalFlip(RandomHorizontalFlip):
    torch_name = "RandomVerticalFlip"
    axis = 0


class RandomRotation(Twin):
    """params: ``angle`` in degrees, counter-clockwise, uniform in ``degrees``; rotated by PIL."""

    torch_name = "RandomRotation"
    random = True

    def __init__(self, degrees, interpolation="nearest", expand=False, center=None, fill=0, seed=None):
        degrees = (-degrees, degrees) if isinstance(degrees, (int, float)) else tuple(degrees)
        self.degrees, self.expand, self.center, self.fill = degrees, expand, center, fill
        self.interpolation = interpolation_name(interpolation)
        self._seed(seed)

    def draw(self, rng, shape):
        return {"angle": uniform(rng, *self.degrees)}

    def apply_pil(self, pil, params):
        bands = len(pil.getbands())
        fill = 0 if self.fill is None else self.fill
        fill = tuple(fill) * (bands if len(tuple(fill)) == 1 else 1) if isinstance(fill, (list, tuple)) \
            else (fill,) * bands
        fill = tuple(int(f) for f in fill) if bands > 1 else int(fill[0])
        return pil.rotate(params["angle"], PIL_FILTERS[self.interpolation], self.expand, self.center, fillcolor=fill)
