"""Twins of the transforms that make and change tensors: ToTensor, PILToTensor, ConvertImageDtype,
Normalize, RandomErasing, and v2's ToImage, ToDtype and ToPureTensor.

Each follows torchvision's float32 arithmetic step by step (v1 divides by 255, v2 multiplies by
1/255: the two differ in the last bit, and each twin does its own), so the outputs are equal,
not merely close.
"""

import math

import numpy as np

from msport.data.errors import DataError

from .base import Twin, chw_float, hw, uniform


def _chw(image, name):
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise DataError(f"{name} takes an HWC or HW image; got shape {image.shape}")
    return np.ascontiguousarray(image.transpose(2, 0, 1))


def dtype_name(dtype):
    """``torch.float32``, ``np.float32`` or ``"float32"`` -> ``"float32"``."""
    text = str(dtype)
    return text.replace("torch.", "") if text.startswith("torch.") else np.dtype(dtype).name


def _max_value(dtype):
    return float(np.iinfo(dtype).max)


def convert_dtype(image, dtype, scale=True, v2=False):
    """torchvision's ``convert_image_dtype`` (v1) / ``to_dtype`` (v2) on a numpy array."""
    image = np.asarray(image)
    target = np.dtype(dtype_name(dtype))
    if image.dtype == target:
        return image
    if not scale:
        return image.astype(target)
    if np.issubdtype(image.dtype, np.floating):
        if np.issubdtype(target, np.floating):
            return image.astype(target)
        return (image * image.dtype.type(_max_value(target) + 1.0 - 1e-3)).astype(target)
    if np.issubdtype(target, np.floating):
        if v2:
            return image.astype(target) * target.type(1.0 / _max_value(image.dtype))
        return image.astype(target) / target.type(_max_value(image.dtype))
    in_max, out_max = _max_value(image.dtype), _max_value(target)
    if in_max > out_max:
        return (image // int((in_max + 1) // (out_max + 1))).astype(target)
    return image.astype(target) * int((out_max + 1) // (in_max + 1))


class ToTensor(Twin):
    """HWC uint8 -> CHW float32 in [0, 1], divided by 255 as torchvision's ToTensor does."""

    torch_name = "ToTensor"

    def apply(self, image, params=None):
        image = np.asarray(image)
        if image.dtype != np.uint8:
            raise DataError(f"ToTensor takes an HWC uint8 image; got {image.dtype}")
        return convert_dtype(_chw(image, "ToTensor"), np.float32)


class PILToTensor(Twin):
    """HWC uint8 -> CHW uint8 (v2's ToImage is the same)."""

    torch_name = "PILToTensor"

    def apply(self, image, params=None):
        return _chw(image, self.torch_name)


class ToImage(PILToTensor):
    torch_name = "ToImage"


class ToPureTensor(Twin):
    torch_name = "ToPureTensor"

    def apply(self, image, params=None):
        return np.asarray(image)


class ConvertImageDtype(Twin):
    """v1's ConvertImageDtype divides by 255; v2's (an alias of ``ToDtype(scale=True)``) multiplies by 1/255."""

    torch_name = "ConvertImageDtype"

    def __init__(self, dtype="float32", v2=False):
        self.dtype, self.v2 = dtype_name(dtype), v2

    def apply(self, image, params=None):
        return convert_dtype(image, self.dtype, v2=self.v2)


class ToDtype(Twin):
    """v2's ToDtype: ``scale=True`` maps value ranges (multiplying by 1/255), ``False`` only casts."""

    torch_name = "ToDtype"

    def __init__(self, dtype="float32", scale=False):
        self.dtype, self.scale = dtype_name(dtype), scale

    def apply(self, image, params=None):
        return convert_dtype(image, self.dtype, self.scale, v2=True)


class Normalize(Twin):
    """``(x - mean) / std`` per channel of a CHW float image, in the image's float type."""

    torch_name = "Normalize"

    def __init__(self, mean, std, inplace=False):
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        if not all(self.std):
            raise DataError(f"Normalize std {self.std} has a zero: division by zero")

    def apply(self, image, params=None):
        image = chw_float(image, "Normalize")
        mean = np.asarray(self.mean, image.dtype).reshape(-1, 1, 1)
        std = np.asarray(self.std, image.dtype).reshape(-1, 1, 1)
        return (image - mean) / std


class RandomErasing(Twin):
    """params: ``erase`` and, when erasing, the box and ``value`` (per channel, or a CxHxW normal draw)."""

    torch_name = "RandomErasing"
    random = True

    def __init__(self, p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, inplace=False, seed=None):
        self.p, self.scale, self.ratio, self.value = p, tuple(scale), tuple(ratio), value
        self._seed(seed)

    def draw(self, rng, shape):
        if not rng.random() < self.p:
            return {"erase": False}
        channels, (height, width) = shape[0], hw(shape, chw=True)
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            erase_area = area * uniform(rng, *self.scale)
            aspect = math.exp(uniform(rng, *log_ratio))
            h, w = round(math.sqrt(erase_area * aspect)), round(math.sqrt(erase_area / aspect))
            if not (h < height and w < width):
                continue
            if self.value == "random":
                value = rng.standard_normal((channels, h, w)).astype(np.float32)
            else:
                value = np.asarray(self.value if isinstance(self.value, (list, tuple)) else [self.value],
                                   np.float32).reshape(-1, 1, 1)
            return {"erase": True, "top": int(rng.integers(0, height - h + 1)),
                    "left": int(rng.integers(0, width - w + 1)), "height": h, "width": w, "value": value}
        return {"erase": False}

    def apply(self, image, params):
        image = chw_float(image, "RandomErasing")
        if not params["erase"]:
            return image
        out = image.copy()
        top, left = params["top"], params["left"]
        out[:, top:top + params["height"], left:left + params["width"]] = params["value"]
        return out
