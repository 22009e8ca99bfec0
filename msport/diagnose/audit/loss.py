"""The ``loss`` check: the MindSpore loss on the same inputs and targets as torch's, and its configuration.

The torch loss (default ``CrossEntropyLoss()``) picks the probe: logits and integer labels (with an
``ignore_index`` row where torch's loss sets one) for the classification losses, probabilities for BCE, log-probabilities for
NLL/KLDiv, float targets for the regression losses. Then

* both values are compared (``LOSS_REL``); a MindSpore loss that returns per-sample values, or fails,
  is named with its own error (issue 16: a failure used to be reported as "expects one-hot labels"
  whatever it was);
* when the MindSpore loss is the registered twin of the torch loss, every configuration attribute
  of the registry entry (reduction, label_smoothing, ignore_index, weight, pos_weight, beta, delta,
  log_target) is read off both and compared.
"""

import numpy as np

from msport import registry
from msport.diagnose.audit.records import record as _record
from msport.errors import first_line
from msport.tolerances import LOSS_REL

CLASSES, ROWS = 10, 4


def _probe(torch_loss, rng):
    """``(input, target)`` numpy arrays that torch's loss of this type takes."""
    name = type(torch_loss).__name__
    logits = rng.standard_normal((ROWS, CLASSES)).astype(np.float32)
    if name in ("CrossEntropyLoss", "NLLLoss"):
        labels = rng.integers(0, CLASSES, ROWS).astype(np.int64)
        ignore = getattr(torch_loss, "ignore_index", -100)
        if ignore != -100 and not 0 <= ignore < CLASSES:
            labels[1] = ignore  # the user's data holds ignored rows: a loss that averages them in shows
        if name == "NLLLoss":
            logits = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        return logits, labels
    if name in ("BCEWithLogitsLoss", "BCELoss"):
        target = (rng.uniform(size=logits.shape) > 0.5).astype(np.float32)
        return (1 / (1 + np.exp(-logits)) if name == "BCELoss" else logits), target
    if name == "KLDivLoss":
        logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        target = rng.dirichlet(np.ones(CLASSES), ROWS).astype(np.float32)
        return logp, (np.log(target) if torch_loss.log_target else target)
    return logits, rng.standard_normal(logits.shape).astype(np.float32)


def loss_record(loss_fn, torch_loss_fn, rng):
    import torch

    from msport._mindspore import ms

    torch_loss_fn = torch_loss_fn or torch.nn.CrossEntropyLoss()
    x, y = _probe(torch_loss_fn, rng)
    want = float(torch_loss_fn(torch.from_numpy(x), torch.from_numpy(y)))
    settings = _loss_settings(loss_fn)
    reasons, got, shape = _attr_reasons(loss_fn, torch_loss_fn), None, None
    mode = ms.get_context("mode")
    try:
        ms.set_context(mode=ms.PYNATIVE_MODE)
        target = ms.Tensor(y.astype(np.int32)) if y.dtype.kind == "i" else ms.Tensor(y)
        got_array = loss_fn(ms.Tensor(x), target).asnumpy()
        shape = tuple(got_array.shape)
        if got_array.size == 1:
            got = float(got_array.reshape(-1)[0])
            if abs(got - want) > LOSS_REL * abs(want):
                reasons.append(f"loss {got:.6g} vs torch {want:.6g} on the same inputs and targets")
        else:
            reasons.append(f"returns {got_array.size} values (shape {shape}), not their mean: reduction='none'? "
                           f"use reduction='mean' as torch's {type(torch_loss_fn).__name__}")
    except Exception as exc:  # noqa: BLE001 - what fails is the finding: say what it was
        hint = ("; it expects one-hot labels: use sparse=True as torch's CrossEntropyLoss"
                if getattr(loss_fn, "sparse", None) is False and y.dtype.kind == "i" else "")
        reasons.append(f"fails on torch's inputs ({type(exc).__name__}: {first_line(exc)}){hint}")
    finally:
        ms.set_context(mode=mode)
    if settings:
        reasons = [f"{r} [{settings}]" for r in reasons]
    return _record("loss", type(loss_fn).__name__, f"{_torch_settings(torch_loss_fn)}: {want:.6g}",
                   f"{settings or type(loss_fn).__name__}: " + (f"{got:.6g}" if got is not None else
                                                                 "per-sample" if shape else "error"),
                   reasons, torch_loss=want, ms_loss=got, ms_output_shape=shape)


def _attr_reasons(loss_fn, torch_loss_fn):
    """The registry entry's configuration, compared when the MindSpore loss is the torch loss's twin."""
    entry = registry.entry_for_torch(torch_loss_fn)
    if entry is None or registry.entry_for_ms(loss_fn) is not entry:
        return []
    reasons = []
    for attr in entry.attrs:
        want, got = attr.torch(torch_loss_fn), attr.ms(loss_fn)
        same = (abs(float(want) - float(got)) <= attr.rtol * max(abs(float(want)), abs(float(got)), 1e-30)
                if attr.kind == "rel" else want == got)
        if not same:
            reasons.append(f"{attr.name} {got!r} vs torch {want!r}" + (f" ({attr.hint})" if attr.hint else ""))
    return reasons


def _torch_settings(torch_loss_fn):
    entry = registry.entry_for_torch(torch_loss_fn)
    name = type(torch_loss_fn).__name__
    if entry is None:
        return name
    parts = [f"{a.name}={a.torch(torch_loss_fn)!r}" for a in entry.attrs]
    return f"{name}({', '.join(parts)})"


def _loss_settings(loss_fn):
    keys = ("sparse", "reduction", "label_smoothing", "ignore_index")
    return ", ".join(f"{key}={getattr(loss_fn, key)!r}" for key in keys if hasattr(loss_fn, key))
