"""Weight conversion between PyTorch state_dicts and MindSpore parameter dicts.

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

Arrays are converted bit-exactly: a round trip returns identical bytes.
"""

import hashlib
import os
import pickle
import re
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from msport import registry
from msport.errors import UserError, first_line
from msport.files import atomic_write


class ConversionError(UserError):
    """A key no rule maps, a missing key or a shape mismatch."""


TORCH_ONLY_SUFFIXES = tuple(sorted({s for e in registry.entries() for s in e.torch_only}))
#: torch state with no MindSpore twin (BatchNorm's num_batches_tracked) travels in a .ckpt under this
#: prefix, with its value, dtype and 0-d shape, so a .pth -> .ckpt -> .pth round trip is bit-exact.
TORCH_STATE_PREFIX = "msport.torch."
# Names MindSpore optimizers and training wrappers add to a training checkpoint.
MS_OPTIMIZER_STATE = re.compile(
    r"^(moments|accum|moment1|moment2|vhat|stat|mean_grad|mean_square|global_step|"
    r"learning_rate|momentum|weight_decay|beta1_power|beta2_power|scale_sense|"
    r"current_iterator_step|last_overflow_iterator_step|epoch_num|step_num|"
    r"epoch)(\.|$)"  # epoch: the finished-epoch counter msport's own resume.ckpt appends
)


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


def _to_numpy(value):
    if hasattr(value, "detach"):  # torch.Tensor
        return value.detach().cpu().numpy()
    if hasattr(value, "asnumpy"):  # mindspore Tensor / Parameter
        return value.asnumpy()
    return np.asarray(value)


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


def _plan(shapes, side, layers, report):
    """``[(key, target key, Param or None, entry or None)]`` for ``{key: shape}`` coming from ``side``.

    With ``layers`` (from :func:`layer_map`) each layer's type is known; a parameter of a cell the
    registry does not know maps to the same name. Without, the type is inferred from names and
    ranks where they determine it (``registry.infer_from_names``), and every other name must be
    one a registered layer keeps unchanged.
    """
    groups = OrderedDict()
    for key in shapes:
        module, suffix = _owner(key, layers) if layers is not None else split_name(key)
        groups.setdefault(module, []).append(suffix)
    plan = []
    unregistered = []
    for module, suffixes in groups.items():
        if layers is not None:
            entry = layers.get(module)
        else:
            entry = registry.infer_from_names({s: shapes[join_name(module, s)] for s in suffixes}, side)
        for suffix in suffixes:
            key = join_name(module, suffix)
            if entry is not None and side == "torch" and suffix in entry.torch_only:
                plan.append((key, TORCH_STATE_PREFIX + key, None, entry))
                continue
            rule = entry.param_for(suffix, side) if entry is not None else None
            if rule is None and entry is None and layers is not None:
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


def torch_to_mindspore(state_dict, expected_shapes=None, layers=None):
    """Convert a torch state_dict to an ordered ``{ms_name: np.ndarray}``; returns ``(params, report)``.

    ``expected_shapes`` (``{ms_name: shape}``, e.g. from :func:`ms_param_shapes`)
    turns on the completeness and shape checks; ``layers`` (:func:`layer_map` of
    either model) gives each layer's type. torch's ``num_batches_tracked`` is
    carried under ``msport.torch.`` unless ``expected_shapes`` is given (a model
    has no place for it).
    """
    report = ConversionReport()
    state = _strip_data_parallel(state_dict, report)
    arrays = OrderedDict((k, _to_numpy(v)) for k, v in state.items())
    plan = _plan(OrderedDict((k, v.shape) for k, v in arrays.items()), "torch", layers, report)
    params = OrderedDict()
    for key, target, rule, entry in plan:
        if rule is None and target.startswith(TORCH_STATE_PREFIX):
            if expected_shapes is None:
                params[target] = arrays[key]
                report.carried[key] = target
            else:
                report.dropped[key] = f"no MindSpore twin ({entry.name} step counter)"
            continue
        params[target] = registry.to_ms_layout(rule, arrays[key]) if rule is not None else arrays[key]
    if expected_shapes is not None:
        _fill_fixed(params, expected_shapes, layers, "ms", report)
    report.converted = sum(1 for k in params if not k.startswith(TORCH_STATE_PREFIX))
    if expected_shapes is not None:
        _check_against(params, expected_shapes, "MindSpore model")
    return params, report


def mindspore_to_torch(param_dict, expected_shapes=None, num_batches_tracked=None, layers=None):
    """Convert a MindSpore parameter dict to an ordered ``{torch_name: np.ndarray}``; returns ``(state, report)``.

    Optimizer state in a training checkpoint goes to ``report.extra_state``.
    ``num_batches_tracked`` comes back from the ``msport.torch.`` records of a
    converted .ckpt; where there are none it is set (int64 scalar) from
    ``num_batches_tracked``, else the checkpoint's ``global_step``, else 0.
    """
    report = ConversionReport()
    carried = OrderedDict()
    model = OrderedDict()
    for key, value in param_dict.items():
        if key.startswith(TORCH_STATE_PREFIX):
            carried[key[len(TORCH_STATE_PREFIX):]] = _to_numpy(value)
        elif MS_OPTIMIZER_STATE.match(key):
            report.extra_state[key] = _to_numpy(value)
        else:
            model[key] = _to_numpy(value)
    if num_batches_tracked is None:
        step = report.extra_state.get("global_step")
        num_batches_tracked = int(np.asarray(step).reshape(-1)[0]) if step is not None else 0
    plan = _plan(OrderedDict((k, v.shape) for k, v in model.items()), "ms", layers, report)
    params = OrderedDict()
    for key, target, rule, entry in plan:
        params[target] = registry.to_torch_layout(rule, model[key]) if rule is not None else model[key]
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
            if spec.kind == "constant" and np.all(value == spec.scale):
                del params[key]
                report.dropped[key] = f"{entry.name} {suffix} the torch layer does not have (constant {spec.scale:g})"


def _strip_data_parallel(state_dict, report):
    if state_dict and all(k.startswith("module.") for k in state_dict):
        report.dropped["module."] = "DataParallel prefix stripped from every key"
        return OrderedDict((k[len("module."):], v) for k, v in state_dict.items())
    return OrderedDict(state_dict)


def _check_against(params, expected_shapes, what):
    missing = [k for k in expected_shapes if k not in params]
    unexpected = [k for k in params if k not in expected_shapes]
    if missing or unexpected:
        raise ConversionError(
            f"converted weights do not fit the {what}: missing {_few(missing)}, unexpected {_few(unexpected)}")
    wrong = [f"{k} {tuple(params[k].shape)} vs {tuple(expected_shapes[k])}"
             for k in expected_shapes if tuple(params[k].shape) != tuple(expected_shapes[k])]
    if wrong:
        raise ConversionError(f"shape mismatch against the {what}: {_few(wrong)}")


def _few(items, n=5):
    if not items:
        return "none"
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


# --- shapes of in-memory models -------------------------------------------------------

def ms_param_shapes(cell):
    return OrderedDict((p.name, tuple(p.shape)) for p in cell.get_parameters())


def torch_state_shapes(module):
    return OrderedDict((k, tuple(v.shape)) for k, v in module.state_dict().items())


# --- files ------------------------------------------------------------------------------

TORCH_SUFFIXES = (".pth", ".pt", ".bin")
MS_SUFFIXES = (".ckpt",)
_TORCH_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")


def file_kind(path):
    """``'torch'`` or ``'mindspore'`` by extension; raises for anything else."""
    ext = os.path.splitext(str(path))[1].lower()
    if ext in TORCH_SUFFIXES:
        return "torch"
    if ext in MS_SUFFIXES:
        return "mindspore"
    raise ConversionError(f"{path}: unknown checkpoint type {ext!r}; use .pth/.pt for torch or .ckpt for MindSpore")


def load_torch_state(path):
    """A torch state_dict as ``{name: np.ndarray}``, also from pytorch-cifar's ``{'net': ...}`` files.

    Loaded with ``weights_only=True``: a file that needs pickled code is refused.
    """
    import torch

    _require_file(path)
    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": noise beside the one-line verdict
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ConversionError(f"{path}: not a loadable torch checkpoint: it holds pickled Python objects besides "
                              f"tensors, which msport never runs (weights_only); re-save its state_dict") from exc
    except Exception as exc:  # noqa: BLE001 - torch raises several types for bad files
        raise ConversionError(f"{path}: not a loadable torch checkpoint ({type(exc).__name__}: "
                              f"{first_line(exc)})") from exc
    if isinstance(obj, dict):
        for key in _TORCH_WRAPPER_KEYS:
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(hasattr(v, "shape") for v in obj.values()):
        raise ConversionError(f"{path}: expected a state_dict (name -> tensor), found {type(obj).__name__}")
    odd = [k for k in obj if not isinstance(k, str)]
    if odd:
        raise ConversionError(f"{path}: a state_dict's keys are parameter names, found {type(odd[0]).__name__} "
                              f"key {odd[0]!r}")
    if not obj:
        raise ConversionError(f"{path}: the state_dict holds no tensors")
    return OrderedDict((k, _file_array(path, k, v)) for k, v in obj.items())


def _file_array(path, key, value):
    try:
        return _to_numpy(value)
    except (TypeError, RuntimeError) as exc:  # e.g. bfloat16, which numpy lacks
        raise ConversionError(f"{path}: tensor {key} ({getattr(value, 'dtype', '?')}) has no numpy equivalent; "
                              f"save float32 weights (model.float())") from exc


#: First record of every .ckpt msport writes: the tensor count and a SHA-256 of the rest, so a file cut at a
#: record boundary (which protobuf, and MindSpore's own crc_check, accept) is caught on loading.
INTEGRITY_KEY = "msport.integrity"


def _integrity(arrays):
    """int64 [count, digest as 4 int64] over ``(name, array)`` pairs, independent of their order."""
    digest = hashlib.sha256()
    for name, array in sorted(arrays, key=lambda item: item[0]):
        array = np.ascontiguousarray(array)
        digest.update(f"{name}\0{array.dtype}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return np.array([len(arrays), *np.frombuffer(digest.digest(), dtype=np.int64)], dtype=np.int64)


def save_ms_checkpoint(arrays, path):
    """Write ``{name: np.ndarray}`` as a .ckpt with msport's integrity mark; refuses an empty one."""
    from msport._mindspore import ms

    if not arrays:
        raise ConversionError(f"refusing to write {path}: there are no tensors to save (an empty checkpoint)")
    # np.ascontiguousarray turns a 0-d array (num_batches_tracked) into shape (1,): keep the shape
    arrays = OrderedDict((k, np.ascontiguousarray(v).reshape(np.shape(v))) for k, v in arrays.items())
    entries = [{"name": INTEGRITY_KEY, "data": ms.Tensor(_integrity(list(arrays.items())))}]
    entries += [{"name": k, "data": ms.Tensor(v)} for k, v in arrays.items()]
    atomic_write(path, lambda tmp: ms.save_checkpoint(entries, tmp))


def load_ms_checkpoint(path):
    """``{name: Parameter}`` of a .ckpt; an msport-written file's integrity mark is checked and removed."""
    from msport._mindspore import ms

    _require_file(path)
    try:
        params = ms.load_checkpoint(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(f"{path}: not a loadable MindSpore checkpoint ({type(exc).__name__}: "
                              f"{first_line(exc)})") from exc
    if not params:
        raise ConversionError(f"{path}: the checkpoint holds no tensors")
    mark = params.pop(INTEGRITY_KEY, None)
    if mark is not None:
        try:
            arrays = [(k, v.asnumpy()) for k, v in params.items() if not isinstance(v, str)]
        except Exception as exc:  # noqa: BLE001 - a damaged tensor record
            raise ConversionError(f"{path}: damaged ({first_line(exc)})") from exc
        recorded, found = mark.asnumpy(), _integrity(arrays)
        if recorded[0] != found[0]:
            raise ConversionError(f"{path} is incomplete: msport wrote {recorded[0]} tensors, the file holds "
                                  f"{found[0]} (a cut or damaged file; use an intact copy)")
        if not np.array_equal(recorded, found):
            raise ConversionError(f"{path} is damaged: its tensors do not match the digest msport wrote "
                                  f"(use an intact copy)")
    return params


def load_ms_params(path):
    """A MindSpore checkpoint as ``{name: np.ndarray}`` (model and optimizer state alike)."""
    params = load_ms_checkpoint(path)
    return OrderedDict((k, _file_array(path, k, v)) for k, v in params.items() if not isinstance(v, str))


def load_any(path):
    """(kind, {name: array}) for a .pth or .ckpt file."""
    kind = file_kind(path)
    return kind, (load_torch_state(path) if kind == "torch" else load_ms_params(path))


def save_torch_state(state, path):
    import torch

    if not state:
        raise ConversionError(f"refusing to write {path}: there are no tensors to save (an empty checkpoint)")
    # np.ascontiguousarray turns a 0-d array (num_batches_tracked) into shape (1,): keep the shape
    tensors = OrderedDict((k, torch.from_numpy(np.ascontiguousarray(v).reshape(np.shape(v)))) for k, v in state.items())
    atomic_write(path, lambda tmp: torch.save(tensors, tmp))


def save_ms_params(params, path):
    save_ms_checkpoint(params, path)


def _require_file(path):
    if os.path.isdir(path):
        raise ConversionError(f"{path} is a folder; give a checkpoint file")
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: no such checkpoint file")


def structural_check(names, kind):
    """What is wrong with a set of parameter names that needs no model to see; a list of problems.

    Every BatchNorm has all four tensors, and a weight has its bias where its siblings (the modules
    at the same place in other blocks) do. A file cut short or pruned by hand fails these; a file that
    merely lacks whole layers needs ``--model`` to be caught.
    """
    batchnorm = (("weight", "bias", "running_mean", "running_var") if kind == "torch"
                 else ("gamma", "beta", "moving_mean", "moving_variance"))
    bn_only = batchnorm[2:] if kind == "torch" else batchnorm
    names = [n for n in names if not (kind == "mindspore" and MS_OPTIMIZER_STATE.match(n))]
    suffixes = OrderedDict()
    for name in names:
        module, suffix = split_name(name)
        suffixes.setdefault(module, set()).add(suffix)
    problems = []
    siblings = OrderedDict()
    for module, have in suffixes.items():
        if have & set(bn_only):
            lacking = [s for s in batchnorm if s not in have]
            if lacking:
                problems.append(f"BatchNorm {module} lacks {', '.join(lacking)}")
        elif "weight" in have or "bias" in have:
            siblings.setdefault(re.sub(r"\.\d+\.", ".#.", f".{module}."), []).append(module)
    for group in siblings.values():
        with_bias = [m for m in group if "bias" in suffixes[m]]
        for module in group:
            if "weight" not in suffixes[module]:
                problems.append(f"{module} has a bias but no weight")
            elif with_bias and "bias" not in suffixes[module]:
                problems.append(f"{module} lacks the bias its siblings ({with_bias[0]}...) have")
    return problems


def convert_file(src, dst, *, model=None, num_classes=10, overwrite=False):
    """Convert ``src`` (.pth or .ckpt) to ``dst`` (the other kind); returns the report.

    With ``model`` (a built model of the target framework: a ``mindspore.nn.Cell``
    for a .ckpt, a ``torch.nn.Module`` for a .pth; :mod:`msport.resolve` turns a name into one) the
    result is checked against that model's parameter names and shapes before
    anything is written; without, the structural checks that need no model are run.
    """
    src_kind, dst_kind = file_kind(src), file_kind(dst)
    if src_kind == dst_kind:
        raise ConversionError(f"{src} and {dst} are both {src_kind} checkpoints; give one .pth and one .ckpt")
    _require_file(src)
    if os.path.exists(dst) and not overwrite:
        raise ConversionError(f"{dst} exists; pass --overwrite to replace it")
    if os.path.isdir(dst):
        raise ConversionError(f"{dst} is a folder; give the file to write")
    if not os.path.isdir(os.path.dirname(os.path.abspath(dst))):
        raise ConversionError(f"{dst}: folder {os.path.dirname(os.path.abspath(dst))} does not exist")
    if num_classes < 1:
        raise ConversionError(f"--num-classes must be at least 1, got {num_classes}")
    _, weights = load_any(src)
    if model is None:
        problems = structural_check(list(weights), src_kind)
        if problems:
            raise ConversionError(f"{src} is incomplete: {_few(problems, 3)}")
    expected, layers = _target(model, dst_kind, dst, num_classes)
    if src_kind == "torch":
        params, report = torch_to_mindspore(weights, expected, layers)
        save_ms_params(params, dst)
    else:
        params, report = mindspore_to_torch(weights, expected, layers=layers)
        save_torch_state(params, dst)
    return report


def _target(model, dst_kind, dst, num_classes):
    """(parameter shapes, layer map) of the model a conversion to ``dst_kind`` is checked against, or
    (None, None) without one. ``model``: a built model of ``dst``'s framework."""
    if model is None:
        return None, None
    if dst_kind == "mindspore" and not hasattr(model, "parameters_and_names"):
        raise ConversionError(f"{dst} is a MindSpore checkpoint: check it against a mindspore.nn.Cell, "
                              f"not a {type(model).__name__}")
    if dst_kind == "torch" and not hasattr(model, "named_modules"):
        raise ConversionError(f"{dst} is a torch checkpoint: check it against a torch.nn.Module, "
                              f"not a {type(model).__name__}")
    shapes = ms_param_shapes(model) if dst_kind == "mindspore" else torch_state_shapes(model)
    return shapes, layer_map(model)


# --- in-memory models -------------------------------------------------------------------

def load_torch_weights_into_ms(cell, state_dict):
    """Copy a torch state_dict into a MindSpore cell (names and shapes checked); returns the report."""
    from msport._mindspore import ms

    params, report = torch_to_mindspore(state_dict, ms_param_shapes(cell), layer_map(cell))
    for p in cell.get_parameters():
        p.set_data(ms.Tensor(params[p.name]))
    return report


def load_ms_weights_into_torch(module, param_dict, num_batches_tracked=None):
    """Copy a MindSpore parameter dict into a torch module with ``strict=True``; returns the report."""
    import torch

    state, report = mindspore_to_torch(param_dict, torch_state_shapes(module), num_batches_tracked,
                                       layers=layer_map(module))
    module.load_state_dict(OrderedDict((k, torch.from_numpy(np.array(v))) for k, v in state.items()),
                           strict=True)
    return report


def load_file_into_torch(module, path):
    """Load a .pth/.pt (pytorch-cifar wrappers and ``module.`` keys too) or a .ckpt into a torch module.

    Strict: every name and shape must fit. A state_dict saved before torch had
    BatchNorm's ``num_batches_tracked`` gets it set to 0, as torch would start it.
    """
    import torch

    kind, weights = load_any(path)
    if kind == "mindspore":
        return load_ms_weights_into_torch(module, weights)
    report = ConversionReport()
    state = _strip_data_parallel(weights, report)
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
        raise ConversionError(f"{path} does not fit the torch {type(module).__name__}: missing {_few(missing)}; "
                              f"unexpected {_few(unexpected)}; shape mismatch {_few(wrong)}")
    module.load_state_dict(OrderedDict((k, torch.from_numpy(np.array(v))) for k, v in state.items()), strict=True)
    report.converted = len(state) - len(report.added)
    return report


def load_file_into_ms(cell, path):
    """Load a .ckpt (a training checkpoint's optimizer state set aside) or a .pth into a MindSpore cell.

    Both go through the conversion rules, so every name and shape is checked.
    """
    kind, weights = load_any(path)
    if kind == "mindspore":
        weights, _ = mindspore_to_torch(weights, layers=layer_map(cell))
    return load_torch_weights_into_ms(cell, weights)


def ms_cell_params(cell):
    return OrderedDict((p.name, p.asnumpy()) for p in cell.get_parameters())
