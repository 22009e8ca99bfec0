"""The PyTorch reference zoo: ``create_model(name)`` and ``list_models()``.

:data:`MODELS` is the zoo's one name table: each name is a builder of that name in
:mod:`reference_torch.resnet` and in :mod:`msport.models.resnet`, and :mod:`msport.models` reads this
tuple rather than keep a copy. Importing this package imports neither torch nor msport; building a
model imports torch.
"""

#: The zoo's names, shared by both zoos (``msport.models`` reads them from here).
MODELS = ("resnet10_w16", "resnet10_w16_nobn", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def list_models():
    return list(MODELS)


def create_model(name, num_classes=10, **kwargs):
    """Build a zoo model as a ``torch.nn.Module``; ``None`` keyword values mean "model default".

    Only zoo names: ``msport.resolve`` turns every other model name (``torchvision:NAME``,
    ``module:callable``) into a model, so this package depends on nothing of msport's."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    from reference_torch import resnet

    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return getattr(resnet, name)(num_classes=num_classes, **kwargs)


__all__ = ["MODELS", "create_model", "list_models"]
