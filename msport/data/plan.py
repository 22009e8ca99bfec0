"""The single definition of what every training and evaluation batch contains.

A ported model can only be compared with its original if both see the same
data: the same order, the same random crops and flips, the same normalised
floats. So nothing random happens inside either framework's pipeline. An
:class:`EpochPlan`, drawn with numpy from ``(seed, epoch)``, fixes the order,
crops and flips of one epoch; :func:`apply_plan_to_batch` and
:func:`normalize_batch` are the numpy reference of torchvision's
``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip`` and ``ToTensor`` +
``Normalize``. Both pipelines call :meth:`PlannedBatches.batch`, so their
batches are bit-identical by construction, not by tuning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .cifar10 import CIFAR10_MEAN, CIFAR10_STD, ArrayDataset
from .errors import DataError


@dataclass(frozen=True, eq=False)
class EpochPlan:
    """Everything random about one epoch, indexed by served position.

    ``order[k]`` is the sample served k-th; ``offsets[k]`` is the (dy, dx)
    top-left corner of its crop inside the zero-padded image (``pad, pad`` =
    no shift) and ``flips[k]`` whether it is mirrored left-right.
    """

    order: np.ndarray
    offsets: np.ndarray
    flips: np.ndarray


def epoch_plan(n: int, epoch: int, seed: int, *, augment: bool,
               shuffle: Optional[bool] = None, pad: int = 4) -> EpochPlan:
    """Draw the plan of ``epoch`` from ``default_rng([seed, epoch])`` alone.

    Seeding per epoch, rather than carrying one generator across epochs, makes
    a resumed run draw epoch k exactly as an uninterrupted one, without
    replaying epochs 0..k-1. Draw order is fixed: permutation (only when
    shuffling), then offsets, then flips. ``shuffle`` defaults to ``augment``.
    """
    if n < 0 or epoch < 0 or seed < 0 or pad < 0:
        raise DataError(f"epoch_plan needs n, epoch, seed and pad >= 0; got n={n}, epoch={epoch}, "
                        f"seed={seed}, pad={pad}")
    shuffle = augment if shuffle is None else shuffle
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n) if shuffle else np.arange(n)
    if augment:
        offsets = rng.integers(0, 2 * pad + 1, size=(n, 2))
        flips = rng.random(n) < 0.5
    else:
        offsets = np.full((n, 2), pad)
        flips = np.zeros(n, dtype=bool)
    return EpochPlan(order.astype(np.int64), offsets.astype(np.int64), flips)


def apply_plan_to_batch(images: np.ndarray, offsets: np.ndarray, flips: np.ndarray,
                        pad: int = 4) -> np.ndarray:
    """Zero-pad by ``pad``, crop back to the input size at ``offsets``, then mirror where ``flips``.

    Equals torchvision's ``pad`` + ``crop(dy, dx, H, W)`` + ``hflip`` per image,
    which is what ``RandomCrop(H, padding=pad)`` followed by
    ``RandomHorizontalFlip`` do once their random draws are fixed. One
    gather over the whole batch instead of a Python loop per image.
    """
    n, height, width, _ = images.shape
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    rows = offsets[:, :1] + np.arange(height)
    cols = offsets[:, 1:] + np.arange(width)
    cols = np.where(flips[:, None], cols[:, ::-1], cols)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def normalize_batch(images: np.ndarray, mean=CIFAR10_MEAN, std=CIFAR10_STD) -> np.ndarray:
    """uint8 NHWC -> float32 NCHW ``(x / 255 - mean) / std``, as ToTensor + Normalize compute it.

    Every step is a float32 operation in torchvision's order (divide by 255,
    subtract the float32 mean, divide by the float32 std), which makes the
    result equal to torchvision's, not merely close.
    """
    out = np.empty((images.shape[0], images.shape[3], *images.shape[1:3]), dtype=np.float32)
    out[...] = images.transpose(0, 3, 1, 2)
    out /= np.float32(255)
    out -= np.asarray(mean, dtype=np.float32)[:, None, None]
    out /= np.asarray(std, dtype=np.float32)[:, None, None]
    return out


def steps_per_epoch(n: int, batch_size: int, drop_last: bool) -> int:
    """Batches per epoch; without ``drop_last`` the last, partial batch counts."""
    if batch_size < 1:
        raise DataError(f"batch_size must be at least 1; got {batch_size}")
    return n // batch_size if drop_last else -(-n // batch_size)


def shard_bounds(n: int, rank: int, world: int) -> Tuple[int, int]:
    """[start, stop) of ``rank``'s contiguous share of ``n`` rows; the first ``n % world`` ranks get one more."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


class PlannedBatches:
    """Batch ``step`` of epoch ``epoch``, for any epoch, from the data set and a seed.

    Holds no per-epoch state that matters (the last plan is only cached), so it
    can be copied into worker processes of either framework and asked for any
    ``(epoch, step)`` in any order: that is what lets a pipeline resume at any
    epoch and prefetch in parallel while serving exactly the planned batches.

    With ``world > 1`` it serves rank ``rank``'s contiguous share of each batch
    (:func:`shard_bounds`): the ranks' shards in rank order are the whole batch,
    so data parallel training sees the single-process batches, split.
    """

    def __init__(self, ds: ArrayDataset, batch_size: int, *, seed: int, augment: bool,
                 shuffle: bool, drop_last: bool, pad: int = 4, normalize: bool = True,
                 rank: int = 0, world: int = 1):
        self.ds = ds
        self.batch_size = batch_size
        self.seed = seed
        self.augment = augment
        self.shuffle = shuffle
        self.pad = pad
        self.normalize = normalize
        self.rank, self.world = rank, world
        self.steps = steps_per_epoch(len(ds), batch_size, drop_last)
        if self.steps == 0:
            raise DataError(f"{ds.name}: {len(ds)} samples make no full batch of {batch_size}; "
                            f"lower the batch size or keep the last partial batch (drop_last=False)")
        self.num_samples = min(len(ds), self.steps * batch_size)
        if not 0 <= rank < world:
            raise DataError(f"rank {rank} outside a world of {world}")
        if self.global_batch_size(self.steps - 1) < world:
            raise DataError(f"{ds.name}: the last batch of {self.global_batch_size(self.steps - 1)} samples cannot "
                            f"give each of {world} ranks one; choose a batch size that leaves at least {world}")
        self._cached: Tuple[int, Optional[EpochPlan]] = (-1, None)

    def global_batch_size(self, step: int) -> int:
        """Samples in batch ``step`` over all ranks (the last batch may be partial)."""
        return min(self.batch_size, self.num_samples - step * self.batch_size)

    def plan(self, epoch: int) -> EpochPlan:
        cached_epoch, plan = self._cached
        if cached_epoch != epoch:
            plan = epoch_plan(len(self.ds), epoch, self.seed, augment=self.augment,
                              shuffle=self.shuffle, pad=self.pad)
            self._cached = (epoch, plan)
        return plan

    def batch(self, epoch: int, step: int) -> Tuple[np.ndarray, np.ndarray]:
        """(images, int64 labels): images float32 NCHW if normalising, else uint8 NHWC; token ids as stored.

        Token sequences take the plan's order only: its crops and flips are drawn (so the order of a
        seed is the same for images and tokens) but not applied.
        """
        if not 0 <= step < self.steps:
            raise IndexError(f"step {step} outside 0..{self.steps - 1}")
        plan = self.plan(epoch)
        start = step * self.batch_size
        lo, hi = shard_bounds(self.global_batch_size(step), self.rank, self.world)
        served = slice(start + lo, start + hi)
        index = plan.order[served]
        if self.ds.is_sequence:
            return self.ds.images[index], self.ds.labels[index]
        images = apply_plan_to_batch(self.ds.images[index], plan.offsets[served],
                                     plan.flips[served], self.pad)
        if self.normalize:
            images = normalize_batch(images)
        return images, self.ds.labels[index]


def planned_batches(ds: ArrayDataset, batch_size: int, *, train: bool, augment: bool, seed: int,
                    shuffle: Optional[bool] = None, drop_last: Optional[bool] = None,
                    normalize: bool = True, rank: int = 0, world: int = 1) -> PlannedBatches:
    """The train/eval rules both pipelines share, so they cannot drift apart.

    Training shuffles by default and keeps the last partial batch by default
    (as kuangliu/pytorch-cifar does). Evaluation must score every sample once,
    so it refuses augmentation, shuffling and dropping.
    """
    if not train and (augment or shuffle or drop_last):
        raise DataError(f"{ds.name}: an evaluation pipeline (train=False) serves every sample once, "
                        f"in order, unaugmented; got augment={augment}, shuffle={shuffle}, "
                        f"drop_last={drop_last}")
    return PlannedBatches(ds, batch_size, seed=seed, augment=augment,
                          shuffle=train if shuffle is None else shuffle,
                          drop_last=bool(drop_last), normalize=normalize, rank=rank, world=world)
