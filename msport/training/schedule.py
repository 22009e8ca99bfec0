"""Learning rate per optimiser step, identical for both frameworks.

torch schedulers usually step once per epoch while MindSpore optimisers take a
per-step list: expanding the epoch schedule here gives both the same value at
every step. Warm-up is linear per step from lr/steps to lr.
"""

import math

import numpy as np

SCHEDULES = ("constant", "step", "multistep", "cosine")
#: Schedules whose value at an epoch depends on the epoch count: a run of them cannot be made longer.
EPOCH_COUNT_DEPENDENT = ("cosine",)


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
    """float32 array of length ``epochs * steps_per_epoch``."""
    values = np.empty(cfg.epochs * steps_per_epoch, dtype=np.float64)
    warmup_steps = cfg.warmup_epochs * steps_per_epoch
    for epoch in range(cfg.epochs):
        values[epoch * steps_per_epoch:(epoch + 1) * steps_per_epoch] = epoch_lr(cfg, epoch)
    if warmup_steps:
        values[:warmup_steps] = cfg.lr * np.arange(1, warmup_steps + 1) / warmup_steps
    return values.astype(np.float32)
