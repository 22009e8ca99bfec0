"""``msport port``: a readable MindSpore twin of a traced PyTorch model, its weights and a parity report.

    from msport.port import port
    result = port(torchvision.models.resnet18(), torch.randn(1, 3, 224, 224))
    result.cell      # mindspore.nn.Cell holding the converted weights
    result.source    # the generated Python source (one Cell class, msport's factories)
    result.report    # parity of every layer and of the logits

Layers map through :mod:`msport.registry`, functions and methods through the op table
(:mod:`msport.port.ops`); :func:`register_layer` and :func:`register_op` add twins of one's own.
Importing this package imports torch, not MindSpore; :func:`port` imports MindSpore.
"""

from msport.port.build import PortResult, port
from msport.port.codegen import (LayerTwin, TraceFailed, Unsupported, UnsupportedModel, register_layer, trace,
                                 unregister_layer)
from msport.port.ops import UnsupportedOp, register_op, unregister_op

__all__ = ["LayerTwin", "PortResult", "TraceFailed", "Unsupported", "UnsupportedModel", "UnsupportedOp", "port",
           "register_layer", "register_op", "trace", "unregister_layer", "unregister_op"]
