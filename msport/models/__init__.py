"""The MindSpore model zoo: ``create_model(name)`` and ``list_models()``.

Names and builders mirror :mod:`reference_torch`, so one name picks the same
architecture on both sides.
"""

from msport.layers import INIT_SCHEMES
from msport.models import resnet

_MODELS = {
    "resnet10_w16": resnet.resnet10_w16,
    "resnet10_w16_nobn": resnet.resnet10_w16_nobn,
    "resnet18": resnet.resnet18,
    "resnet34": resnet.resnet34,
    "resnet50": resnet.resnet50,
    "resnet101": resnet.resnet101,
    "resnet152": resnet.resnet152,
}


def list_models():
    return list(_MODELS)


def create_model(name, num_classes=10, init="torch", **kwargs):
    """Build a zoo model as a ``mindspore.nn.Cell``; ``None`` keyword values mean "model default".

    Only zoo names: :mod:`msport.resolve` turns every other model name (``port:DIR``, ``module:callable``)
    into a model."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(list_models())}")
    if init not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {init!r}: choose one of {', '.join(INIT_SCHEMES)}")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return _MODELS[name](num_classes=num_classes, init=init, **kwargs)


__all__ = ["create_model", "list_models"]
