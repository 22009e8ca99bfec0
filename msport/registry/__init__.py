"""The layer-correspondence registry: the one place msport knows which torch layer is which MindSpore layer.

One :class:`LayerEntry` per torch layer type gives

* the torch constructor's signature and defaults (``signature``), from which
  :mod:`msport.layers` generates a factory of the same signature;
* ``build``: the MindSpore class and constructor arguments that compute what
  torch computes (``pad_mode``, ``epsilon``, the momentum convention,
  ``has_bias``, ``p``...), or an :class:`UnsupportedLayer` error naming what
  MindSpore 2.10 cannot express on the CPU, never a silent approximation;
* ``params``: every parameter's torch name, MindSpore name and layout change
  (conversion and ``map_names`` read these), and torch's default initialiser
  (``apply_init`` and the audit read these);
* ``attrs``: the configuration an audit reads off a built torch module and a
  built MindSpore cell to confirm they agree (``eps``, ``p``, ``padding_idx``...);
* ``output_index``: which element of a tuple output is "the" output (LSTM,
  MultiheadAttention), for layer-by-layer capture.

The package's modules: :mod:`~msport.registry.schema` (the vocabulary),
:mod:`~msport.registry.table` (the entries: the only part to touch when adding a layer),
:mod:`~msport.registry.builders` (helpers for layer families), :mod:`~msport.registry.lookup`
(framework classes), :mod:`~msport.registry.infer` (names and layouts), :mod:`~msport.registry.docs`.

Everything else (factories, ``apply_init``, conversion, audit, capture and
``msport port``) reads this table. Adding a layer type is one entry here and one
row in ``tests/test_registry.py``. A lookup that misses raises
:class:`UnknownLayer` by name; nothing falls back silently.

MindSpore classes are named by attribute (``"Conv2d"`` is ``mindspore.nn.Conv2d``)
and torch classes likewise, so this module imports neither framework: a torch-
only process can read the registry without paying for MindSpore.
"""


from msport.registry.docs import DOCS_PAGE, docs_table_section, markdown_table
from msport.registry.infer import infer_from_names, ms_layout_shape, to_ms_layout, to_torch_layout, torch_layout_shape
from msport.registry.lookup import (bind, entry_for_ms, entry_for_torch, layer_context, ms_class, ms_layers,
                                    ms_layers_by_parameter_names, ms_parameter_paths,
                                    torch_class, torch_constructor_args, torch_layers)
from msport.registry.schema import (INIT_SCHEMES, REQUIRED, Attr, Init, LayerEntry, Param, UnknownLayer,
                                    UnsupportedLayer)
from msport.registry.table import ENTRIES, entries, entry

__all__ = [
    "Attr", "DOCS_PAGE", "ENTRIES", "Init", "INIT_SCHEMES", "LayerEntry", "Param", "REQUIRED", "UnknownLayer",
    "UnsupportedLayer", "bind", "docs_table_section", "entries", "entry", "entry_for_ms", "entry_for_torch",
    "infer_from_names", "layer_context", "markdown_table", "ms_class", "ms_layers", "ms_layers_by_parameter_names",
    "ms_parameter_paths", "ms_layout_shape", "to_ms_layout", "to_torch_layout", "torch_class", "torch_constructor_args", "torch_layers", "torch_layout_shape",
]
