"""msport.optim.lr_scheduler gives torch's learning rates; clip_grad_norm / clip_grad_value torch's arithmetic."""

import math

import numpy as np
import pytest
import torch

import msport.optim as mo
from msport._mindspore import ms
from msport.optim import lr_scheduler as ml
from msport.tolerances import (
    CLIP_LOSS_MAX_REL,
    OPTIM_STEP_MAX_ABS,
    SCHEDULE_LR_REL,
    max_rel,
)


def _optimizers(name="SGD", **hyper):
    """A torch and an msport optimizer with two groups of different lr."""
    tp = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))]
    mp = [ms.Parameter(ms.Tensor(np.zeros(2, np.float32)), name="a"),
          ms.Parameter(ms.Tensor(np.zeros(3, np.float32)), name="b")]
    hyper = dict({"lr": 0.1}, **hyper)
    return (getattr(torch.optim, name)([{"params": [tp[0]]}, {"params": [tp[1]], "lr": 0.03}], **hyper),
            getattr(mo, name)([{"params": [mp[0]]}, {"params": [mp[1]], "lr": 0.03}], **hyper))


def _seq(lib, opt):
    return lib.SequentialLR(opt, [lib.LinearLR(opt, start_factor=0.01, total_iters=5),
                                  lib.CosineAnnealingLR(opt, T_max=20, eta_min=1e-4)], milestones=[5])


# (name, builder(lib, optimizer), steps): >= 3 cycles, or the full length
SCHEDULES = [
    ("StepLR", lambda lib, o: lib.StepLR(o, step_size=7, gamma=0.5), 30),
    ("MultiStepLR", lambda lib, o: lib.MultiStepLR(o, milestones=[3, 8, 8, 20], gamma=0.3), 30),
    ("ExponentialLR", lambda lib, o: lib.ExponentialLR(o, gamma=0.9), 40),
    ("CosineAnnealingLR", lambda lib, o: lib.CosineAnnealingLR(o, T_max=10, eta_min=1e-3), 65),
    ("CosineAnnealingWarmRestarts", lambda lib, o: lib.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2, eta_min=1e-4),
     80),
    ("LinearLR", lambda lib, o: lib.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=12), 20),
    ("ConstantLR", lambda lib, o: lib.ConstantLR(o, factor=0.5, total_iters=4), 10),
    ("OneCycleLR", lambda lib, o: lib.OneCycleLR(o, max_lr=[0.5, 0.2], total_steps=50), 50),
    ("OneCycleLR-3phase-linear", lambda lib, o: lib.OneCycleLR(o, max_lr=0.5, total_steps=40, three_phase=True,
                                                                anneal_strategy="linear"), 40),
    ("LambdaLR", lambda lib, o: lib.LambdaLR(o, lambda e: 1.0 / (1 + e) ** 0.5), 30),
    ("SequentialLR-warmup-cosine", _seq, 70),
]


@pytest.mark.parametrize("name,build,steps", SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_schedule_gives_torchs_learning_rates(name, build, steps):
    topt, mopt = _optimizers()
    tsched, msched = build(torch.optim.lr_scheduler, topt), build(ml, mopt)
    for step in range(steps):
        for group in range(2):
            want, got = topt.param_groups[group]["lr"], mopt.param_groups[group]["lr"]
            assert abs(got - want) <= SCHEDULE_LR_REL * abs(want), (name, step, group, want, got)
        assert msched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=SCHEDULE_LR_REL)
        topt.step()
        tsched.step()
        msched.step()
    assert mopt.current("lr", 1) == pytest.approx(topt.param_groups[1]["lr"], rel=SCHEDULE_LR_REL)


def test_onecycle_cycles_adams_beta1_as_torch_does():
    topt, mopt = _optimizers("AdamW")
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, 0.3, total_steps=20)
    msched = ml.OneCycleLR(mopt, 0.3, total_steps=20)
    for _ in range(19):
        topt.step()
        tsched.step()
        msched.step()
        assert mopt.param_groups[0]["betas"][0] == pytest.approx(topt.param_groups[0]["betas"][0], rel=1e-12)
    assert mopt.current("betas")[0] == pytest.approx(topt.param_groups[0]["betas"][0], rel=1e-12)


def test_reduce_on_plateau():
    topt, mopt = _optimizers()
    kw = {"factor": 0.5, "patience": 2, "cooldown": 1, "min_lr": [0.01, 0.0]}
    tsched, msched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw), ml.ReduceLROnPlateau(mopt, **kw)
    for metric in [1.0, 0.9, 0.9, 0.95, 0.91, 0.92, 0.93, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]:
        tsched.step(metric)
        msched.step(metric)
        assert msched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=SCHEDULE_LR_REL)
    assert msched.get_last_lr()[0] < 0.1  # it did reduce


def test_a_schedule_reaches_pynative_steps():
    """lr written by the scheduler reaches the compiled update: SGD's step is lr * grad exactly."""
    _topt, mopt = _optimizers()
    msched = ml.ExponentialLR(mopt, gamma=0.5)
    grads = (ms.Tensor(np.ones(2, np.float32)), ms.Tensor(np.ones(3, np.float32)))
    moved = []
    for _ in range(3):
        before = mopt.parameters[0].asnumpy().copy()
        mopt(grads)
        moved.append(float((before - mopt.parameters[0].asnumpy())[0]))
        msched.step()
    assert moved == pytest.approx([0.1, 0.05, 0.025], abs=OPTIM_STEP_MAX_ABS)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(s).astype(np.float32) for s in [(4, 5), (5,), (3, 3, 2)]]
    params = [torch.nn.Parameter(torch.zeros(g.shape)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g)
    want_norm = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    clipped, total = mo.clip_grad_norm(tuple(ms.Tensor(g) for g in grads), max_norm, norm_type=norm_type)
    assert max_rel(want_norm.numpy(), total.asnumpy()) <= CLIP_LOSS_MAX_REL
    for p, got in zip(params, clipped):
        assert max_rel(p.grad.numpy(), got.asnumpy()) <= CLIP_LOSS_MAX_REL


def test_clip_grad_value_matches_torch():
    g = np.random.default_rng(4).standard_normal((6, 7)).astype(np.float32)
    p = torch.nn.Parameter(torch.zeros(g.shape))
    p.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_value_([p], 0.3)
    (got,) = mo.clip_grad_value((ms.Tensor(g),), 0.3)
    assert np.array_equal(p.grad.numpy(), got.asnumpy())
