"""Twins of torchvision's transforms for mindspore.dataset pipelines, and the table that pairs them.

``from_torchvision(compose)`` gives the MindSpore twin of a torchvision pipeline (v1 or v2) as a
list of ops for ``dataset.map(operations=...)``; each twin class is importable by its torchvision
name. ``ENTRIES`` (msport/data/transforms/table.py) is the one correspondence table;
``python -m msport.data.transforms`` regenerates docs/data.md's tables from it. Importing this
package loads neither torch nor MindSpore.
"""

from .augment import RandAugment, TrivialAugmentWide
from .base import Twin, rng_for
from .color import ColorJitter, GaussianBlur
from .geometry import (
                       CenterCrop,
                       Pad,
                       RandomCrop,
                       RandomHorizontalFlip,
                       RandomResizedCrop,
                       RandomRotation,
                       RandomVerticalFlip,
                       Resize,
)
from .pipeline import (
    Fused,
                       as_array,
                       from_torchvision,
                       run_twins,
                       torch_replay,
                       torch_transforms,
                       twin_of,
)
from .table import ENTRIES, TransformEntry, entry, entry_for
from .tensor import (
                       ConvertImageDtype,
                       Normalize,
                       PILToTensor,
                       RandomErasing,
                       ToDtype,
                       ToImage,
                       ToPureTensor,
                       ToTensor,
)

__all__ = [
                       "ENTRIES",
                       "CenterCrop",
                       "ColorJitter",
                       "ConvertImageDtype",
                       "Fused",
                       "GaussianBlur",
                       "Normalize",
                       "PILToTensor",
                       "Pad",
                       "RandAugment",
    "RandomCrop",
                       "RandomErasing",
                       "RandomHorizontalFlip",
                       "RandomResizedCrop",
                       "RandomRotation",
                       "RandomVerticalFlip",
                       "Resize",
                       "ToDtype",
                       "ToImage",
                       "ToPureTensor",
                       "ToTensor",
                       "TransformEntry",
    "TrivialAugmentWide",
                       "Twin",
                       "as_array",
                       "entry",
                       "entry_for",
                       "from_torchvision",
                       "rng_for",
                       "run_twins",
                       "torch_replay",
                       "torch_transforms",
                       "twin_of",
]
