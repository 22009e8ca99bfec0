"""``msport port``: a readable MindSpore twin of an exported PyTorch model, its weights and a parity report.

    from msport.port import port
    result = port(torchvision.models.resnet18(), torch.randn(2, 3, 224, 224))
    result.cell      # mindspore.nn.Cell holding the converted weights
    result.source    # the generated Python source (one Cell class, msport's factories)
    result.report    # parity of every output and every layer

The model is captured with ``torch.export`` (:mod:`msport.port.capture`) as a graph over ATen ops;
layers map through :mod:`msport.registry`, ATen ops through the op table (:mod:`msport.port.aten_ops`,
coverage in :mod:`msport.port.coverage`); :func:`register_layer` and :func:`register_op` add twins of
one's own. Importing this package imports torch, not MindSpore; :func:`port` imports MindSpore.
"""

from msport.port import aten_ops  # noqa: F401 - fills the op table
from msport.port.build import PortResult, port
from msport.port.capture import TraceFailed
from msport.port.layers import (
           LayerTwin,
           Unsupported,
           UnsupportedModel,
           register_layer,
           unregister_layer,
)
from msport.port.ops import UnsupportedOp, register_op, unregister_op

__all__ = ["LayerTwin", "PortResult", "TraceFailed", "Unsupported", "UnsupportedModel", "UnsupportedOp", "port",
           "register_layer", "register_op", "unregister_layer", "unregister_op"]
