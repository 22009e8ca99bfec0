"""Twins of TrivialAugmentWide (one of 14 PIL operations per image, at a random magnitude) and
RandAugment (``num_ops`` of them, at one fixed magnitude).

On a PIL image every operation of torchvision's TrivialAugmentWide is PIL's own (``Image.transform``
with an affine matrix, ``rotate``, ``ImageEnhance``, ``ImageOps``), so the twin calls the same PIL
code and is exact; the affine matrix is computed here as torchvision computes it (the inverse of
translate . centre . rotate-shear . centre^-1, mapping output pixels to input ones). AutoAugment
draws the same operations in learned policies and has no twin yet.
"""

import math

import numpy as np

from .base import PIL_FILTERS, Twin, interpolation_name

#: TrivialAugmentWide's operations: (magnitudes of ``bins`` steps or None, signed), in torchvision's order.
SPACE = {
    "Identity": (lambda bins: None, False),
    "ShearX": (lambda bins: np.linspace(0.0, 0.99, bins, dtype=np.float32), True),
    "ShearY": (lambda bins: np.linspace(0.0, 0.99, bins, dtype=np.float32), True),
    "TranslateX": (lambda bins: np.linspace(0.0, 32.0, bins, dtype=np.float32), True),
    "TranslateY": (lambda bins: np.linspace(0.0, 32.0, bins, dtype=np.float32), True),
    "Rotate": (lambda bins: np.linspace(0.0, 135.0, bins, dtype=np.float32), True),
    "Brightness": (lambda bins: np.linspace(0.0, 0.99, bins, dtype=np.float32), True),
    "Color": (lambda bins: np.linspace(0.0, 0.99, bins, dtype=np.float32), True),
    "Contrast": (lambda bins: np.linspace(0.0, 0.99, bins, dtype=np.float32), True),
    "Sharpness": (lambda bins: np.linspace(0.0, 0.99, bins, dtype=np.float32), True),
    "Posterize": (lambda bins: (8 - np.round(np.arange(bins) / ((bins - 1) / 6))).astype(np.int32), False),
    "Solarize": (lambda bins: np.linspace(255.0, 0.0, bins, dtype=np.float32), False),
    "AutoContrast": (lambda bins: None, False),
    "Equalize": (lambda bins: None, False),
}


def _steps(high):
    return lambda bins: np.linspace(0.0, high, bins, dtype=np.float32)


def rand_augment_space(height, width):
    """RandAugment's operations, in torchvision's order; translations scale with the image."""
    return {
        "Identity": (lambda bins: None, False),
        "ShearX": (_steps(0.3), True), "ShearY": (_steps(0.3), True),
        "TranslateX": (_steps(150.0 / 331.0 * width), True), "TranslateY": (_steps(150.0 / 331.0 * height), True),
        "Rotate": (_steps(30.0), True), "Brightness": (_steps(0.9), True), "Color": (_steps(0.9), True),
        "Contrast": (_steps(0.9), True), "Sharpness": (_steps(0.9), True),
        "Posterize": (lambda bins: (8 - np.round(np.arange(bins) / ((bins - 1) / 4))).astype(np.int32), False),
        "Solarize": (lambda bins: np.linspace(255.0, 0.0, bins, dtype=np.float32), False),
        "AutoContrast": (lambda bins: None, False), "Equalize": (lambda bins: None, False),
    }


def _magnitudes(space, op, bins, v2):
    """The op's magnitude steps; v2 states Solarize's threshold as a fraction of 255."""
    if v2 and op == "Solarize":
        return np.linspace(1.0, 0.0, bins, dtype=np.float32)
    return space[op][0](bins)


def inverse_affine_matrix(center, angle, translate, scale, shear):
    """PIL's AFFINE coefficients (output -> input) of rotating by ``angle`` degrees and shearing about ``center``."""
    rot, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
    cx, cy = center
    tx, ty = translate
    a = math.cos(rot - sy) / math.cos(sy)
    b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    c = math.sin(rot - sy) / math.cos(sy)
    d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    m = [x / scale for x in (d, -b, 0.0, -c, a, 0.0)]  # the rotate-shear's inverse (its determinant is 1)
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty)
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty)
    m[2] += cx
    m[5] += cy
    return m


def _fill(fill, bands):
    fill = 0 if fill is None else fill
    values = tuple(fill) if isinstance(fill, (list, tuple)) else (fill,)
    values = values * bands if len(values) == 1 else values
    return tuple(int(v) for v in values) if bands > 1 else int(values[0])


def apply_op(pil, op, magnitude, interpolation="nearest", fill=None, v2=False):
    """One TrivialAugmentWide operation on a PIL image, as torchvision's PIL path does it."""
    from PIL import Image, ImageEnhance, ImageOps

    resample, fillcolor = PIL_FILTERS[interpolation], _fill(fill, len(pil.getbands()))
    if op in ("ShearX", "ShearY", "TranslateX", "TranslateY"):
        shear = math.degrees(math.atan(magnitude))
        center, translate, shears = {
            "ShearX": ([0, 0], [0, 0], [shear, 0.0]), "ShearY": ([0, 0], [0, 0], [0.0, shear]),
            "TranslateX": ([pil.width * 0.5, pil.height * 0.5], [int(magnitude), 0], [0.0, 0.0]),
            "TranslateY": ([pil.width * 0.5, pil.height * 0.5], [0, int(magnitude)], [0.0, 0.0])}[op]
        matrix = inverse_affine_matrix(center, 0.0, translate, 1.0, shears)
        return pil.transform(pil.size, Image.AFFINE, matrix, resample, fillcolor=fillcolor)
    if op == "Rotate":
        return pil.rotate(magnitude, resample, False, None, fillcolor=fillcolor)
    enhancers = {"Brightness": ImageEnhance.Brightness, "Color": ImageEnhance.Color,
                 "Contrast": ImageEnhance.Contrast, "Sharpness": ImageEnhance.Sharpness}
    if op in enhancers:
        return enhancers[op](pil).enhance(1.0 + magnitude)
    if op == "Posterize":
        return ImageOps.posterize(pil, int(magnitude))
    if op == "Solarize":
        return ImageOps.solarize(pil, 255.0 * magnitude if v2 else magnitude)
    if op == "AutoContrast":
        return ImageOps.autocontrast(pil)
    if op == "Equalize":
        return ImageOps.equalize(pil)
    return pil  # Identity


class TrivialAugmentWide(Twin):
    """params: ``op`` (one of :data:`SPACE`) and its ``magnitude`` (signed for the signed ones)."""

    torch_name = "TrivialAugmentWide"
    random = True

    def __init__(self, num_magnitude_bins=31, interpolation="nearest", fill=None, v2=False, seed=None):
        self.num_magnitude_bins, self.fill, self.v2 = num_magnitude_bins, fill, v2
        self.interpolation = interpolation_name(interpolation)
        self._seed(seed)

    def draw(self, rng, shape):
        op = list(SPACE)[int(rng.integers(len(SPACE)))]
        signed = SPACE[op][1]
        values = _magnitudes(SPACE, op, self.num_magnitude_bins, self.v2)
        if values is None:
            return {"op": op, "magnitude": 0.0}
        magnitude = float(values[int(rng.integers(self.num_magnitude_bins))])
        if signed and rng.random() < 0.5:
            magnitude = -magnitude
        return {"op": op, "magnitude": magnitude}

    def apply_pil(self, pil, params):
        return apply_op(pil, params["op"], params["magnitude"], self.interpolation, self.fill, self.v2)


class RandAugment(Twin):
    """params: ``ops``, a list of ``[op, magnitude]``, ``num_ops`` long, applied in order."""

    torch_name = "RandAugment"
    random = True

    def __init__(self, num_ops=2, magnitude=9, num_magnitude_bins=31, interpolation="nearest", fill=None, v2=False,
                 seed=None):
        self.num_ops, self.magnitude, self.num_magnitude_bins = num_ops, magnitude, num_magnitude_bins
        self.fill, self.v2 = fill, v2
        self.interpolation = interpolation_name(interpolation)
        self._seed(seed)

    def draw(self, rng, shape):
        space = rand_augment_space(shape[0], shape[1])
        ops = []
        for _ in range(self.num_ops):
            op = list(space)[int(rng.integers(len(space)))]
            values = _magnitudes(space, op, self.num_magnitude_bins, self.v2)
            magnitude = 0.0 if values is None else float(values[self.magnitude])
            if space[op][1] and rng.integers(2):
                magnitude = -magnitude
            ops.append([op, magnitude])
        return {"ops": ops}

    def apply_pil(self, pil, params):
        for op, magnitude in params["ops"]:
            pil = apply_op(pil, op, magnitude, self.interpolation, self.fill, self.v2)
        return pil
