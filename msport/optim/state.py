"""Optimizer state across frameworks: a torch ``optimizer.state_dict()`` into an msport optimizer, and back.

A run trained in torch continues in MindSpore with its moments, step counts and hyperparameters
(``lr`` as a scheduler left it, ``initial_lr``...), so the next MindSpore step is torch's next step.
Which tensors each optimizer keeps, under which torch name, is read from
:mod:`msport.optim.catalog`. The two optimizers must hold the same parameters in the same groups
and order (as torch numbers them: group by group); torch's per-parameter ``step`` must agree within
a group, since msport keeps one per group. Tensors are reshaped where MindSpore stores a parameter
in another shape of the same size (Conv1d's (out, in, 1, k)).
"""

import numpy as np

from msport._mindspore import ms, ops
from msport.errors import UserError
from msport.optim.catalog import IMPLEMENTATION_ONLY


def _array(value):
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _checked_layout(state_dict, optimizer):
    try:
        groups, state = state_dict["param_groups"], state_dict["state"]
    except (KeyError, TypeError):
        raise UserError("not a torch optimizer state_dict(): it needs 'state' and 'param_groups'") from None
    sizes = [len(g["params"]) for g in groups]
    ours = [len(members) for members in optimizer._members]
    if sizes != ours:
        raise UserError(f"the torch optimizer's param groups hold {sizes} parameters, this {optimizer.TORCH} "
                        f"{ours}: build it with the same groups in the same order")
    return groups, state


def torch_state_to_msport(state_dict, optimizer):
    """Load ``torch_optimizer.state_dict()`` into ``optimizer`` (an :class:`msport.optim.TorchOptimizer`)."""
    groups, state = _checked_layout(state_dict, optimizer)
    spec = optimizer.spec
    for g, (saved, members) in enumerate(zip(groups, optimizer._members)):
        group = optimizer.param_groups[g]
        for key, value in saved.items():
            if key != "params" and key not in IMPLEMENTATION_ONLY:  # a structural key that differs is refused
                group[key] = tuple(value) if key == "betas" else value
        if not spec.group_state and any(state.get(i) for i in saved["params"]):
            ops.assign(optimizer.steps[g], ms.Tensor(1.0, ms.float64))  # torch's SGD counts no steps: it has taken some
        for name in spec.group_state:
            values = {float(_array(state[i][name])) for i in saved["params"] if i in state and name in state[i]}
            if len(values) > 1:
                raise UserError(f"param group {g}: torch's parameters are at different {name} values "
                                f"{sorted(values)}; msport keeps one per group")
            if values:
                ops.assign(getattr(optimizer, name + "s")[g], ms.Tensor(values.pop(), ms.float64))
        for index, i in zip(saved["params"], members):
            param = optimizer._parameters[i]
            for name in optimizer.state_names():
                value = state.get(index, {}).get(name)
                array = np.zeros(param.shape, np.float32) if value is None else _array(value).astype(np.float32)
                if array.size != int(np.prod(param.shape)):
                    raise UserError(f"state {name} of torch parameter {index} has shape {array.shape}; "
                                    f"{param.name} is {tuple(param.shape)}")
                ops.assign(getattr(optimizer, name)[i], ms.Tensor(array.reshape(param.shape)))
    return optimizer


def _kept(name, group, spec):
    """Whether torch keeps this state for a group (momentum buffers only with momentum, and so on)."""
    flag = spec.optional_state.get(name)
    if flag is not None:
        return bool(group[flag])
    if name == "momentum_buffer":
        return group["momentum"] != 0
    return True


def msport_state_to_torch(optimizer, shapes=None):
    """The torch ``state_dict()`` of ``optimizer``'s state, torch tensors in torch's layout.

    ``shapes``: torch's shape of each parameter in order (default: MindSpore's), for a layout
    that differs (Conv1d)."""
    import torch

    spec = optimizer.spec
    state, groups, index = {}, [], 0
    for g, members in enumerate(optimizer._members):
        group = optimizer.param_groups[g]
        saved = {k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items() if k != "params"}
        saved["params"] = list(range(index, index + len(members)))
        groups.append(saved)
        scalars = {n: float(getattr(optimizer, n + "s")[g].asnumpy()) for n in spec.group_state}
        if float(optimizer.steps[g].asnumpy()) == 0.0:
            index += len(members)
            continue  # torch keeps no state for a parameter that never stepped
        for i in members:
            entry = {n: torch.tensor(v, dtype=torch.float32) for n, v in scalars.items()}
            for name in optimizer.state_names():
                if _kept(name, group, spec):
                    array = getattr(optimizer, name)[i].asnumpy()
                    shape = shapes[i] if shapes is not None else array.shape
                    entry[name] = torch.from_numpy(array.reshape(shape).copy())
            state[index] = entry
            index += 1
    return {"state": state, "param_groups": groups}
