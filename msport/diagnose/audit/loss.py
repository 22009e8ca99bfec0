"""The ``loss`` check: the MindSpore loss on the same logits and labels as torch's."""


import numpy as np

from msport.tolerances import (LOSS_REL)
from msport.diagnose.audit.records import record as _record


def loss_record(loss_fn, torch_loss_fn, rng):
    import torch
    from msport._mindspore import ms

    torch_loss_fn = torch_loss_fn or torch.nn.CrossEntropyLoss()
    logits = rng.standard_normal((4, 10)).astype(np.float32)
    labels = np.array([0, 3, 7, 9], dtype=np.int64)
    want = float(torch_loss_fn(torch.from_numpy(logits), torch.from_numpy(labels)))
    settings = _loss_settings(loss_fn)
    reasons, got, shape = [], None, None
    mode = ms.get_context("mode")
    try:
        ms.set_context(mode=ms.PYNATIVE_MODE)
        result = loss_fn(ms.Tensor(logits), ms.Tensor(labels.astype(np.int32)))
        got_array = result.asnumpy()
        shape = tuple(got_array.shape)
        if got_array.size == 1:
            got = float(got_array.reshape(-1)[0])
            if abs(got - want) > LOSS_REL * abs(want):
                reasons.append(f"loss {got:.6g} vs torch {want:.6g} on the same logits and labels")
        else:
            reasons.append(f"returns {got_array.size} values (shape {shape}), not their mean: reduction='none'? "
                           f"use reduction='mean' as torch's CrossEntropyLoss")
    except Exception as exc:  # noqa: BLE001 - what fails is the finding
        reasons.append(f"fails on integer class labels ({type(exc).__name__}): it expects one-hot labels; "
                       f"use sparse=True as torch's CrossEntropyLoss")
    finally:
        ms.set_context(mode=mode)
    if settings:
        reasons = [f"{r} [{settings}]" for r in reasons]
    return _record("loss", type(loss_fn).__name__, f"{type(torch_loss_fn).__name__}: {want:.6g}",
                   f"{settings or type(loss_fn).__name__}: " + (f"{got:.6g}" if got is not None else
                                                                 "per-sample" if shape else "error"),
                   reasons, torch_loss=want, ms_loss=got, ms_output_shape=shape)


def _loss_settings(loss_fn):
    parts = [f"{key}={getattr(loss_fn, key)!r}" for key in ("sparse", "reduction") if hasattr(loss_fn, key)]
    return ", ".join(parts)
