"""The one table of torchvision transforms, the mindspore.dataset ops they resemble, and msport's twins.

Each :class:`TransformEntry` says, for one torchvision class (v1 and v2 share the names; ToImage,
ToDtype and ToPureTensor are v2's own): the MindSpore op a port would reach for and how it
differs at its defaults, msport's twin (or why there is none), and how the torch side replays a
twin's drawn parameters. :func:`msport.data.transforms.from_torchvision` builds from it, the proof
table of docs/data.md is measured from it, and the correspondence table there is generated
from it, so the three cannot disagree.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from . import augment, color, geometry, tensor


@dataclass(frozen=True)
class TransformEntry:
    torch_name: str
    ms_op: str  # the mindspore.dataset op a port would write, "-" if none
    ms_differs: str  # how that op differs from torchvision at its defaults
    twin: type | None  # msport's twin, None where there is none
    exactness: str  # "exact", or why not ("within 1 of 255: ...")
    replay: Callable | None = None  # (F, transform, torch image, params) -> torchvision's output
    input: str = "pil"  # what the transform takes: "pil" (HWC uint8), "tensor" (CHW float), "uint8 tensor"
    why_no_twin: str = ""

    @property
    def random(self):
        return bool(self.twin and self.twin.random)


def twin_kwargs(entry, transform):
    """The twin's constructor arguments, read from the torchvision transform's public attributes."""
    names = [n for n in inspect.signature(entry.twin.__init__).parameters if n not in ("self", "seed")]
    found = {n: getattr(transform, n) for n in names if hasattr(transform, n)}
    if "v2" in names:
        found["v2"] = type(transform).__module__.startswith("torchvision.transforms.v2")
    if entry.torch_name == "RandomErasing" and found.get("value", 0) is None:
        found["value"] = "random"  # v2 stores value='random' as None
    if entry.torch_name == "ToDtype" and isinstance(found.get("dtype"), dict):
        found["dtype"] = next(iter(found["dtype"].values()))  # {tv_tensors.Image: float32, ...}
    return found


# --- replaying a twin's parameters through torchvision's own functional ops --------------------

def _replay_random_crop(F, t, img, p):
    if t.padding is not None:
        img = F.pad(img, t.padding, fill=t.fill, padding_mode=t.padding_mode)
    _, height, width = F.get_dimensions(img)
    if t.pad_if_needed and width < t.size[1]:
        img = F.pad(img, [t.size[1] - width, 0], fill=t.fill, padding_mode=t.padding_mode)
    if t.pad_if_needed and height < t.size[0]:
        img = F.pad(img, [0, t.size[0] - height], fill=t.fill, padding_mode=t.padding_mode)
    return F.crop(img, p["top"], p["left"], *t.size)


def _replay_resized_crop(F, t, img, p):
    return F.resized_crop(img, p["top"], p["left"], p["height"], p["width"], list(t.size), t.interpolation,
                          antialias=t.antialias)


def _replay_flip(name):
    def replay(F, t, img, p):
        return getattr(F, name)(img) if p["flip"] else img
    return replay


def _replay_rotation(F, t, img, p):
    return F.rotate(img, p["angle"], t.interpolation, t.expand, t.center, t.fill)


def _replay_jitter(F, t, img, p):
    for index in p["order"]:
        kind = color.ColorJitter.KINDS[index]
        if p[kind] is not None:
            img = getattr(F, f"adjust_{kind}")(img, p[kind])
    return img


def _replay_blur(F, t, img, p):
    return F.gaussian_blur(img, list(t.kernel_size), [p["sigma"], p["sigma"]])


def _replay_erasing(F, t, img, p):
    import torch

    if not p["erase"]:
        return img
    return F.erase(img, p["top"], p["left"], p["height"], p["width"], torch.as_tensor(p["value"]))


def _replay_augment(F, t, img, p):
    """torchvision's own operation code (private in both APIs: the transforms offer no other way in)."""
    for op, magnitude in p["ops"] if "ops" in p else [(p["op"], p["magnitude"])]:
        if type(t).__module__.startswith("torchvision.transforms.v2"):
            img = t._apply_image_or_video_transform(img, op, magnitude, interpolation=t.interpolation, fill=t._fill)
        else:
            from torchvision.transforms.autoaugment import _apply_op

            img = _apply_op(img, op, magnitude, interpolation=t.interpolation, fill=t.fill)
    return img


_RESIZE_DIFF = ("Inter.LINEAR without antialiasing; torchvision resizes PIL images with PIL's antialiased "
                "filters, and Inter.ANTIALIAS refuses numpy images")
_WITHIN_ONE = "within 1 of 255: float64 sums where torch sums in float32, so a pixel at .5 may round apart"

ENTRIES: tuple[TransformEntry, ...] = (
    TransformEntry("Resize", "vision.Resize", _RESIZE_DIFF, geometry.Resize, "exact (PIL's resize, as torchvision)"),
    TransformEntry("CenterCrop", "vision.CenterCrop",
                   "puts the crop one row or column off where the margin is odd: it rounds the offset down, torchvision "
                   "half to even",
                   geometry.CenterCrop, "exact"),
    TransformEntry("Pad", "vision.Pad", "fill_value and padding_mode=Border.* for fill and padding_mode",
                   geometry.Pad, "exact"),
    TransformEntry("RandomCrop", "vision.RandomCrop", "its own random draws; fill_value, Border.* modes",
                   geometry.RandomCrop, "exact", _replay_random_crop),
    TransformEntry("RandomResizedCrop", "vision.RandomResizedCrop",
                   "Inter.BILINEAR without antialiasing; its own random draws", geometry.RandomResizedCrop,
                   "exact (PIL's resize)", _replay_resized_crop),
    TransformEntry("RandomHorizontalFlip", "vision.RandomHorizontalFlip", "prob= for p; its own random draws",
                   geometry.RandomHorizontalFlip, "exact", _replay_flip("hflip")),
    TransformEntry("RandomVerticalFlip", "vision.RandomVerticalFlip", "prob= for p; its own random draws",
                   geometry.RandomVerticalFlip, "exact", _replay_flip("vflip")),
    TransformEntry("RandomRotation", "vision.RandomRotation",
                   "resample= for interpolation, fill_value= for fill; its own rotation kernel",
                   geometry.RandomRotation, "exact (PIL's rotate)", _replay_rotation),
    TransformEntry("ColorJitter", "vision.RandomColorAdjust", "its own colour kernels; its own random draws",
                   color.ColorJitter, "exact (PIL's ImageEnhance and HSV)", _replay_jitter),
    TransformEntry("GaussianBlur", "vision.GaussianBlur",
                   "sigma=None derives sigma from the kernel size, where torchvision draws from (0.1, 2.0)",
                   color.GaussianBlur, _WITHIN_ONE, _replay_blur),
    TransformEntry("ToTensor", "vision.ToTensor", "the same layout and scale (HWC uint8 -> CHW float32 in [0, 1]); its values are up to 6e-8 off", tensor.ToTensor,
                   "exact"),
    TransformEntry("PILToTensor", "vision.HWC2CHW", "the same (HWC -> CHW, dtype kept)", tensor.PILToTensor, "exact"),
    TransformEntry("ToImage", "vision.HWC2CHW", "the same (HWC -> CHW, dtype kept)", tensor.ToImage, "exact"),
    TransformEntry("ConvertImageDtype", "transforms.TypeCast", "casts without scaling: uint8 255 -> 255.0, not 1.0",
                   tensor.ConvertImageDtype, "exact", input="uint8 tensor"),
    TransformEntry("ToDtype", "transforms.TypeCast", "casts without scaling (as ToDtype's scale=False)",
                   tensor.ToDtype, "exact", input="uint8 tensor"),
    TransformEntry("ToPureTensor", "-", "-", tensor.ToPureTensor, "exact", input="uint8 tensor"),
    TransformEntry("Normalize", "vision.Normalize", "is_hwc=True: expects HWC input, where torchvision's is CHW",
                   tensor.Normalize, "exact", input="tensor"),
    TransformEntry("RandomErasing", "vision.RandomErasing", "prob= for p; its own random draws",
                   tensor.RandomErasing, "exact", _replay_erasing, input="tensor"),
    TransformEntry("RandAugment", "vision.RandAugment", "its own kernels for the 14 operations; its own random draws",
                   augment.RandAugment, "exact (the same PIL operations as TrivialAugmentWide)", _replay_augment),
    TransformEntry("TrivialAugmentWide", "vision.TrivialAugmentWide", "its own kernels for the 14 operations; "
                   "its own random draws", augment.TrivialAugmentWide, "exact (PIL's transform, rotate, ImageEnhance, "
                   "ImageOps)", _replay_augment),
    TransformEntry("AutoAugment", "vision.AutoAugment", "its own policies' kernels", None, "-",
                   why_no_twin="no twin yet: TrivialAugmentWide's operations in learned policies"),
)

_BY_NAME = {e.torch_name: e for e in ENTRIES}


def entry(name):
    return _BY_NAME.get(name)


def entry_for(transform):
    """The entry of a torchvision transform instance (v1 or v2), or None."""
    return _BY_NAME.get(type(transform).__name__) if type(transform).__module__.startswith("torchvision") else None
