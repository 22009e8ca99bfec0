"""The ``weight_decay`` check: the decay each parameter really gets in the MindSpore optimizer against
torch's. The rest of the optimizer (its class's semantics, hyperparameters, per-parameter learning rate
and the schedule) is in :mod:`msport.diagnose.audit.recipe`."""

from collections import OrderedDict

import numpy as np

from msport.diagnose.audit.records import record as _record
from msport.optim import TorchOptimizer
from msport.tolerances import WEIGHT_DECAY_REL


def weight_decay_records(optimizer, torch_optimizer, torch_module, ms_to_torch):
    ms_decay = ms_weight_decay_per_parameter(optimizer)
    if torch_optimizer is not None:
        expected = torch_weight_decay_per_parameter(torch_optimizer, torch_module)
        source = "torch optimizer"
    else:
        nominal = max((d for d in ms_decay.values() if d is not None), default=0.0)
        nominal = _nominal_decay(optimizer, nominal)
        expected = OrderedDict((n, nominal) for n, p in torch_module.named_parameters() if p.requires_grad)
        source = "torch SGD convention: every parameter decays"
    ms_name_of = {t: m for m, t in ms_to_torch.items()}
    records = []
    for torch_name, want in expected.items():
        ms_name = ms_name_of.get(torch_name)
        reasons = []
        if ms_name not in ms_decay:
            got, ms_text = None, "not optimized"
            if want:
                reasons.append("not trained by the MindSpore optimizer")
        elif ms_decay[ms_name] is None:
            got, ms_text = None, "dynamic"  # a Cell schedule: nothing to compare
        else:
            got = ms_decay[ms_name]
            ms_text = f"{got:g}"
        if got is not None and not _close(got, want):
            why = ""
            if got == 0.0 and want and not getattr(optimizer, "is_group", False) and \
                    ("beta" in ms_name or "gamma" in ms_name):
                why = (": MindSpore optimizers given a plain parameter list skip every parameter whose name "
                       "contains 'beta' or 'gamma'; pass groups [{'params': params, 'weight_decay': wd}]")
            reasons.append(f"weight decay {got:g}, expected {want:g}{why}")
        records.append(_record("weight_decay", torch_name, f"{want:g}", ms_text, reasons,
                               torch_weight_decay=want, ms_weight_decay=got, expected_from=source))
    return records


def _close(a, b):
    return abs(a - b) <= WEIGHT_DECAY_REL * max(abs(a), abs(b)) or a == b


def _nominal_decay(optimizer, largest):
    """The decay the user asked for: the ungrouped optimizer's ``weight_decay``, else the largest group's."""
    if getattr(optimizer, "is_group", False):
        return largest
    value = getattr(optimizer, "weight_decay", largest)
    try:
        return float(np.asarray(value.asnumpy() if hasattr(value, "asnumpy") else value))
    except (TypeError, ValueError):
        return largest


def ms_weight_decay_per_parameter(optimizer):
    """``{parameter name: decay really applied}`` of a MindSpore optimizer (``None``: a dynamic schedule).

    Mirrors ``Optimizer._init_opt_attrs``/``decay_weight`` in MindSpore 2.10:
    nothing decays unless ``exec_weight_decay``; parameter i decays only when
    ``decay_flags[i]``, by the group's value (grouped) or the single value.
    """
    params = list(optimizer.parameters)
    if isinstance(optimizer, TorchOptimizer):  # torch's rule: every parameter of a group, by the group's value
        return OrderedDict((p.name, float(g["weight_decay"])) for g in optimizer.param_groups for p in g["params"])
    flags = tuple(optimizer.decay_flags)
    if not getattr(optimizer, "exec_weight_decay", True):
        return OrderedDict((p.name, 0.0) for p in params)
    if getattr(optimizer, "is_group", False):
        values = [_decay_value(v) for v in optimizer.group_weight_decay]
    else:
        values = [_decay_value(optimizer.weight_decay)] * len(params)
    return OrderedDict((p.name, (v if flag else 0.0)) for p, flag, v in zip(params, flags, values))


def _decay_value(value):
    if hasattr(value, "construct"):  # a Cell: weight decay as a schedule
        return None
    return float(np.asarray(value.asnumpy() if hasattr(value, "asnumpy") else value))


def torch_weight_decay_per_parameter(torch_optimizer, torch_module):
    """``{torch parameter name: weight_decay of its group}`` (torch decays every parameter of a group)."""
    names = {id(p): n for n, p in torch_module.named_parameters()}
    decay = OrderedDict()
    for group in torch_optimizer.param_groups:
        for p in group["params"]:
            if id(p) in names:
                decay[names[id(p)]] = float(group.get("weight_decay", 0.0))
    return decay
