"""A small default data set that needs no download: scikit-learn's bundled digits.

The 1,797 handwritten digits ship inside scikit-learn, so examples and CI can
train both frameworks end to end offline. They are reshaped to CIFAR-10's
layout (32x32 RGB uint8) so every model and pipeline built for CIFAR-10 takes
them unchanged.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

from .cifar10 import ArrayDataset
from .errors import DataError

DIGITS_CLASSES = tuple(str(d) for d in range(10))
DIGITS_SPLITS = ("train", "val", "test")

_SIDE = 32
_MAX_VALUE = 16  # sklearn's digits count set pixels in 4x4 blocks: 0..16


def load_digits(split: str = "train", *, seed: int = 0, val_fraction: float = 0.2) -> ArrayDataset:
    """One split of the digits, 32x32 RGB, with a stratified split drawn from ``seed``.

    ``"test"`` is the same images as ``"val"``: there are too few digits for a
    third split. Train and val partition the 1,797 images for a given
    ``(seed, val_fraction)``; each class contributes ``round(val_fraction *
    count)`` images to val, so both splits keep the class balance.
    """
    images, labels, name = _digits_split(split, seed, val_fraction)
    return ArrayDataset(upsample_digits(images), labels, DIGITS_CLASSES, name)


def load_digit_tokens(split: str = "train", *, seed: int = 0, val_fraction: float = 0.2) -> ArrayDataset:
    """One split of the digits as sequences of 64 pixel tokens: int64 ids 0..16, row by row.

    The same images and split as :func:`load_digits` (same ``seed`` and ``val_fraction``), read as a
    sequence task: a Transformer over pixel tokens rather than a CNN over an upsampled image.
    """
    images, labels, name = _digits_split(split, seed, val_fraction)
    tokens = images.reshape(len(images), -1).astype(np.int64)
    return ArrayDataset(tokens, labels, DIGITS_CLASSES, name.replace("digits", "digits_tokens"))


def _digits_split(split, seed, val_fraction):
    """(8x8 images valued 0..16, int64 labels, name) of one split."""
    if split not in DIGITS_SPLITS:
        raise DataError(f"digits split must be one of {', '.join(DIGITS_SPLITS)}; got {split!r}")
    if not 0 < val_fraction < 1:
        raise DataError(f"val_fraction must lie strictly between 0 and 1; got {val_fraction}")
    images, labels = _bundled_digits()
    train_index, val_index = _split_indices(labels, val_fraction, seed)
    index = train_index if split == "train" else val_index
    return images[index], labels[index], "digits/train" if split == "train" else f"digits/{split}"


def _bundled_digits():
    """(images (1797, 8, 8) float64, labels int64) from the file scikit-learn ships, read as
    ``sklearn.datasets.load_digits`` reads it; without importing scikit-learn, which costs a trainer
    process a second at start (``tests/test_data.py`` checks both give the same arrays)."""
    try:
        spec = importlib.util.find_spec("sklearn")
    except (ImportError, ValueError, AttributeError):  # a broken or blocked install
        spec = None
    locations = list(getattr(spec, "submodule_search_locations", None) or [])
    path = os.path.join(locations[0], "datasets", "data", "digits.csv.gz") if locations else None
    if path is None or not os.path.isfile(path):
        raise DataError("the digits data set needs scikit-learn: pip install 'msport[digits]'")
    table = np.loadtxt(path, delimiter=",")
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)


def upsample_digits(images: np.ndarray) -> np.ndarray:
    """Turn (N, 8, 8) digits valued 0..16 into (N, 32, 32, 3) uint8 valued 0..255.

    Bilinear interpolation with half-pixel centres and clamped edges, the
    ``align_corners=False`` convention of ``torch.nn.functional.interpolate``,
    written as two small matrix products so it is pure numpy and deterministic.
    Values are scaled by 255/16 and rounded half to even; the grey image is
    copied to all three channels.
    """
    weights = _bilinear_matrix(images.shape[1], _SIDE)
    big = weights @ images.astype(np.float64) @ weights.T
    grey = np.clip(np.rint(big * (255.0 / _MAX_VALUE)), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=3)


def _bilinear_matrix(size_in: int, size_out: int) -> np.ndarray:
    """Row ``o`` holds the weights output pixel ``o`` gives each input pixel."""
    source = (np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5
    source = np.clip(source, 0, size_in - 1)
    low = np.floor(source).astype(np.int64)
    high = np.minimum(low + 1, size_in - 1)
    frac = source - low
    matrix = np.zeros((size_out, size_in))
    np.add.at(matrix, (np.arange(size_out), low), 1 - frac)
    np.add.at(matrix, (np.arange(size_out), high), frac)
    return matrix


def _split_indices(labels: np.ndarray, val_fraction: float, seed: int):
    """Sorted (train, val) indices: a seeded permutation within each class."""
    rng = np.random.default_rng(seed)
    val = []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        val.append(members[:int(round(val_fraction * len(members)))])
    val_index = np.sort(np.concatenate(val))
    train_index = np.setdiff1d(np.arange(len(labels)), val_index)
    return train_index, val_index
