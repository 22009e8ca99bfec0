"""Weight conversion between PyTorch state_dicts and MindSpore parameter dicts.

Conversion is an explicit, ordered rule list, applied per parameter. A module
is a BatchNorm when it carries running statistics (``running_mean`` in torch,
``moving_mean`` in MindSpore); there is no fuzzy name matching. Any key no rule
maps, and, when the target's shapes are given, any missing key or shape
mismatch, raises :class:`ConversionError` naming the keys.

What has no twin is handled on purpose and listed in the returned
:class:`ConversionReport`:

* torch's ``num_batches_tracked`` is dropped going to MindSpore; going back it
  is restored (from ``num_batches_tracked=``, else the checkpoint's
  ``global_step``, else 0) so the result loads with ``strict=True``.
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

from msport.errors import UserError, first_line
from msport.files import atomic_write


class ConversionError(UserError):
    """A key no rule maps, a missing key or a shape mismatch."""


# (torch suffix, MindSpore suffix) for modules that carry running statistics.
BATCHNORM_RULES = (
    ("weight", "gamma"),
    ("bias", "beta"),
    ("running_mean", "moving_mean"),
    ("running_var", "moving_variance"),
)
# Conv2d/Linear <-> Conv2d/Dense: same names, same (out, in[, kh, kw]) layout, no transpose.
PLAIN_RULES = (
    ("weight", "weight"),
    ("bias", "bias"),
)
TORCH_ONLY_SUFFIXES = ("num_batches_tracked",)
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

    def lines(self):
        out = [f"converted {self.converted} tensors"]
        if self.dropped:
            out.append(f"dropped {len(self.dropped)}: " + _summarise(self.dropped))
        if self.added:
            out.append(f"added {len(self.added)}: " + _summarise(self.added))
        if self.extra_state:
            out.append(f"optimizer/training state kept aside ({len(self.extra_state)} tensors, "
                       f"e.g. {', '.join(list(self.extra_state)[:3])})")
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


def _split(key):
    module, _, suffix = key.rpartition(".")
    return module, suffix


def _norm_modules(keys, marker):
    return {_split(k)[0] for k in keys if _split(k)[1] == marker}


def torch_to_mindspore(state_dict, expected_shapes=None):
    """Convert a torch state_dict to an ordered ``{ms_name: np.ndarray}``; returns ``(params, report)``.

    ``expected_shapes`` (``{ms_name: shape}``, e.g. from :func:`ms_param_shapes`)
    turns on the completeness and shape checks.
    """
    report = ConversionReport()
    state = _strip_data_parallel(state_dict, report)
    bn_modules = _norm_modules(state, "running_mean")
    params = OrderedDict()
    for key, value in state.items():
        module, suffix = _split(key)
        if suffix in TORCH_ONLY_SUFFIXES:
            report.dropped[key] = "no MindSpore twin (BatchNorm step counter)"
            continue
        rules = BATCHNORM_RULES if module in bn_modules else PLAIN_RULES
        target = _apply_rules(rules, module, suffix, key, "torch")
        params[target] = _to_numpy(value)
    report.converted = len(params)
    if expected_shapes is not None:
        _check_against(params, expected_shapes, "MindSpore model")
    return params, report


def mindspore_to_torch(param_dict, expected_shapes=None, num_batches_tracked=None):
    """Convert a MindSpore parameter dict to an ordered ``{torch_name: np.ndarray}``; returns ``(state, report)``.

    Optimizer state in a training checkpoint goes to ``report.extra_state``.
    ``num_batches_tracked`` is restored for every BatchNorm (int64 scalar).
    """
    report = ConversionReport()
    params = OrderedDict()
    model_keys = []
    for key, value in param_dict.items():
        if MS_OPTIMIZER_STATE.match(key):
            report.extra_state[key] = _to_numpy(value)
        else:
            model_keys.append(key)
    bn_modules = _norm_modules(model_keys, "moving_mean")
    if num_batches_tracked is None:
        step = report.extra_state.get("global_step")
        num_batches_tracked = int(np.asarray(step).reshape(-1)[0]) if step is not None else 0
    reverse_bn = tuple((ms, pt) for pt, ms in BATCHNORM_RULES)
    reverse_plain = tuple((ms, pt) for pt, ms in PLAIN_RULES)
    for key in model_keys:
        module, suffix = _split(key)
        rules = reverse_bn if module in bn_modules else reverse_plain
        params[_apply_rules(rules, module, suffix, key, "MindSpore")] = _to_numpy(param_dict[key])
        if module in bn_modules and suffix == "moving_variance":
            counter = f"{module}.num_batches_tracked"
            params[counter] = np.array(num_batches_tracked, dtype=np.int64)
            report.added[counter] = f"BatchNorm step counter set to {num_batches_tracked}"
    report.converted = len(params) - len(report.added)
    if expected_shapes is not None:
        _check_against(params, expected_shapes, "torch model")
    return params, report


def _apply_rules(rules, module, suffix, key, side):
    for source, target in rules:
        if suffix == source:
            return f"{module}.{target}" if module else target
    raise ConversionError(f"no conversion rule for {side} key {key!r} (suffix {suffix!r}); "
                          f"the rules map: {', '.join(s for s, _ in rules)}")


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
    arrays = OrderedDict((k, np.ascontiguousarray(v)) for k, v in arrays.items())
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
        module, suffix = _split(name)
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

    With ``model`` (a zoo name) the result is checked against that model's
    parameter names and shapes before anything is written; without, the
    structural checks that need no model are run.
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
    if model is not None:
        _require_zoo_model(model, src_kind)
    if num_classes < 1:
        raise ConversionError(f"--num-classes must be at least 1, got {num_classes}")
    _, weights = load_any(src)
    if model is None:
        problems = structural_check(list(weights), src_kind)
        if problems:
            raise ConversionError(f"{src} is incomplete: {_few(problems, 3)}")
    if src_kind == "torch":
        expected = None
        if model:
            from msport.models import create_model
            expected = ms_param_shapes(create_model(model, num_classes=num_classes))
        params, report = torch_to_mindspore(weights, expected)
        save_ms_params(params, dst)
    else:
        expected = None
        if model:
            import reference_torch
            expected = torch_state_shapes(reference_torch.create_model(model, num_classes=num_classes))
        params, report = mindspore_to_torch(weights, expected)
        save_torch_state(params, dst)
    return report


def _require_zoo_model(model, src_kind):
    if src_kind == "torch":
        from msport.models import list_models
    else:
        from reference_torch import list_models
    if model not in list_models():
        raise ConversionError(f"unknown model {model!r}: choose one of {', '.join(list_models())}")


# --- in-memory models -------------------------------------------------------------------

def load_torch_weights_into_ms(cell, state_dict):
    """Copy a torch state_dict into a MindSpore cell (names and shapes checked); returns the report."""
    from msport._mindspore import ms

    params, report = torch_to_mindspore(state_dict, ms_param_shapes(cell))
    for p in cell.get_parameters():
        p.set_data(ms.Tensor(params[p.name]))
    return report


def load_ms_weights_into_torch(module, param_dict, num_batches_tracked=None):
    """Copy a MindSpore parameter dict into a torch module with ``strict=True``; returns the report."""
    import torch

    state, report = mindspore_to_torch(param_dict, torch_state_shapes(module), num_batches_tracked)
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
        weights, _ = mindspore_to_torch(weights)
    return load_torch_weights_into_ms(cell, weights)


def ms_cell_params(cell):
    return OrderedDict((p.name, p.asnumpy()) for p in cell.get_parameters())
