"""The MindSpore model zoo: ``create_model(name)`` and ``list_models()``.

The names are :data:`reference_torch.MODELS`, the one table both zoos read: each is a builder of that
name in :mod:`msport.models.resnet`, mirroring :mod:`reference_torch.resnet`, so one name picks the same
architecture on both sides.
"""

from msport.layers import INIT_SCHEMES
from msport.models import resnet
from reference_torch import MODELS


def list_models():
    return list(MODELS)


def create_model(name, num_classes=10, init="torch", **kwargs):
    """Build a zoo model as a ``mindspore.nn.Cell``; ``None`` keyword values mean "model default".

    Only zoo names: :mod:`msport.resolve` turns every other model name (``port:DIR``, ``module:callable``)
    into a model."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    if init not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {init!r}: choose one of {', '.join(INIT_SCHEMES)}")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return getattr(resnet, name)(num_classes=num_classes, init=init, **kwargs)


__all__ = ["create_model", "list_models"]
