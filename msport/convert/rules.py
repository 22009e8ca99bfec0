"""The conversion rules: torch names and layouts to MindSpore's and back, for arrays or lazy tensors.

See :mod:`msport.convert` for what is converted and what has no twin.
"""

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from msport import registry
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
    return registry.ms_layers_by_parameter_names(model)  # keyed as its parameters are named, not as its cells


def owner(key, layers):
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
        module, suffix = owner(key, layers) if layers is not None else split_name(key)
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
