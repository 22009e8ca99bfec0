"""torch.optim on MindSpore: optimizers, schedulers and gradient clipping with torch's semantics.

``msport.optim.AdamW(net.trainable_params(), lr=1e-3)`` is a ``mindspore.nn.Optimizer`` that takes
one step exactly as ``torch.optim.AdamW.step()`` does (bias correction, eps, decoupled decay on
every parameter it is given), in PyNative and inside a compiled train step. What msport knows
about each torch optimizer and its MindSpore look-alike is in :mod:`msport.optim.catalog`.

The names load on first use, so a torch-only process (``train_torch.py``) reads the catalog
without importing MindSpore.
"""

import importlib

_HOMES = {
    **dict.fromkeys(("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam"), "algorithms"),
    "TorchOptimizer": "base", "OPTIMIZERS": "catalog", "MINDSPORE_BUILTINS": "catalog",
    "clip_grad_norm": "clip", "clip_grad_value": "clip",
    "torch_state_to_msport": "state", "msport_state_to_torch": "state",
}

__all__ = list(_HOMES)


def __getattr__(name):
    if name not in _HOMES:
        raise AttributeError(f"module 'msport.optim' has no attribute {name!r}")
    return getattr(importlib.import_module(f"msport.optim.{_HOMES[name]}"), name)
