"""PyTorch side: a DataLoader that serves the planned batches of any epoch.

Each DataLoader item is a whole batch, built by :class:`~msport.data.plan.PlannedBatches`
from an ``(epoch, step)`` key; the keys come from a sampler that lives in the
main process. So ``set_epoch`` reaches persistent worker processes without any
shared state, and the workers only do the numpy work of building batches.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .cifar10 import ArrayDataset
from .plan import PlannedBatches, planned_batches


class _BatchDataset(Dataset):
    def __init__(self, batches: PlannedBatches):
        self.batches = batches

    def __len__(self):
        return self.batches.steps

    def __getitem__(self, key):
        epoch, step = key
        images, labels = self.batches.batch(epoch, step)
        return torch.from_numpy(images), torch.from_numpy(labels)


class _EpochSteps(Sampler):
    def __init__(self, steps: int, epoch: int):
        self.steps = steps
        self.epoch = epoch

    def __iter__(self):
        epoch = self.epoch  # an epoch set mid-iteration applies to the next pass only
        return iter([(epoch, step) for step in range(self.steps)])

    def __len__(self):
        return self.steps


class EpochLoader:
    """Iterates the batches of the current epoch: ``(x float32 NCHW, y int64)``.

    Call :meth:`set_epoch` before each pass; the epoch alone decides the
    order, crops and flips, so a resumed run gets the batches an
    uninterrupted run would have.
    """

    def __init__(self, batches: PlannedBatches, epoch: int, num_workers: int, pin_memory: bool):
        self._batches = batches
        self._sampler = _EpochSteps(batches.steps, epoch)
        self._loader = DataLoader(_BatchDataset(batches), batch_size=None, sampler=self._sampler,
                                  num_workers=num_workers, persistent_workers=num_workers > 0,
                                  pin_memory=pin_memory)

    @property
    def epoch(self) -> int:
        return self._sampler.epoch

    def set_epoch(self, epoch: int) -> None:
        self._sampler.epoch = epoch

    @property
    def num_samples(self) -> int:
        """Samples served per epoch (fewer than the data set only with drop_last)."""
        return self._batches.num_samples

    def global_batch_size(self, step: int) -> int:
        """Samples in batch ``step`` over all data parallel ranks."""
        return self._batches.global_batch_size(step)

    def __len__(self):
        return self._batches.steps

    def __iter__(self):
        return iter(self._loader)


def make_torch_loader(ds: ArrayDataset, batch_size: int, *, train: bool, augment: bool, seed: int,
                      epoch: int = 0, num_workers: int = 2, drop_last: Optional[bool] = None,
                      normalize: bool = True, shuffle: Optional[bool] = None,
                      pin_memory: bool = False, rank: int = 0, world: int = 1) -> EpochLoader:
    """A loader of ``ds`` whose batches equal :func:`msport.data.ms_pipeline.make_ms_dataset`'s.

    ``shuffle`` defaults to ``train``; see :func:`msport.data.plan.planned_batches`
    for the train/eval rules. With ``normalize=False`` it serves the uint8 NHWC
    crops instead, e.g. for looking at the augmentation. ``rank``/``world``:
    serve this data parallel rank's share of every batch.
    """
    batches = planned_batches(ds, batch_size, train=train, augment=augment, seed=seed,
                              shuffle=shuffle, drop_last=drop_last, normalize=normalize, rank=rank, world=world)
    return EpochLoader(batches, epoch, num_workers, pin_memory)
