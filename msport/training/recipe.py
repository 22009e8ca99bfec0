"""What the config's optimizer keys mean, once for both trainers: torch's class and its arguments.

``optimizer: adamw`` with ``lr``, ``weight_decay``, ``betas`` and ``eps`` becomes
``torch.optim.AdamW(...)`` on the torch side and ``msport.optim.AdamW(...)`` (the same arguments,
torch's semantics) on MindSpore's; hyperparameter names and defaults are read from
:mod:`msport.optim.catalog`. Imports no framework.
"""

from msport.optim import catalog

#: config value -> torch.optim class name
OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad"}


def optimizer_arguments(cfg):
    """``(torch class name, keyword arguments)`` for the config: ``momentum``/``nesterov`` reach SGD only,
    ``betas`` the Adam family, ``eps`` (when set) every optimizer that has one."""
    name = OPTIMIZERS[cfg.optimizer]
    defaults = catalog.spec_for(name).defaults
    kwargs = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    if name == "SGD":
        kwargs.update(momentum=cfg.momentum, nesterov=cfg.nesterov)
    if "betas" in defaults:
        kwargs["betas"] = tuple(cfg.betas)
    if cfg.eps is not None and "eps" in defaults:
        kwargs["eps"] = cfg.eps
    return name, kwargs


def describe(cfg):
    """One line for a run's header: ``AdamW(lr=0.001, weight_decay=0.01, betas=(0.9, 0.999)), label smoothing 0.1``."""
    name, kwargs = optimizer_arguments(cfg)
    text = f"{name}({', '.join(f'{k}={v:g}' if isinstance(v, float) else f'{k}={v}' for k, v in kwargs.items())})"
    text += f", {cfg.schedule} schedule"
    if cfg.label_smoothing:
        text += f", label smoothing {cfg.label_smoothing:g}"
    if cfg.clip_grad_norm:
        text += f", gradient norm clipped to {cfg.clip_grad_norm:g}"
    return text
