"""PyTorch side, accelerator path: the data set resident on the device, batches built there.

On a GPU a CIFAR ResNet step takes tens of milliseconds; a DataLoader that
builds batches on two CPU cores and copies them over would set the pace. Here
the uint8 images live on the device, zero-padded once, and each batch is a
gather: the crop offsets, flips and order still come from the same numpy
:class:`~msport.data.plan.EpochPlan` as every other pipeline, so a GPU run
sees the batches a CPU run sees. Normalisation repeats
:func:`~msport.data.plan.normalize_batch`'s float32 operations in its order
(divide, subtract, divide: each correctly rounded), so the batches are
bit-identical to the numpy reference; a test proves it on the CPU device.
"""

from __future__ import annotations

from typing import Optional

import torch

from .cifar10 import CIFAR10_MEAN, CIFAR10_STD, ArrayDataset
from .plan import PlannedBatches, planned_batches, shard_bounds


class DeviceLoader:
    """Same interface as :class:`~msport.data.torch_pipeline.EpochLoader`; yields device tensors."""

    def __init__(self, batches: PlannedBatches, device, epoch: int = 0, channels_last: bool = False):
        self._batches = batches
        self.device = torch.device(device)
        self.epoch = epoch
        self.channels_last = channels_last
        pad = batches.pad
        images = torch.from_numpy(batches.ds.images).to(self.device).permute(0, 3, 1, 2)  # N, C, H, W uint8
        self._padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
        self._labels = torch.from_numpy(batches.ds.labels).to(self.device)
        self._height, self._width = images.shape[2:]
        self._mean = torch.tensor(CIFAR10_MEAN, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(CIFAR10_STD, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def num_samples(self) -> int:
        return self._batches.num_samples

    def global_batch_size(self, step: int) -> int:
        return self._batches.global_batch_size(step)

    def __len__(self):
        return self._batches.steps

    def __iter__(self):
        plan = self._batches.plan(self.epoch)
        served = self._batches.num_samples
        order = torch.from_numpy(plan.order[:served]).to(self.device)
        offsets = torch.from_numpy(plan.offsets[:served]).to(self.device)
        flips = torch.from_numpy(plan.flips[:served]).to(self.device)
        rows = torch.arange(self._height, device=self.device)
        cols = torch.arange(self._width, device=self.device)
        size = self._batches.batch_size
        for step, first in enumerate(range(0, served, size)):
            lo, hi = shard_bounds(self._batches.global_batch_size(step), self._batches.rank, self._batches.world)
            start, stop = first + lo, first + hi  # this rank's share of the planned batch
            index = order[start:stop]
            dy, dx = offsets[start:stop, 0], offsets[start:stop, 1]
            r = dy[:, None] + rows                                      # B, H
            c = dx[:, None] + cols                                      # B, W
            c = torch.where(flips[start:stop, None], c.flip(1), c)
            crops = self._padded[index[:, None, None, None], torch.arange(3, device=self.device)[None, :, None, None],
                                 r[:, None, :, None], c[:, None, None, :]]
            x = crops.to(torch.float32)
            if self._batches.normalize:
                x = (x / 255.0 - self._mean) / self._std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self._labels[index]


def make_device_loader(ds: ArrayDataset, batch_size: int, *, device, train: bool, augment: bool, seed: int,
                       epoch: int = 0, shuffle: Optional[bool] = None, drop_last: Optional[bool] = None,
                       channels_last: bool = False, rank: int = 0, world: int = 1) -> DeviceLoader:
    """A loader whose batches equal :func:`~msport.data.make_torch_loader`'s, built on ``device``."""
    batches = planned_batches(ds, batch_size, train=train, augment=augment, seed=seed, shuffle=shuffle,
                              drop_last=drop_last, rank=rank, world=world)
    return DeviceLoader(batches, device, epoch, channels_last)
