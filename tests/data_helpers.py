"""Small CIFAR-10 data sets on disk, in both real formats, for any test that needs data.

    from data_helpers import write_both_formats
    fixture = write_both_formats(tmp_path, n_train=23, n_test=7)
    load_cifar10(fixture.root)             # python format (preferred)
    load_cifar10(fixture.binary_dir)       # binary format, same images
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

import numpy as np

from msport.data import (
    CIFAR10_CLASSES,
    ArrayDataset,
    write_cifar10_binary,
    write_cifar10_python,
)
from msport.data.cifar10 import BINARY_DIR, PYTHON_DIR


@dataclass(frozen=True)
class CifarFixture:
    """Where the files are, and the arrays they were written from (the expected contents)."""

    root: Path
    train: ArrayDataset
    test: ArrayDataset

    @property
    def python_dir(self) -> Path:
        return self.root / PYTHON_DIR

    @property
    def binary_dir(self) -> Path:
        return self.root / BINARY_DIR


def make_random_cifar(n_train: int, n_test: int, seed: int = 0) -> Tuple[ArrayDataset, ArrayDataset]:
    """Random uint8 images; labels cycle through all classes in a shuffled order."""
    rng = np.random.default_rng(seed)

    def split(n: int, name: str) -> ArrayDataset:
        images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        labels = rng.permutation(np.arange(n) % len(CIFAR10_CLASSES)).astype(np.int64)
        return ArrayDataset(images, labels, CIFAR10_CLASSES, f"cifar10/{name}")

    return split(n_train, "train"), split(n_test, "test")


def write_both_formats(tmp_path, n_train: int = 23, n_test: int = 7, seed: int = 0) -> CifarFixture:
    """Write the same random data set as ``cifar-10-batches-py/`` and ``cifar-10-batches-bin/``
    under ``tmp_path``. The default 23 training images make uneven batch files (5,5,5,4,4)."""
    train, test = make_random_cifar(n_train, n_test, seed)
    root = Path(tmp_path)
    write_cifar10_python(root, train, test)
    write_cifar10_binary(root, train, test)
    return CifarFixture(root, train, test)
