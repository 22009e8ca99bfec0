"""Parity layer factories: MindSpore layers that behave as PyTorch's defaults.

The seed port lost 0.6 points of accuracy because its convolutions and dense
layers used MindSpore 1.x's default initialisers (Normal(0.01) weights, zero
bias) instead of PyTorch's kaiming-uniform. Model code builds every layer
through :func:`conv2d`, :func:`dense` and :func:`batch_norm2d` and never spells
a MindSpore detail (``pad_mode``, ``has_bias``, initialisers, the momentum
convention); :func:`apply_init` re-initialises an existing network for ports
that were not built here.

Init schemes, chosen by name:

``"torch"``
    PyTorch's defaults, set explicitly so they do not depend on the installed
    MindSpore: weight U(-b, b) and bias U(-b, b) with b = 1/sqrt(fan_in),
    fan_in = in_channels/groups * kernel area. (``kaiming_uniform_(a=sqrt(5))``
    reduces to exactly this bound.)
``"legacy"``
    MindSpore 1.x / 2.0 defaults: weight Normal(sigma=0.01), bias zeros. The
    seed's "before" state, reproducible on any MindSpore version.
``"mindspore"``
    Whatever the installed MindSpore does by default (2.1 and later: equal to
    torch's distribution; 1.x: ``"legacy"``).
"""

import math

import numpy as np

from msport._mindspore import nn
from mindspore.common.initializer import Normal, Uniform, Zero, One, initializer

INIT_SCHEMES = ("torch", "legacy", "mindspore")

#: PyTorch's BatchNorm2d defaults, in PyTorch's convention.
TORCH_BN_MOMENTUM = 0.1
TORCH_BN_EPS = 1e-5


def _check_scheme(init):
    if init not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {init!r}: choose one of {', '.join(INIT_SCHEMES)}")


def fan_in(weight_shape, groups=1):
    """PyTorch's fan_in of a conv/dense weight shaped (out, in/groups, *kernel)."""
    del groups  # the stored weight already holds in_channels/groups
    return int(np.prod(weight_shape[1:]))


def torch_bound(weight_shape):
    """Half-width of PyTorch's default U(-b, b) for this weight and its bias."""
    return 1.0 / math.sqrt(fan_in(weight_shape))


def _initializers(init, weight_shape):
    """(weight_init, bias_init) for a scheme; ``None`` means MindSpore's own default."""
    _check_scheme(init)
    if init == "torch":
        bound = torch_bound(weight_shape)
        return Uniform(scale=bound), Uniform(scale=bound)
    if init == "legacy":
        return Normal(sigma=0.01), Zero()
    return None, None


def conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, *,
           groups=1, bias=False, init="torch"):
    """A MindSpore ``nn.Conv2d`` that computes exactly ``torch.nn.Conv2d(..., padding=padding)``.

    Padding is symmetric as in torch (``pad_mode='pad'``); MindSpore's default
    ``'same'`` puts the odd pixel of a stride-2 conv on the bottom/right and
    shifts every output. ``bias`` defaults to False, as every ResNet conv.
    """
    shape = (out_channels, in_channels // groups, kernel_size, kernel_size)
    weight_init, bias_init = _initializers(init, shape)
    return nn.Conv2d(
        in_channels, out_channels, kernel_size, stride=stride,
        pad_mode="pad" if padding else "valid", padding=padding, group=groups,
        has_bias=bias, weight_init=weight_init, bias_init=bias_init if bias else None,
    )


def dense(in_channels, out_channels, *, bias=True, init="torch"):
    """A MindSpore ``nn.Dense`` initialised as ``torch.nn.Linear`` under ``init='torch'``."""
    weight_init, bias_init = _initializers(init, (out_channels, in_channels))
    return nn.Dense(in_channels, out_channels, has_bias=bias,
                    weight_init=weight_init, bias_init=bias_init if bias else None)


def batch_norm2d(num_features, *, momentum=TORCH_BN_MOMENTUM, eps=TORCH_BN_EPS):
    """A MindSpore ``nn.BatchNorm2d`` configured with PyTorch's momentum convention.

    torch updates ``running = (1 - m) * running + m * batch``; MindSpore's
    ``momentum`` is the weight of the old value, so it receives ``1 - m``.
    """
    return nn.BatchNorm2d(num_features, eps=eps, momentum=1.0 - momentum)


# Names from the seed document, kept for ports that copied its snippet.
_conv2d = conv2d
_dense = dense


def _set(param, init, shape):
    param.set_data(initializer(init, shape, param.dtype))


def apply_init(cell, scheme="torch"):
    """Re-initialise every Conv2d, Dense and BatchNorm2d of ``cell`` in place; returns ``cell``.

    For a network built elsewhere (a user's own port): the parameters keep
    their names and shapes, only their values are redrawn. BatchNorm gets
    gamma=1, beta=0, moving mean 0 and moving variance 1 under every scheme,
    as in both frameworks.
    """
    _check_scheme(scheme)
    for _, sub in cell.cells_and_names():
        if isinstance(sub, (nn.Conv2d, nn.Dense)):
            _reinit_weighted(sub, scheme)
        elif isinstance(sub, nn.BatchNorm2d):
            for param, value in ((sub.gamma, One()), (sub.beta, Zero()),
                                 (sub.moving_mean, Zero()), (sub.moving_variance, One())):
                _set(param, value, param.shape)
    return cell


def _reinit_weighted(layer, scheme):
    weight = layer.weight
    bias = layer.bias if getattr(layer, "has_bias", False) else None
    if scheme == "mindspore":
        fresh = _fresh_default_like(layer)
        weight.set_data(fresh.weight.data.copy())
        if bias is not None:
            bias.set_data(fresh.bias.data.copy())
        return
    weight_init, bias_init = _initializers(scheme, tuple(weight.shape))
    _set(weight, weight_init, weight.shape)
    if bias is not None:
        _set(bias, bias_init, bias.shape)


def _fresh_default_like(layer):
    """A new layer of the same configuration, built with the installed MindSpore's defaults."""
    if isinstance(layer, nn.Dense):
        return nn.Dense(layer.in_channels, layer.out_channels, has_bias=layer.has_bias)
    return nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                     stride=layer.stride, pad_mode=layer.pad_mode, padding=layer.padding,
                     dilation=layer.dilation, group=layer.group, has_bias=layer.has_bias)


__all__ = [
    "INIT_SCHEMES", "TORCH_BN_MOMENTUM", "TORCH_BN_EPS", "conv2d", "dense", "batch_norm2d",
    "_conv2d", "_dense", "apply_init", "fan_in", "torch_bound",
]
