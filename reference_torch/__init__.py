"""The PyTorch reference zoo: ``create_model(name)`` and ``list_models()``.

Names and builders mirror :mod:`msport.models`. Importing this package never
imports MindSpore.
"""

from reference_torch import resnet

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


def create_model(name, num_classes=10, **kwargs):
    """Build a zoo model as a ``torch.nn.Module``; ``None`` keyword values mean "model default".

    Only zoo names: ``msport.resolve`` turns every other model name (``torchvision:NAME``,
    ``module:callable``) into a model, so this package depends on nothing of msport's."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(list_models())}")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return _MODELS[name](num_classes=num_classes, **kwargs)


__all__ = ["create_model", "list_models"]
