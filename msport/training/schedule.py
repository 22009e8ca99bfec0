"""Learning rate per optimiser step, identical for both frameworks.

torch schedulers usually step once per epoch while MindSpore optimisers take a
per-step list: expanding the epoch schedule here gives both the same value at
every step. Warm-up is linear per step from lr/steps to lr. ``onecycle`` and ``linear`` are per-step
schedules, computed by :mod:`msport.optim.lr_scheduler` (torch's arithmetic): ``OneCycleLR(max_lr=lr)``
over the whole run (it warms up by itself; momentum is not cycled), and ``LinearLR`` from lr to 0 over
the steps after warm-up (the usual Transformer recipe).
"""

import math

import numpy as np

from msport.optim import lr_scheduler

SCHEDULES = ("constant", "step", "multistep", "cosine", "onecycle", "linear")
PER_STEP = ("onecycle", "linear")
#: Schedules whose value at an epoch depends on the epoch count: a run of them cannot be made longer.
EPOCH_COUNT_DEPENDENT = ("cosine", "onecycle", "linear")


class _Groups:
    """The one param group a schedule needs, standing in for an optimizer."""

    def __init__(self, lr):
        self.param_groups, self.defaults = [{"lr": lr}], {}


def epoch_lr(cfg, epoch):
    """The schedule's value for a (0-based) epoch, before warm-up."""
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "step":
        return cfg.lr * cfg.gamma ** (epoch // cfg.step_size)
    if cfg.schedule == "multistep":
        return cfg.lr * cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    # cosine over the epochs after warm-up, as torch's CosineAnnealingLR(T_max=epochs) stepped per epoch
    span = cfg.epochs - cfg.warmup_epochs
    t = epoch - cfg.warmup_epochs
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * t / span))


def per_step_lr(cfg, steps_per_epoch):
    """The float32 rate of each of the ``epochs * steps_per_epoch`` steps.

    Per-epoch schedules come as a :class:`StepSchedule`, computed when asked; the per-step ones
    (onecycle, linear), stepped through torch's own schedulers, as an array.
    """
    total = cfg.epochs * steps_per_epoch
    warmup_steps = cfg.warmup_epochs * steps_per_epoch
    if cfg.schedule == "onecycle":
        groups = _Groups(cfg.lr)
        return np.asarray(lr_scheduler.lr_values(lr_scheduler.OneCycleLR(groups, cfg.lr, total_steps=total,
                                                                         cycle_momentum=False), total), np.float32)
    if cfg.schedule == "linear":
        values = np.empty(total, dtype=np.float64)
        groups = _Groups(cfg.lr)
        span = total - warmup_steps
        values[warmup_steps:] = lr_scheduler.lr_values(lr_scheduler.LinearLR(groups, 1.0, 0.0, total_iters=span), span)
        values[:warmup_steps] = cfg.lr * np.arange(1, warmup_steps + 1) / max(warmup_steps, 1)
        return values.astype(np.float32)
    return StepSchedule(cfg, steps_per_epoch)


class StepSchedule:
    """Indexable like a float32 array of length ``epochs * steps_per_epoch``, computed per step when asked.

    Nothing of that length is held: a run asked for 10^9 epochs would otherwise need gigabytes
    before its first step. A slice (and ``numpy.asarray``) gives a float32 array.
    """

    def __init__(self, cfg, steps_per_epoch):
        self.cfg, self.steps_per_epoch = cfg, steps_per_epoch
        self.warmup_steps = cfg.warmup_epochs * steps_per_epoch

    def __len__(self):
        return self.cfg.epochs * self.steps_per_epoch

    def __getitem__(self, index):
        if isinstance(index, slice):
            return np.array([self._at(i) for i in range(*index.indices(len(self)))], dtype=np.float32)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"step {index} outside 0..{len(self) - 1}")
        return self._at(index)

    def __array__(self, dtype=None, copy=None):
        del copy
        values = self[:]
        return values if dtype is None else values.astype(dtype)

    def _at(self, step):
        if step < self.warmup_steps:  # float64 lr * k / W, then float32, as the whole array once was
            return np.float32(self.cfg.lr * (step + 1) / self.warmup_steps)
        return np.float32(epoch_lr(self.cfg, step // self.steps_per_epoch))
