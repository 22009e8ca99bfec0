"""MindSpore side: a ``mindspore.dataset`` pipeline serving the planned batches of a span of epochs.

Row ``g`` of the dataset is the whole batch ``g % steps`` of epoch
``start_epoch + g // steps``, built by :class:`~msport.data.plan.PlannedBatches`.
The row number alone decides its content, so worker threads or processes need
no shared state and a run can resume at any epoch. MindSpore itself neither
shuffles nor batches: the plan already did, as it did for the torch loader.

Two ways to train over several epochs, both correct:

* one dataset per epoch, ``make_ms_dataset(..., start_epoch=e, num_epochs=1)``,
  iterated with ``create_tuple_iterator(num_epochs=1)``;
* one dataset for the whole run, ``make_ms_dataset(..., start_epoch=s,
  num_epochs=E)``, iterated once; every ``steps_per_epoch(...)`` rows are one
  epoch.

Never let MindSpore repeat a dataset (``create_tuple_iterator(num_epochs=E)``
with E > 1, ``repeat``, ``Model.train(E, ...)``): a repeat serves the same
rows, hence the same epoch, again.
"""

from __future__ import annotations

from multiprocessing import cpu_count
from typing import Iterator, Optional, Tuple

import numpy as np

from msport._mindspore import ms  # noqa: F401  (sets MindSpore's CPU flags before it loads)
import mindspore.dataset as msds  # noqa: E402

from .cifar10 import ArrayDataset  # noqa: E402
from .errors import DataError  # noqa: E402
from .plan import PlannedBatches, planned_batches  # noqa: E402

COLUMNS = ["image", "label"]


class _EpochSpanSource:
    """Random-access source for ``GeneratorDataset``: row -> (epoch, step) -> batch."""

    def __init__(self, batches: PlannedBatches, start_epoch: int, num_epochs: int):
        self.batches = batches
        self.start_epoch = start_epoch
        self.num_epochs = num_epochs

    def __len__(self):
        return self.num_epochs * self.batches.steps

    def __getitem__(self, row):
        if not 0 <= row < len(self):
            raise IndexError(f"row {row} outside 0..{len(self) - 1}")
        epoch, step = divmod(int(row), self.batches.steps)
        images, labels = self.batches.batch(self.start_epoch + epoch, step)
        # SoftmaxCrossEntropyWithLogits(sparse=True) takes int32 labels.
        return images, labels.astype(np.int32)


def make_ms_dataset(ds: ArrayDataset, batch_size: int, *, train: bool, augment: bool, seed: int,
                    start_epoch: int = 0, num_epochs: int = 1, num_workers: int = 2,
                    drop_last: Optional[bool] = None, shuffle: Optional[bool] = None,
                    normalize: bool = True, python_multiprocessing: bool = False,
                    rank: int = 0, world: int = 1) -> msds.Dataset:
    """A dataset of ``num_epochs`` epochs of batches equal to :func:`make_torch_loader`'s.

    Columns ``image`` (float32 NCHW; uint8 NHWC with ``normalize=False``) and
    ``label`` (int32). ``shuffle`` defaults to ``train``; see
    :func:`msport.data.plan.planned_batches` for the train/eval rules.

    MindSpore accepts only 1..cpu_count() workers, so ``num_workers`` is
    clamped to that range (0, torch's "no workers", becomes 1). Threads are the
    default: building a batch takes ~2 ms of numpy, and on 2 cores one thread
    served a 50k-image epoch in 0.95 s where two threads or two processes took
    1.3 s. ``python_multiprocessing=True`` pays off only with many cores.
    ``rank``/``world``: serve this data parallel rank's share of every batch.
    """
    if num_epochs < 1 or start_epoch < 0:
        raise DataError(f"need start_epoch >= 0 and num_epochs >= 1; got {start_epoch}, {num_epochs}")
    batches = planned_batches(ds, batch_size, train=train, augment=augment, seed=seed,
                              shuffle=shuffle, drop_last=drop_last, normalize=normalize, rank=rank, world=world)
    workers = min(max(int(num_workers), 1), cpu_count())
    return msds.GeneratorDataset(_EpochSpanSource(batches, start_epoch, num_epochs),
                                 column_names=COLUMNS, shuffle=False,
                                 num_parallel_workers=workers,
                                 python_multiprocessing=python_multiprocessing)


def iterate_ms_epoch(ds: ArrayDataset, batch_size: int, *, epoch: int, train: bool, augment: bool,
                     seed: int, num_workers: int = 2, drop_last: Optional[bool] = None,
                     shuffle: Optional[bool] = None,
                     normalize: bool = True) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """The numpy ``(images, int32 labels)`` batches of one epoch, through MindSpore's pipeline."""
    dataset = make_ms_dataset(ds, batch_size, train=train, augment=augment, seed=seed,
                              start_epoch=epoch, num_epochs=1, num_workers=num_workers,
                              drop_last=drop_last, shuffle=shuffle, normalize=normalize)
    yield from dataset.create_tuple_iterator(num_epochs=1, output_numpy=True)
