"""Every registered loss against torch's: ``msport.layers.build(name, **torch_kwargs)`` on the same inputs.

Rows cover every argument msport passes on (weight, ignore_index rows, label smoothing, probability
targets, pos_weight, beta, delta, log_target) and every reduction.
"""

import numpy as np
import pytest
import torch

from msport import registry
from msport._mindspore import ms
from msport.layers import build
from msport.registry import UnsupportedLayer
from msport.tolerances import CLIP_LOSS_MAX_REL, max_rel

N, C = 7, 5
RNG = np.random.default_rng(0)
WEIGHT = RNG.uniform(0.5, 2.0, C).astype(np.float32)
LABELS = np.array([0, 3, 4, -100, 2, 1, -100])  # two ignore_index rows


def _inputs(kind, rng):
    logits = (rng.standard_normal((N, C)) * 2).astype(np.float32)
    if kind == "labels":
        return logits, LABELS.copy()
    if kind == "labels-5":  # ignore_index=4 marks the rows of class 4
        return logits, np.array([0, 4, 4, 1, 2, 3, 0])
    if kind == "probs":
        return logits, rng.dirichlet(np.ones(C), N).astype(np.float32)
    if kind == "log-probs":
        logp = torch.log_softmax(torch.tensor(logits), 1).numpy()
        return logp, np.maximum(LABELS, 0)
    if kind == "binary":
        return logits, (rng.uniform(size=(N, C)) > 0.5).astype(np.float32)
    if kind == "sigmoid":
        return 1 / (1 + np.exp(-logits)), (rng.uniform(size=(N, C)) > 0.5).astype(np.float32)
    if kind == "kl":
        logp = torch.log_softmax(torch.tensor(logits), 1).numpy()
        return logp, rng.dirichlet(np.ones(C), N).astype(np.float32)
    if kind == "kl-log":
        logp = torch.log_softmax(torch.tensor(logits), 1).numpy()
        return logp, torch.log_softmax(torch.tensor(rng.standard_normal((N, C)).astype(np.float32)), 1).numpy()
    return logits, (rng.standard_normal((N, C)) * 2).astype(np.float32)  # regression


CASES = [
    ("CrossEntropyLoss", {}, "labels"),
    ("CrossEntropyLoss", {"label_smoothing": 0.1}, "labels"),
    ("CrossEntropyLoss", {"weight": WEIGHT, "label_smoothing": 0.2}, "labels"),
    ("CrossEntropyLoss", {"ignore_index": 4, "reduction": "sum"}, "labels-5"),
    ("CrossEntropyLoss", {"reduction": "none", "label_smoothing": 0.1}, "labels"),
    ("CrossEntropyLoss", {"label_smoothing": 0.1}, "probs"),
    ("NLLLoss", {"weight": WEIGHT}, "log-probs"),
    ("NLLLoss", {"reduction": "sum"}, "log-probs"),
    ("BCEWithLogitsLoss", {"pos_weight": WEIGHT}, "binary"),
    ("BCEWithLogitsLoss", {"weight": WEIGHT, "reduction": "sum"}, "binary"),
    ("BCELoss", {}, "sigmoid"),
    ("MSELoss", {}, "regression"),
    ("MSELoss", {"reduction": "sum"}, "regression"),
    ("L1Loss", {"reduction": "none"}, "regression"),
    ("SmoothL1Loss", {}, "regression"),
    ("SmoothL1Loss", {"beta": 0.5}, "regression"),
    ("HuberLoss", {"delta": 2.0}, "regression"),
    ("KLDivLoss", {"reduction": "batchmean"}, "kl"),
    ("KLDivLoss", {"reduction": "batchmean", "log_target": True}, "kl-log"),
    ("KLDivLoss", {"reduction": "sum", "log_target": True}, "kl-log"),
]


def _torch_kwargs(kwargs):
    return {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}


@pytest.mark.parametrize("name,kwargs,kind", CASES, ids=[f"{n}-{'-'.join(k) or 'default'}-{t}" for n, k, t in CASES])
def test_loss_equals_torch(name, kwargs, kind):
    x, y = _inputs(kind, np.random.default_rng(1))
    want = getattr(torch.nn, name)(**_torch_kwargs(kwargs))(torch.tensor(x), torch.tensor(y)).numpy()
    target = ms.Tensor(y.astype(np.int32)) if y.dtype.kind == "i" else ms.Tensor(y)
    got = build(name, **kwargs)(ms.Tensor(x), target).asnumpy()
    assert got.shape == want.shape
    assert max_rel(want, got) <= CLIP_LOSS_MAX_REL


def test_every_registered_loss_has_a_row():
    assert {e.name for e in registry.entries() if e.loss} == {c[0] for c in CASES}


def test_mindspores_own_defaults_are_the_traps():
    """What the registry guards against: MindSpore's SmoothL1Loss returns per-element losses by default."""
    from msport._mindspore import nn

    x, y = _inputs("regression", np.random.default_rng(1))
    assert nn.SmoothL1Loss()(ms.Tensor(x), ms.Tensor(y)).shape == (N, C)
    assert build("SmoothL1Loss")(ms.Tensor(x), ms.Tensor(y)).shape == ()


def test_deprecated_torch_arguments_are_named():
    with pytest.raises(UnsupportedLayer, match="size_average"):
        build("MSELoss", size_average=False)
