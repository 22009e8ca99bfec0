"""Gradient clipping with torch's arithmetic, on a tuple of MindSpore gradients.

``torch.nn.utils.clip_grad_norm_``: the total norm is the norm of the per-tensor norms
(``inf``: the largest absolute value), and every gradient is multiplied by
``clamp(max_norm / (total + 1e-6), max=1)``, so gradients under the limit are left as they
are (multiplied by exactly 1). Pure functions of tensors: usable in PyNative and inside a
compiled step.
"""

import math

from msport._mindspore import ops

#: torch's clip_grad_norm_ adds this to the total norm before dividing.
CLIP_EPS = 1e-6


def total_norm(grads, norm_type=2.0):
    norm_type = float(norm_type)
    if math.isinf(norm_type):
        return ops.stack([ops.abs(g).max() for g in grads]).max()
    norms = ops.stack([_norm(g, norm_type) for g in grads])
    return _norm(norms, norm_type)


def _norm(x, p):
    if p == 2.0:
        return ops.sqrt((x * x).sum())
    if p == 1.0:
        return ops.abs(x).sum()
    return ops.pow(ops.pow(ops.abs(x), p).sum(), 1.0 / p)


def clip_grad_norm(grads, max_norm, norm_type=2.0):
    """``(clipped_grads, total_norm)``: torch's ``clip_grad_norm_`` on a tuple of gradients."""
    grads = tuple(grads)
    total = total_norm(grads, norm_type)
    coef = ops.clamp(max_norm / (total + CLIP_EPS), max=1.0)
    return tuple(g * ops.cast(coef, g.dtype) for g in grads), total


def clip_grad_value(grads, clip_value):
    """torch's ``clip_grad_value_``: every element into ``[-clip_value, clip_value]``."""
    return tuple(ops.clamp(g, -clip_value, clip_value) for g in grads)
