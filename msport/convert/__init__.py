"""Weight conversion between PyTorch state_dicts and MindSpore parameter dicts: names and layouts.

Every rename and layout change comes from :mod:`msport.registry`, one rule per
parameter of each registered layer type (Conv1d's weight gains an axis,
LayerNorm's weight becomes gamma, Embedding's becomes embedding_table...).
Given a model (``layers=layer_map(model)``), each layer's type is known; without
one, a layer's type is inferred only where its parameter names and ranks
determine it (running statistics make a BatchNorm, a 3-d weight a Conv1d...),
and every other name must be one a registered layer keeps unchanged. There is
no fuzzy matching: any key no rule maps, and, when the target's shapes are
given, any missing key or shape mismatch, raises :class:`ConversionError`
naming the keys.

What has no twin is handled on purpose and listed in the returned
:class:`ConversionReport`:

* torch's ``num_batches_tracked`` travels in a .ckpt as ``msport.torch.<name>``
  (value, dtype and 0-d shape) and comes back from it; a .ckpt without it gets
  it from ``num_batches_tracked=``, else the checkpoint's ``global_step``,
  else 0, so the result loads with ``strict=True``.
* MindSpore keeps gamma/beta (fixed at 1/0) where a torch norm layer has no
  affine parameters: filled going to MindSpore, dropped coming back.
* MindSpore training checkpoints also hold optimizer state (``moments.*``,
  ``global_step``, ``learning_rate``...): it is kept aside, never converted
  into model weights.
* A ``module.`` prefix (torch ``DataParallel``, as pytorch-cifar saves) is
  stripped.

Arrays are converted bit-exactly: a round trip returns identical bytes. The
values may be arrays or the lazy tensors of :mod:`msport.checkpoints` (every
layout change is a reshape), so :func:`convert_file` streams a checkpoint of
any size from one file to the other; reading and writing files is that
module's job, not this one's.
"""

from msport.convert.files import check_destination, convert_file, destination_kind, structural_check
from msport.convert.models import (load_file_into_ms, load_file_into_torch, load_ms_weights_into_torch,
                                   load_torch_weights_into_ms, ms_cell_params)
from msport.convert.rules import (TORCH_ONLY_SUFFIXES, TORCH_STATE_PREFIX, ConversionError, ConversionReport,
                                  join_name, layer_map, map_names, mindspore_to_torch, ms_param_shapes, owner,
                                  split_name, torch_state_shapes, torch_to_mindspore)

__all__ = ["ConversionError", "ConversionReport", "TORCH_ONLY_SUFFIXES", "TORCH_STATE_PREFIX", "check_destination",
           "convert_file", "destination_kind", "join_name", "layer_map", "load_file_into_ms", "load_file_into_torch",
           "load_ms_weights_into_torch", "load_torch_weights_into_ms", "map_names", "mindspore_to_torch",
           "ms_cell_params", "ms_param_shapes", "owner", "split_name", "structural_check", "torch_state_shapes",
           "torch_to_mindspore"]
