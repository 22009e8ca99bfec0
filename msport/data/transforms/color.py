"""Twins of ColorJitter and GaussianBlur on HWC uint8 images.

torchvision's PIL path jitters colour with PIL's ``ImageEnhance`` (brightness, contrast,
saturation) and shifts hue in PIL's HSV space, so the twin calls the same PIL code and is exact.
GaussianBlur is different: torchvision converts the PIL image to a tensor, convolves in float32
with reflect padding and rounds. The twin convolves separably in float64 with torchvision's
float32 kernel; the sums differ from torch's in the last bits, so a pixel whose value lies within
rounding of .5 may round the other way: within 1 of 255, not exact.
"""

import numpy as np

from .base import Twin, pil_image, uniform


def jitter_range(value, name, center=1.0, clip=True):
    """torchvision's ``ColorJitter._check_input``: a number v means [center - v, center + v]; None = off."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        low, high = center - float(value), center + float(value)
        low = max(low, 0.0) if clip else low
    else:
        low, high = (float(v) for v in value)
    return None if low == high == center else (low, high)


def adjust(pil, kind, factor):
    from PIL import Image, ImageEnhance

    if kind == "hue":
        if pil.mode in ("L", "1", "I", "F"):
            return pil
        h, s, v = pil.convert("HSV").split()
        shifted = np.array(h, dtype=np.uint8)
        shifted += np.int32(factor * 255).astype(np.uint8)  # wraps around, as torchvision's does
        return Image.merge("HSV", (Image.fromarray(shifted, "L"), s, v)).convert(pil.mode)
    enhancer = {"brightness": ImageEnhance.Brightness, "contrast": ImageEnhance.Contrast,
                "saturation": ImageEnhance.Color}[kind]
    return enhancer(pil).enhance(factor)


class ColorJitter(Twin):
    """params: ``order`` (a permutation of the four adjustments) and each factor (None when off)."""

    torch_name = "ColorJitter"
    random = True
    KINDS = ("brightness", "contrast", "saturation", "hue")

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0, seed=None):
        self.brightness = jitter_range(brightness, "brightness")
        self.contrast = jitter_range(contrast, "contrast")
        self.saturation = jitter_range(saturation, "saturation")
        self.hue = jitter_range(hue, "hue", center=0.0, clip=False)
        self._seed(seed)

    def draw(self, rng, shape):
        params = {"order": [int(i) for i in rng.permutation(4)]}
        for kind in self.KINDS:
            bounds = getattr(self, kind)
            params[kind] = None if bounds is None else uniform(rng, *bounds)
        return params

    def apply_pil(self, pil, params):
        for index in params["order"]:
            kind = self.KINDS[index]
            if params[kind] is not None:
                pil = adjust(pil, kind, params[kind])
        return pil


def gaussian_kernel1d(size, sigma):
    """torchvision's kernel, in float32 as torchvision computes it."""
    half = (size - 1) * 0.5
    x = np.linspace(-half, half, size, dtype=np.float32)
    pdf = np.exp(np.float32(-0.5) * (x / np.float32(sigma)) ** 2)
    return pdf / pdf.sum()


class GaussianBlur(Twin):
    """params: ``sigma``, uniform in ``sigma``'s range, the same along both axes."""

    torch_name = "GaussianBlur"
    random = True

    def __init__(self, kernel_size, sigma=(0.1, 2.0), seed=None):
        kx, ky = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size) * (
            2 if len(kernel_size) == 1 else 1)
        self.kernel_size = (int(kx), int(ky))
        self.sigma = (float(sigma), float(sigma)) if isinstance(sigma, (int, float)) else tuple(map(float, sigma))
        self._seed(seed)

    def draw(self, rng, shape):
        return {"sigma": uniform(rng, *self.sigma)}

    def apply(self, image, params):
        image = np.asarray(image)
        pil_image(image, "GaussianBlur")  # refuses what torchvision's PIL path could not hold
        kx, ky = self.kernel_size
        sigma = params["sigma"]
        out = image.astype(np.float64)
        out = np.pad(out, [(ky // 2, ky // 2), (kx // 2, kx // 2)] + [(0, 0)] * (out.ndim - 2), mode="reflect")
        wx = gaussian_kernel1d(kx, sigma).astype(np.float64)
        wy = gaussian_kernel1d(ky, sigma).astype(np.float64)
        height, width = image.shape[:2]
        rows = sum(wy[k] * out[k:k + height] for k in range(ky))
        blurred = sum(wx[k] * rows[:, k:k + width] for k in range(kx))
        return np.round(blurred).astype(np.uint8)
