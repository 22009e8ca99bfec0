"""torch.optim on MindSpore: optimizers, schedulers and gradient clipping with torch's semantics.

``msport.optim.AdamW(net.trainable_params(), lr=1e-3)`` is a ``mindspore.nn.Optimizer`` that takes
one step exactly as ``torch.optim.AdamW.step()`` does (bias correction, eps, decoupled decay on
every parameter it is given), in PyNative and inside a compiled train step. What msport knows
about each torch optimizer and its MindSpore look-alike is in :mod:`msport.optim.catalog`.
"""

from msport.optim.algorithms import (
           SGD,
           Adagrad,
           Adam,
           Adamax,
           AdamW,
           NAdam,
           RAdam,
           RMSprop,
)
from msport.optim.base import TorchOptimizer
from msport.optim.catalog import MINDSPORE_BUILTINS, OPTIMIZERS
from msport.optim.clip import clip_grad_norm, clip_grad_value

__all__ = [
           "MINDSPORE_BUILTINS",
           "OPTIMIZERS",
           "SGD",
           "Adagrad",
           "Adam",
           "AdamW",
           "Adamax",
           "NAdam",
           "RAdam",
           "RMSprop",
           "TorchOptimizer",
           "clip_grad_norm",
           "clip_grad_value",
]
