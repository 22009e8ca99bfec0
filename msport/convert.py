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

import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from msport import checkpoints, registry
from msport.numeric import as_numpy
from msport.checkpoints import MS_OPTIMIZER_STATE, Entry
from msport.errors import UserError, few


class ConversionError(UserError):
    """A key no rule maps, a missing key or a shape mismatch."""


TORCH_ONLY_SUFFIXES = tuple(sorted({s for e in registry.entries() for s in e.torch_only}))
#: torch state with no MindSpore twin (BatchNorm's num_batches_tracked) travels in a .ckpt under this
#: prefix, with its value, dtype and 0-d shape, so a .pth -> .ckpt -> .pth round trip is bit-exact.
TORCH_STATE_PREFIX = "msport.torch."


@dataclass
class ConversionReport:
    """What a conversion did besides renaming: kept for the user to read, never silent."""

    converted: int = 0
    dropped: dict = field(default_factory=dict)      # key -> reason
    added: dict = field(default_factory=dict)        # key -> reason
    extra_state: dict = field(default_factory=dict)  # optimizer state found, key -> array
    carried: dict = field(default_factory=dict)      # torch-only key -> its msport.torch. record
    notes: list = field(default_factory=list)

    def lines(self):
        out = [f"converted {self.converted} tensors"]
        if self.dropped:
            out.append(f"dropped {len(self.dropped)}: " + _summarise(self.dropped))
        if self.added:
            out.append(f"added {len(self.added)}: " + _summarise(self.added))
        if self.carried:
            out.append(f"carried {len(self.carried)} torch-only tensors as {TORCH_STATE_PREFIX}* records "
                       f"(e.g. {next(iter(self.carried))}), so converting back restores them exactly")
        if self.extra_state:
            out.append(f"optimizer/training state kept aside ({len(self.extra_state)} tensors, "
                       f"e.g. {', '.join(list(self.extra_state)[:3])})")
        out.extend(self.notes)
        return out


def _summarise(reasons):
    by_reason = OrderedDict()
    for key, reason in reasons.items():
        by_reason.setdefault(reason, []).append(key)
    return "; ".join(f"{len(keys)} x {reason} (e.g. {keys[0]})" for reason, keys in by_reason.items())


def _value(value):
    """An array or a checkpoint's lazy tensor as it is; a framework tensor as numpy."""
    return value if isinstance(value, (Entry, np.ndarray)) else as_numpy(value)


def _numbers(value):
    return value.numpy() if isinstance(value, Entry) else np.asarray(value)


def _to_ms(rule, value):
    if isinstance(value, Entry):
        return value.with_shape(registry.ms_layout_shape(rule, value.shape))
    return registry.to_ms_layout(rule, value)


def _to_torch(rule, value):
    if isinstance(value, Entry):
        if rule.layout == "unsqueeze2" and (len(value.shape) != 4 or value.shape[2] != 1):
            raise UserError(f"expected a MindSpore 1-d convolution weight shaped (out, in, 1, k), found {value.shape}")
        return value.with_shape(registry.torch_layout_shape(rule, value.shape))
    return registry.to_torch_layout(rule, value)


def split_name(key):
    """``"layer1.0.bn1.weight"`` -> ``("layer1.0.bn1", "weight")``."""
    module, _, suffix = key.rpartition(".")
    return module, suffix


def join_name(module, suffix):
    """The inverse of :func:`split_name`; a root-level parameter has no module."""
    return f"{module}.{suffix}" if module else suffix


# Without a model, a name that maps to itself must still be one some registered layer uses, so a
# typo'd or foreign key ("linear.scale") is an error rather than a silent pass-through.
def _identity_rule(suffix, side):
    for e in registry.entries():
        for param in e.params:
            if param.matches(suffix, side) and param.target(suffix, side) == suffix and param.layout == "same":
                return param
    return None


def layer_map(model):
    """``{layer name: registry entry}`` of a torch module or a MindSpore cell (what conversion reads
    to know each layer's type rather than infer it from names)."""
    if hasattr(model, "named_modules"):
        return registry.torch_layers(model)
    return registry.ms_layers(model)


def _owner(key, layers):
    """(layer, parameter name relative to it): the longest registered prefix owns the key
    (``bn.bn2d.gamma`` belongs to the BatchNorm3d ``bn``); else the key's own module."""
    parts = key.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in layers:
            return prefix, ".".join(parts[cut:])
    return split_name(key)


def _plan(shapes, side, layers, report, targets=None):
    """``[(key, target key, Param or None, entry or None)]`` for ``{key: shape}`` coming from ``side``.

    With ``layers`` (from :func:`layer_map`) each layer's type is known; a parameter of a cell the
    registry does not know maps to the same name. Without, the type is inferred from names and
    ranks where they determine it (``registry.infer_from_names``), and every other name must be
    one a registered layer keeps unchanged. ``targets`` (``{name: shape}`` of the other side, without
    a layer map) settles what the names leave open: the layer is read from the target's names
    (an ``embedding_table`` makes an Embedding), and a name the target holds as it is maps to itself.
    """
    groups = OrderedDict()
    for key in shapes:
        module, suffix = _owner(key, layers) if layers is not None else split_name(key)
        groups.setdefault(module, []).append(suffix)
    target_groups = OrderedDict()
    for key, shape in (targets or {}).items():
        module, suffix = split_name(key)
        target_groups.setdefault(module, {})[suffix] = shape
    plan = []
    unregistered = []
    for module, suffixes in groups.items():
        if layers is not None:
            entry = layers.get(module)
        else:
            entry = _infer_entry(module, {s: shapes[join_name(module, s)] for s in suffixes}, side,
                                 target_groups.get(module) if targets is not None else None)
        for suffix in suffixes:
            key = join_name(module, suffix)
            if entry is not None and side == "torch" and suffix in entry.torch_only:
                plan.append((key, TORCH_STATE_PREFIX + key, None, entry))
                continue
            rule = entry.param_for(suffix, side) if entry is not None else None
            if rule is None and entry is None and (layers is not None or key in (targets or ())):
                if layers is not None:
                    unregistered.append(key)
                plan.append((key, key, None, None))
                continue
            if rule is None and entry is None:
                rule = _identity_rule(suffix, side)
            if rule is None:
                where = f"a {entry.name} layer" if entry is not None else "any registered layer"
                known = ", ".join(p.torch if side == "torch" else p.ms for p in entry.params) if entry else ""
                raise ConversionError(f"no conversion rule for {'torch' if side == 'torch' else 'MindSpore'} key "
                                      f"{key!r}: {suffix!r} is not a parameter of {where}"
                                      + (f" (it has: {known})" if known else ""))
            plan.append((key, join_name(module, rule.target(suffix, side)), rule, entry))
    if unregistered:
        report.notes.append(f"{len(unregistered)} parameters of layers the registry does not know kept their "
                            f"names (e.g. {unregistered[0]})")
    return plan


def _infer_entry(module, shapes, side, target):
    """The registry entry of one layer known by names only. With the target's names of that layer
    (``target``: ``{suffix: shape}``), the first candidate whose names land on them: the layer the target's
    names identify, the one the source's identify, or none (the names are the same on both sides)."""
    own = registry.infer_from_names(shapes, side)
    if target is None:
        return own
    other = registry.infer_from_names(target, "ms" if side == "torch" else "torch")
    for candidate in (other, own, None):
        if candidate is None:
            if set(shapes) <= set(target):
                return None
            continue
        landed = set()
        for suffix in shapes:
            rule = candidate.param_for(suffix, side)
            if rule is None and not (side == "torch" and suffix in candidate.torch_only):
                break
            if rule is not None:
                landed.add(rule.target(suffix, side))
        else:
            if landed <= set(target):
                return candidate
    return own


def map_names(names, source="torch", layers=None, shapes=None):
    """``{name: other side's name}`` for parameter names of ``source`` (``"torch"`` or ``"mindspore"``),
    through the registry's rules, without touching any array. ``layers``: from :func:`layer_map`;
    ``shapes`` (``{name: shape}``) lets names-only inference use ranks. torch-only state
    (``num_batches_tracked``) maps to ``None``."""
    side = "torch" if source == "torch" else "ms"
    shapes = shapes or {n: () for n in names}
    plan = _plan(OrderedDict((n, tuple(shapes.get(n, ()))) for n in names), side, layers, ConversionReport())
    return OrderedDict((key, None if rule is None and target.startswith(TORCH_STATE_PREFIX) else target)
                       for key, target, rule, _ in plan)


def torch_to_mindspore(state_dict, expected_shapes=None, layers=None, carry=None):
    """Convert a torch state_dict to an ordered ``{ms_name: array}``; returns ``(params, report)``.

    ``expected_shapes`` (``{ms_name: shape}``, e.g. from :func:`ms_param_shapes`)
    turns on the completeness and shape checks, and, without ``layers``, settles
    the names the torch side leaves open; ``layers`` (:func:`layer_map` of
    either model) gives each layer's type. torch's ``num_batches_tracked`` is
    carried under ``msport.torch.`` when ``carry`` is true (default: without
    ``expected_shapes``, since a model has no place for it; a file has).
    Values may be tensors, arrays or a checkpoint's lazy tensors, which stay lazy.
    """
    report = ConversionReport()
    carry = expected_shapes is None if carry is None else carry
    state = _strip_data_parallel(state_dict, report)
    values = OrderedDict((k, _value(v)) for k, v in state.items())
    targets = expected_shapes if layers is None else None
    plan = _plan(OrderedDict((k, v.shape) for k, v in values.items()), "torch", layers, report, targets)
    params = OrderedDict()
    for key, target, rule, entry in plan:
        if rule is None and target.startswith(TORCH_STATE_PREFIX):
            if carry:
                params[target] = values[key]
                report.carried[key] = target
            else:
                report.dropped[key] = f"no MindSpore twin ({entry.name} step counter)"
            continue
        params[target] = _to_ms(rule, values[key]) if rule is not None else values[key]
    if expected_shapes is not None:
        _fill_fixed(params, expected_shapes, layers, "ms", report)
    report.converted = sum(1 for k in params if not k.startswith(TORCH_STATE_PREFIX))
    if expected_shapes is not None:
        _check_against(params, expected_shapes, "MindSpore model")
    return params, report


def mindspore_to_torch(param_dict, expected_shapes=None, num_batches_tracked=None, layers=None):
    """Convert a MindSpore parameter dict to an ordered ``{torch_name: array}``; returns ``(state, report)``.

    Optimizer state in a training checkpoint goes to ``report.extra_state``.
    ``num_batches_tracked`` comes back from the ``msport.torch.`` records of a
    converted .ckpt; where there are none it is set (int64 scalar) from
    ``num_batches_tracked``, else the checkpoint's ``global_step``, else 0.
    ``expected_shapes`` without ``layers`` settles open names, as in :func:`torch_to_mindspore`.
    """
    report = ConversionReport()
    carried = OrderedDict()
    model = OrderedDict()
    for key, value in param_dict.items():
        if key.startswith(TORCH_STATE_PREFIX):
            carried[key[len(TORCH_STATE_PREFIX):]] = _value(value)
        elif MS_OPTIMIZER_STATE.match(key):
            report.extra_state[key] = _value(value)
        else:
            model[key] = _value(value)
    if num_batches_tracked is None:
        step = report.extra_state.get("global_step")
        num_batches_tracked = int(_numbers(step).reshape(-1)[0]) if step is not None else 0
    targets = expected_shapes if layers is None else None
    plan = _plan(OrderedDict((k, v.shape) for k, v in model.items()), "ms", layers, report, targets)
    params = OrderedDict()
    for key, target, rule, entry in plan:
        params[target] = _to_torch(rule, model[key]) if rule is not None else model[key]
        if entry is None or rule is None or rule is not entry.params[-1] or not entry.torch_only:
            continue
        for extra in entry.torch_only:  # after the last parameter, as torch orders its state_dict
            counter = join_name(split_name(target)[0], extra)
            if counter in carried:
                params[counter] = carried.pop(counter)
            else:
                params[counter] = np.array(num_batches_tracked, dtype=np.int64)
                report.added[counter] = f"BatchNorm step counter set to {num_batches_tracked}"
    params.update(carried)
    if expected_shapes is not None:
        _fill_fixed(params, expected_shapes, layers, "torch", report)
    report.converted = len(params) - len(report.added)
    if expected_shapes is not None:
        _check_against(params, expected_shapes, "torch model")
    return params, report


def _fill_fixed(params, expected_shapes, layers, side, report):
    """Reconcile parameters only one side has: MindSpore keeps LayerNorm/BatchNorm/GroupNorm gamma and
    beta (fixed at 1/0) where torch's ``elementwise_affine``/``affine`` is off. Filled going to
    MindSpore, dropped going to torch, and listed in the report."""
    for key in [k for k in expected_shapes if k not in params]:
        module, suffix = split_name(key)
        entry = layers.get(module) if layers is not None else None
        rule = entry.param_for(suffix, side) if entry is not None else None
        if rule is not None and rule.optional and side == "ms":
            spec = rule.init({"shapes": {}})
            if spec.kind == "constant":
                params[key] = np.full(expected_shapes[key], spec.scale, np.float32)
                report.added[key] = f"{entry.name} {suffix} torch does not have, fixed at {spec.scale:g}"
    for key in [k for k in params if k not in expected_shapes]:
        module, suffix = split_name(key)
        entry = layers.get(module) if layers is not None else None
        rule = entry.param_for(suffix, side) if entry is not None else None
        if rule is not None and rule.optional and side == "torch":
            value = params[key]
            spec = rule.init({"shapes": {}})
            if spec.kind == "constant" and np.all(_numbers(value) == spec.scale):
                del params[key]
                report.dropped[key] = f"{entry.name} {suffix} the torch layer does not have (constant {spec.scale:g})"


def _strip_data_parallel(state_dict, report):
    if state_dict and all(k.startswith("module.") for k in state_dict):
        report.dropped["module."] = "DataParallel prefix stripped from every key"
        return OrderedDict((k[len("module."):], v) for k, v in state_dict.items())
    return OrderedDict(state_dict)


def _check_against(params, expected_shapes, what):
    missing = [k for k in expected_shapes if k not in params]
    unexpected = [k for k in params if k not in expected_shapes and not k.startswith(TORCH_STATE_PREFIX)]
    if missing or unexpected:
        raise ConversionError(
            f"converted weights do not fit the {what}: missing {few(missing)}, unexpected {few(unexpected)}")
    wrong = [f"{k} {tuple(params[k].shape)} vs {tuple(expected_shapes[k])}"
             for k in expected_shapes if tuple(params[k].shape) != tuple(expected_shapes[k])]
    if wrong:
        raise ConversionError(f"shape mismatch against the {what}: {few(wrong)}")


# --- shapes of in-memory models -------------------------------------------------------

def ms_param_shapes(cell):
    return OrderedDict((p.name, tuple(p.shape)) for p in cell.get_parameters())


def torch_state_shapes(module):
    return OrderedDict((k, tuple(v.shape)) for k, v in module.state_dict().items())




# --- files ------------------------------------------------------------------------------

def structural_check(names, kind):
    """What is wrong with a set of parameter names that needs no model to see; a list of problems.

    Every BatchNorm has all four tensors, a weight has its bias where its siblings have one, and a
    norm layer has running statistics where its siblings do. Siblings are the same layer in repeated
    blocks: the same path once the block indices inside it are set aside (``layer1.0.conv1`` and
    ``layer1.1.conv1``), with a weight of the same rank. A layer's own index is part of what it is
    (``fc.0`` and ``fc.1`` of a Sequential are two different layers, a Conv2d and a GroupNorm
    perhaps). Scale and shift alone (``gamma``/``beta``) are a LayerNorm's or GroupNorm's: only a
    sibling that is a BatchNorm makes them a BatchNorm cut short. A file cut short or pruned by hand
    fails these; a file that merely lacks whole layers needs a model to be caught.
    """
    batchnorm = (("weight", "bias", "running_mean", "running_var") if kind == "torch"
                 else ("gamma", "beta", "moving_mean", "moving_variance"))
    bn_only = batchnorm[2:] + (TORCH_ONLY_SUFFIXES if kind == "torch" else ())  # gamma/beta alone: a LayerNorm
    names = OrderedDict((n, s) for n, s in _names_and_ranks(names).items()
                        if not (kind == "mindspore" and MS_OPTIMIZER_STATE.match(n)))
    suffixes = OrderedDict()
    for name in names:
        module, suffix = split_name(name)
        suffixes.setdefault(module, set()).add(suffix)
    problems = []
    siblings = OrderedDict()
    norms = OrderedDict()  # MindSpore's gamma/beta alone: a LayerNorm, unless its siblings are BatchNorms
    for module, have in suffixes.items():
        parent, _, own = module.rpartition(".")
        if have & set(bn_only):
            lacking = [s for s in batchnorm if s not in have]
            if lacking:
                problems.append(f"BatchNorm {module} lacks {', '.join(lacking)}")
            norms.setdefault(_sibling_key(parent, own, None), []).append(module)
        elif kind == "mindspore" and have & {"gamma", "beta"}:
            norms.setdefault(_sibling_key(parent, own, None), []).append(module)
        elif "weight" in have or "bias" in have:
            rank = names.get(join_name(module, "weight"))
            siblings.setdefault(_sibling_key(parent, own, rank), []).append(module)
            if rank == 1:  # torch's norm layers: a BatchNorm among them keeps its running statistics
                norms.setdefault(_sibling_key(parent, own, None), []).append(module)
    for group in norms.values():
        with_stats = [m for m in group if suffixes[m] & set(bn_only)]
        for module in group:
            if with_stats and not suffixes[module] & set(bn_only):
                lacking = ", ".join(s for s in batchnorm if s not in suffixes[module])
                problems.append(f"BatchNorm {module} lacks {lacking} (its siblings, {with_stats[0]}..., have them)")
    for group in siblings.values():
        with_bias = [m for m in group if "bias" in suffixes[m]]
        for module in group:
            if "weight" not in suffixes[module]:
                problems.append(f"{module} has a bias but no weight")
            elif with_bias and "bias" not in suffixes[module]:
                problems.append(f"{module} lacks the bias its siblings ({with_bias[0]}...) have")
    return problems


def _sibling_key(parent, own, rank):
    """The same layer of repeated blocks: block indices inside the path set aside, the layer's own kept."""
    return re.sub(r"(^|\.)\d+(?=\.|$)", r"\1#", parent), own, rank


def _names_and_ranks(names):
    """``{name: rank or None}`` from names, or from ``{name: shape or tensor}``."""
    if isinstance(names, dict):
        return OrderedDict((n, len(getattr(v, "shape", v))) for n, v in names.items())
    return OrderedDict((n, None) for n in names)


def destination_kind(src_kind, dst):
    """Whose names ``dst`` will hold when ``src_kind``'s checkpoint is converted into it: a .pth torch's,
    a .ckpt MindSpore's, a .safetensors the other side's."""
    fmt = checkpoints.file_format(dst)
    if fmt == "safetensors":
        return "mindspore" if src_kind == "torch" else "torch"
    return "torch" if fmt == "pth" else "mindspore"


def check_destination(dst, overwrite, inputs=()):
    """Refuse an output path before any work: an input, a folder, an existing file (unless ``overwrite``),
    a folder that does not exist, or (for one input) a file of the input's own side."""
    fixed = {"pth": "torch", "ckpt": "mindspore"}
    if len(inputs) == 1:
        src_fmt, dst_fmt = checkpoints.file_format(inputs[0]), checkpoints.file_format(dst)
        if src_fmt in fixed and fixed[src_fmt] == fixed.get(dst_fmt):
            raise ConversionError(f"{inputs[0]} and {dst} would both hold {fixed[src_fmt]} names; convert between "
                                  f"a torch checkpoint and a MindSpore one (.safetensors takes the other side's names)")
    real = os.path.realpath(dst)
    for path in inputs:
        if os.path.exists(path) and os.path.realpath(path) == real:
            raise ConversionError(f"{dst} is also an input; write the result to another file")
    if os.path.isdir(dst):
        raise ConversionError(f"{dst} is a folder; give the file to write")
    if os.path.lexists(dst) and not overwrite:
        raise ConversionError(f"{dst} exists; pass --overwrite to replace it")
    folder = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(folder):
        raise ConversionError(f"{dst}: folder {folder} does not exist")


def convert_file(src, dst, *, model=None, overwrite=False):
    """Convert the checkpoint ``src`` into ``dst`` (the other side's names); returns the report.

    Either may be a .pth, a .ckpt or a .safetensors (``src`` also a sharded index):
    a .safetensors destination takes the other side's names from ``src``. With
    ``model`` (a built model of the destination's framework: a ``mindspore.nn.Cell``
    for MindSpore names, a ``torch.nn.Module`` for torch's) the result is checked
    against that model's names and shapes before anything is written; without,
    the structural checks that need no model are run. The tensors stream from one
    file to the other with their dtypes (bfloat16 too) and bytes unchanged, and
    torch's step counters travel in a MindSpore file either way, so converting
    back is bit-identical.
    """
    checkpoints.require_file(src)
    check_destination(dst, overwrite, inputs=(src,))
    source = checkpoints.open_checkpoint(src)
    dst_kind = destination_kind(source.kind, dst)
    if dst_kind == source.kind:
        raise ConversionError(f"{src} and {dst} would both hold {source.kind} names; convert between a torch "
                              f"checkpoint and a MindSpore one (.safetensors takes the other side's names)")
    expected, layers = _target(model, dst_kind, dst)
    if model is None:
        problems = structural_check(OrderedDict((k, e.shape) for k, e in source.entries.items()), source.kind)
        if problems:
            raise ConversionError(f"{src} is incomplete: {few(problems, 3)}")
    if source.kind == "torch":
        params, report = torch_to_mindspore(source.entries, expected, layers, carry=True)
    else:
        params, report = mindspore_to_torch(source.entries, expected, layers=layers)
    checkpoints.save_checkpoint(params, dst, dst_kind)
    return report


def _target(model, dst_kind, dst):
    """(parameter shapes, layer map) of the built model a conversion to ``dst_kind`` is checked against,
    or (None, None) without one."""
    if model is None:
        return None, None
    if dst_kind == "mindspore" and not hasattr(model, "parameters_and_names"):
        raise ConversionError(f"{dst} holds MindSpore names: check it against a mindspore.nn.Cell, "
                              f"not a {type(model).__name__}")
    if dst_kind == "torch" and not hasattr(model, "named_modules"):
        raise ConversionError(f"{dst} holds torch names: check it against a torch.nn.Module, "
                              f"not a {type(model).__name__}")
    shapes = ms_param_shapes(model) if dst_kind == "mindspore" else torch_state_shapes(model)
    return shapes, layer_map(model)


# --- in-memory models -------------------------------------------------------------------

def load_torch_weights_into_ms(cell, state_dict):
    """Copy a torch state_dict into a MindSpore cell (names and shapes checked); returns the report.
    Each value is cast to its parameter's dtype (bfloat16 arrives as float32, which holds it exactly)."""
    from msport._mindspore import ms

    params, report = torch_to_mindspore(state_dict, ms_param_shapes(cell), layer_map(cell))
    for p in cell.get_parameters():
        p.set_data(ms.Tensor(_numbers(params[p.name]), dtype=p.dtype))
    return report


def load_ms_weights_into_torch(module, param_dict, num_batches_tracked=None):
    """Copy a MindSpore parameter dict into a torch module with ``strict=True``; returns the report."""
    state, report = mindspore_to_torch(param_dict, torch_state_shapes(module), num_batches_tracked,
                                       layers=layer_map(module))
    _load_torch_state(module, state)
    return report


def _load_torch_state(module, state):
    import torch

    own = module.state_dict()
    module.load_state_dict(OrderedDict((k, torch.from_numpy(np.array(_numbers(v))).to(own[k].dtype))
                                       for k, v in state.items()), strict=True)


def load_file_into_torch(module, path):
    """Load a checkpoint file (.pth/.pt, pytorch-cifar wrappers and ``module.`` keys too, .safetensors, or
    a MindSpore .ckpt) into a torch module.

    Strict: every name and shape must fit. A state_dict saved before torch had
    BatchNorm's ``num_batches_tracked`` gets it set to 0, as torch would start it.
    """
    source = checkpoints.open_checkpoint(path)
    if source.kind == "mindspore":
        return load_ms_weights_into_torch(module, source.entries)
    report = ConversionReport()
    state = _strip_data_parallel(source.entries, report)
    expected = torch_state_shapes(module)
    for key in expected:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = np.array(0, np.int64)
            report.added[key] = "BatchNorm step counter set to 0"
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} vs {expected[k]}" for k in expected
             if k in state and tuple(state[k].shape) != expected[k]
             and not (expected[k] == () and tuple(state[k].shape) == (1,))]  # torch loads (1,) into a scalar
    if missing or unexpected or wrong:
        raise ConversionError(f"{path} does not fit the torch {type(module).__name__}: missing {few(missing)}; "
                              f"unexpected {few(unexpected)}; shape mismatch {few(wrong)}")
    _load_torch_state(module, state)
    report.converted = len(state) - len(report.added)
    return report


def load_file_into_ms(cell, path):
    """Load a checkpoint file (.ckpt, a training checkpoint's optimizer state set aside, .pth or
    .safetensors) into a MindSpore cell. Both go through the conversion rules, so every name and shape
    is checked."""
    source = checkpoints.open_checkpoint(path)
    weights = source.entries
    if source.kind == "mindspore":
        weights, _ = mindspore_to_torch(weights, layers=layer_map(cell))
    return load_torch_weights_into_ms(cell, weights)


def ms_cell_params(cell):
    return OrderedDict((p.name, p.asnumpy()) for p in cell.get_parameters())
