"""The ``optimizer``, ``lr`` and ``schedule`` checks: the training recipe beyond weight decay.

All three read :mod:`msport.optim.catalog`, the one place that knows each torch optimizer and each
MindSpore built-in:

``optimizer``
    the MindSpore optimizer's class against torch's: an ``msport.optim`` class must compute the same
    torch algorithm; a ``mindspore.nn`` built-in is flagged for every semantic difference the catalog
    lists for it standing in for that torch class (``nn.AdamWeightDecay`` for ``AdamW``: no bias
    correction, eps), and then every hyperparameter it holds (betas, eps, momentum...) per group;
``lr``
    each parameter's learning rate at the start, against its torch group's;
``schedule``
    the first N learning rates of the MindSpore schedule (an ``msport.optim.lr_scheduler`` object, a
    per-step list, or the list the MindSpore optimizer was built with) against torch's scheduler,
    stepped N times. Both schedulers and optimizers are put back as they were afterwards.
"""

import numpy as np

from msport.diagnose.audit.records import record as _record
from msport.optim import MINDSPORE_BUILTINS, OPTIMIZERS, TorchOptimizer
from msport.tolerances import SCHEDULE_LR_REL, WEIGHT_DECAY_REL

SCHEDULE_STEPS = 20


def recipe_records(optimizer, torch_optimizer, torch_module, ms_to_torch, lr_schedule=None, torch_scheduler=None,
                   schedule_steps=SCHEDULE_STEPS):
    records = [_class_record(optimizer, torch_optimizer)]
    records += _hyper_records(optimizer, torch_optimizer)
    records += _lr_records(optimizer, torch_optimizer, torch_module, ms_to_torch)
    if torch_scheduler is not None:
        records += _schedule_records(optimizer, lr_schedule, torch_scheduler, schedule_steps)
    return records


def _close(a, b, rel):
    return a == b or abs(a - b) <= rel * max(abs(a), abs(b))


def _torch_name(torch_optimizer):
    return type(torch_optimizer).__name__


def _class_record(optimizer, torch_optimizer):
    torch_name, ms_name = _torch_name(torch_optimizer), type(optimizer).__name__
    reasons = []
    if isinstance(optimizer, TorchOptimizer):
        if optimizer.TORCH != torch_name:
            reasons.append(f"msport.optim.{ms_name} computes torch's {optimizer.TORCH}, not {torch_name}")
        ms_text = f"msport.optim.{ms_name}"
    elif ms_name in MINDSPORE_BUILTINS:
        builtin = MINDSPORE_BUILTINS[ms_name]
        if torch_name not in builtin.stands_for:
            reasons.append(f"nn.{ms_name} is no twin of torch's {torch_name}")
        for item in builtin.semantics.get(torch_name, ()):
            text, needs = (item, None) if isinstance(item, str) else item
            if needs is None or any(g.get(needs) for g in torch_optimizer.param_groups):
                reasons.append(text)
        if reasons and torch_name in OPTIMIZERS:
            reasons.append(f"msport.optim.{torch_name} computes torch's step")
        ms_text = f"nn.{ms_name}"
    else:
        ms_text = ms_name
        reasons.append(f"{ms_name} is not known to msport: its update cannot be checked against torch's {torch_name}")
    return _record("optimizer", "class", f"torch.optim.{torch_name}", ms_text, reasons)


def _ms_hyper(optimizer, key, group):
    """A hyperparameter of the MindSpore optimizer in torch's terms, or ``None`` where it has none."""
    if isinstance(optimizer, TorchOptimizer):
        return optimizer.param_groups[group].get(key)
    builtin = MINDSPORE_BUILTINS.get(type(optimizer).__name__)
    if builtin is None or key not in builtin.reads:
        return None
    names = builtin.reads[key]
    names = names if key == "betas" else names[:1]
    values = []
    for name in names:
        value = getattr(optimizer, name, None)
        if value is None:
            return None
        values.append(float(np.asarray(value.asnumpy() if hasattr(value, "asnumpy") else value).reshape(-1)[0]))
    return tuple(values) if key == "betas" else values[0]


def _hyper_records(optimizer, torch_optimizer):
    spec = OPTIMIZERS.get(_torch_name(torch_optimizer))
    if spec is None:
        return []
    records = []
    for g, group in enumerate(torch_optimizer.param_groups):
        if not isinstance(optimizer, TorchOptimizer) and g:
            break  # a built-in holds one value of each (its groups carry lr and decay only)
        for key in spec.defaults:
            if key in ("lr", "weight_decay") or key not in group:
                continue  # per parameter, below
            want, got = group[key], _ms_hyper(optimizer, key, g)
            if got is None:
                if not isinstance(optimizer, TorchOptimizer) and want != spec.defaults[key]:
                    records.append(_record("optimizer", f"group {g}: {key}", f"{want!r}", "none",
                                           [(f"torch sets {key}={want!r}; {type(optimizer).__name__} has no "
                                            f"counterpart")]))
                continue
            pairs = zip(want, got) if key == "betas" else [(want, got)]
            same = all(_close(float(a), float(b), WEIGHT_DECAY_REL) for a, b in pairs)
            records.append(_record("optimizer", f"group {g}: {key}", _fmt(want), _fmt(got),
                                   [] if same else [f"{key} {_fmt(got)} vs torch {_fmt(want)}"]))
    return records


def _fmt(value):
    """float32-stored values read back as the user wrote them (9.99999997e-07 -> 1e-06)."""
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return f"{value:.6g}" if isinstance(value, float) else repr(value)


def _ms_lr_per_parameter(optimizer):
    """``{name: learning rate at step 0}`` (``None`` where it is a schedule Cell msport cannot read)."""
    if isinstance(optimizer, TorchOptimizer):
        return {p.name: float(g["lr"]) for g in optimizer.param_groups for p in g["params"]}
    params = list(optimizer.parameters)
    rates = optimizer.learning_rate
    if getattr(optimizer, "is_group_lr", False):
        return {p.name: _first_lr(r) for p, r in zip(params, rates)}
    return {p.name: _first_lr(rates) for p in params}


def _first_lr(rate):
    values = [p.asnumpy() for p in rate.get_parameters()] if hasattr(rate, "construct") else [rate.asnumpy()]
    return float(np.asarray(values[0]).reshape(-1)[0]) if values else None


def _lr_records(optimizer, torch_optimizer, torch_module, ms_to_torch):
    names = {id(p): n for n, p in torch_module.named_parameters()}
    want = {names[id(p)]: float(g["lr"]) for g in torch_optimizer.param_groups for p in g["params"] if id(p) in names}
    got = _ms_lr_per_parameter(optimizer)
    records = []
    for ms_name, lr in got.items():
        torch_name = ms_to_torch.get(ms_name)
        if torch_name not in want or lr is None:
            continue
        reasons = [] if _close(lr, want[torch_name], WEIGHT_DECAY_REL) else [f"lr {lr:g} vs torch {want[torch_name]:g}"]
        records.append(_record("lr", torch_name, f"{want[torch_name]:g}", f"{lr:g}", reasons))
    return records


def _snapshot(optimizer_like):
    return [{k: v for k, v in g.items() if k != "params"} for g in optimizer_like.param_groups]


def _restore(optimizer_like, saved):
    for group, values in zip(optimizer_like.param_groups, saved):
        for key, value in values.items():
            if group.get(key) != value:
                group[key] = value


def _stepped(scheduler, steps):
    """The lr of group 0 at each of ``steps`` steps; the scheduler and its optimizer are put back."""
    saved_groups, saved_state = _snapshot(scheduler.optimizer), scheduler.state_dict()
    try:
        values = []
        for _ in range(steps):
            values.append(float(scheduler.optimizer.param_groups[0]["lr"]))
            scheduler.step()
        return values
    finally:
        scheduler.load_state_dict(saved_state)
        _restore(scheduler.optimizer, saved_groups)


def _schedule_records(optimizer, lr_schedule, torch_scheduler, steps):
    import warnings

    with warnings.catch_warnings():  # torch warns that its scheduler steps before its optimizer here
        warnings.simplefilter("ignore")
        want = _stepped(torch_scheduler, steps)
    if lr_schedule is None:
        got = _ms_list(optimizer)
        source = "the optimizer's learning-rate list"
    elif hasattr(lr_schedule, "step") and hasattr(lr_schedule, "optimizer"):
        got, source = _stepped(lr_schedule, steps), type(lr_schedule).__name__
    else:
        got, source = [float(v) for v in np.asarray(lr_schedule, np.float64).reshape(-1)], "the given list"
    records = []
    for step, value in enumerate(want):
        have = got[step] if step < len(got) else (got[-1] if got else None)  # MindSpore holds a list's last value
        reasons = []
        if have is None or not _close(have, value, SCHEDULE_LR_REL):
            reasons.append(f"lr {have if have is None else f'{have:.6g}'} vs torch {value:.6g} ({source})")
        records.append(_record("schedule", f"step {step}", f"{value:.6g}", "-" if have is None else f"{have:.6g}",
                               reasons))
    return records


def _ms_list(optimizer):
    """A MindSpore optimizer's own per-step learning rates (one value for a fixed rate)."""
    if isinstance(optimizer, TorchOptimizer):
        return [float(optimizer.param_groups[0]["lr"])]
    rate = optimizer.learning_rate[0] if getattr(optimizer, "is_group_lr", False) else optimizer.learning_rate
    values = [p.asnumpy() for p in rate.get_parameters()] if hasattr(rate, "construct") else [rate.asnumpy()]
    return [float(v) for v in np.asarray(values[0]).reshape(-1)]
