"""Data sets and the pipelines that feed both frameworks identical batches.

Importing this package loads neither torch nor MindSpore: the pipelines
(``make_torch_loader``, ``make_ms_dataset``, ``iterate_ms_epoch``) are
imported on first use, so a torch-only process never loads MindSpore or its
CPU settings.
"""

from importlib import import_module

from .cifar10 import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    ArrayDataset,
    download_cifar10,
    load_cifar10,
    write_cifar10_binary,
    write_cifar10_python,
)
from .digits import load_digit_tokens, load_digits
from .errors import DataError
from .plan import (
    EpochPlan,
    PlannedBatches,
    apply_plan_to_batch,
    epoch_plan,
    normalize_batch,
    planned_batches,
    steps_per_epoch,
)

DATASETS = ("cifar10", "digits", "digits_tokens")

_LAZY = {
    "EpochLoader": "torch_pipeline",
    "make_torch_loader": "torch_pipeline",
    "make_ms_dataset": "ms_pipeline",
    "iterate_ms_epoch": "ms_pipeline",
}

__all__ = [
    "CIFAR10_CLASSES", "CIFAR10_MEAN", "CIFAR10_STD", "DATASETS", "ArrayDataset", "DataError",
    "EpochPlan", "PlannedBatches", "apply_plan_to_batch", "download_cifar10", "epoch_plan",
    "load_cifar10", "load_dataset", "load_digit_tokens", "load_digits", "normalize_batch", "planned_batches",
    "steps_per_epoch", "write_cifar10_binary", "write_cifar10_python", *_LAZY,
]


def load_dataset(name: str, data_dir=None, split: str = "train", *, seed: int = 0) -> ArrayDataset:
    """Load a data set by its command-line name.

    ``data_dir`` is needed by ``cifar10`` only, ``seed`` (the train/val split)
    by the digits only. Both accept ``train``, ``val`` and ``test``; CIFAR-10
    has no separate validation set, so its ``val`` is the test split, as
    pytorch-cifar evaluates.
    """
    if name == "cifar10":
        if data_dir is None:
            raise DataError("the cifar10 data set needs a directory: pass --data-dir, or --download")
        return load_cifar10(data_dir, "test" if split == "val" else split)
    if name == "digits":
        return load_digits(split, seed=seed)
    if name == "digits_tokens":
        return load_digit_tokens(split, seed=seed)
    raise DataError(f"unknown data set {name!r}; choose one of: {', '.join(DATASETS)}")


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
