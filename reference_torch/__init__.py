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

    A ``module:callable`` or ``torchvision:NAME`` spec (as ``msport port`` takes) builds that model,
    with ``num_classes`` when its builder takes it: the torch twin of a ``port:DIR`` MindSpore model."""
    if ":" in name:
        from msport.port.spec import load_torch_model

        return load_torch_model(name, num_classes=num_classes)[0]
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(list_models())}")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return _MODELS[name](num_classes=num_classes, **kwargs)


__all__ = ["create_model", "list_models"]
