"""Find where a MindSpore port departs from its PyTorch original.

Three diagnoses, each a function on in-memory models or weights and a CLI command:

* :func:`compare_state` / :func:`compare_checkpoints` (``msport compare-ckpt``):
  two weight sets, parameter by parameter, in torch naming.
* :func:`layer_diff` (``msport layer-diff``): both models on one batch, every
  layer's output and gradient; names the first layer that departs.
* :func:`audit` (``msport audit``): init distributions and conventions
  (BatchNorm momentum/eps, padding, bias, weight decay, loss) without training.

Each takes any ``torch.nn.Module`` and ``mindspore.nn.Cell``: names are paired
by :mod:`msport.diagnose.pairing` (a name map, the registry's rules, then
structure), example inputs may be a tensor, a tuple or a dict of any dtype, and
each side may bring its own loss. Each returns a :class:`DiagnosisResult` with
``.records`` (one dict per parameter or layer, torch naming, with a ``flagged``
field), ``.summary`` and ``.flagged``. Thresholds live in :mod:`msport.tolerances`.

Importing this package imports neither framework: the functions load torch
and MindSpore when called, so comparing two ``.pth`` files never starts MindSpore.
"""

from msport.diagnose.audit import audit
from msport.diagnose.capture import Capture, capture_mindspore, capture_torch
from msport.diagnose.compare_ckpt import compare_checkpoints, compare_state, torch_naming
from msport.diagnose.layer_diff import LayerDiffResult, layer_diff, weights_match, write_dump
from msport.diagnose.name_map import load_name_map
from msport.diagnose.pairing import Pairing, copy_torch_weights, pair_models, pair_names
from msport.diagnose.report import DiagnosisResult

__all__ = [
    "audit", "Capture", "capture_mindspore", "capture_torch", "compare_checkpoints", "compare_state",
    "torch_naming", "LayerDiffResult", "layer_diff", "weights_match", "write_dump", "DiagnosisResult",
    "Pairing", "copy_torch_weights", "load_name_map", "pair_models", "pair_names",
]
