"""One training step of a torch model and its MindSpore twin (a port), side by side.

:func:`train_step_parity` runs one step from the weights both models hold, on the same batch, in train
mode, each framework with the optimizer and step the paired trainers use, and compares the losses and
the BatchNorm running statistics. It lives with the trainers (it imports them); ``msport port`` does not
train.
"""

from collections import OrderedDict

import numpy as np

from msport.training.config import TrainConfig


def train_step_parity(torch_module, cell, x, y, lr=0.1, momentum=0.9, weight_decay=5e-4):
    """One SGD step (momentum, weight decay on every parameter, mean cross-entropy) in both frameworks
    from the weights they hold, on the same batch, in train mode. Returns the two losses and, for every
    BatchNorm running statistic (torch naming), the largest relative difference after the step."""
    import torch

    from msport.convert import layer_map, mindspore_to_torch
    from msport.training import ms_side

    # the trainers' own config, so every key the MindSpore side reads has the trainers' default
    cfg = TrainConfig(optimizer="sgd", lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=False)
    torch_module.train()
    optimizer = torch.optim.SGD(torch_module.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    optimizer.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(torch_module(torch.from_numpy(x)), torch.from_numpy(y).long())
    loss.backward()
    optimizer.step()
    torch_loss = float(loss.detach())

    cell.set_train(True)
    step = ms_side.Stepper(cell, ms_side.build_optimizer(cfg, cell), cfg)
    loss_sum, _ = step(x, y.astype(np.int32), lr)
    ms_loss = loss_sum / len(y)

    ms_state, _ = mindspore_to_torch(OrderedDict((p.name, p.asnumpy()) for p in cell.get_parameters()),
                                     layers=layer_map(cell))
    stats = OrderedDict()
    torch_state = torch_module.state_dict()
    for name, value in torch_state.items():
        if not name.endswith("running_mean") or name not in ms_state:
            continue
        layer = name[:-len("running_mean")]
        var = torch_state[layer + "running_var"].detach().numpy().astype(np.float64)
        # a mean is judged against its channel's spread (a BatchNorm after a BatchNorm has means of ~1e-9, pure
        # rounding, whose relative difference means nothing); a variance against itself
        std = np.sqrt(var + 1e-5)
        mean_diff = np.abs(value.detach().numpy().astype(np.float64) - ms_state[name]) / std
        var_diff = np.abs(var - ms_state[layer + "running_var"]) / np.maximum(var, 1e-12)
        stats[layer + "running_mean"] = float(mean_diff.max())
        stats[layer + "running_var"] = float(var_diff.max())
    return OrderedDict([("torch_loss", torch_loss), ("ms_loss", ms_loss),
                        ("loss_rel_diff", abs(torch_loss - ms_loss) / max(abs(torch_loss), 1e-30)),
                        ("running_stats_max_rel_diff", max(stats.values()) if stats else 0.0),
                        ("running_stats", stats)])





def output_step_parity(torch_module, cell, args, kwargs, torch_loss, ms_loss, steps=1, lr=0.01,
                       optimizer="sgd"):
    """``steps`` optimizer steps of any model (any inputs, any outputs) in both frameworks from the weights
    they hold, on the same inputs: the list of ``(torch loss, MindSpore loss)``, one per step.

    ``torch_loss(output)`` / ``ms_loss(output)``: each side's scalar loss of the model's output (the
    caller's: a causal LM's shifted cross-entropy, a classifier's). ``optimizer``: ``"sgd"`` (plain,
    no momentum or decay: identical in both) or ``"adamw"`` (``torch.optim.AdamW`` against
    ``msport.optim.AdamW``, torch's semantics; defaults of both)."""
    import torch
    from torch.utils import _pytree as pytree

    from msport._mindspore import ms
    from msport._mindspore import nn as ms_nn

    torch_module.train()
    cell.set_train(True)
    if optimizer == "adamw":
        from msport.optim import AdamW

        t_opt = torch.optim.AdamW(torch_module.parameters(), lr=lr)
        m_opt = AdamW(cell.trainable_params(), lr=lr)
    else:
        t_opt = torch.optim.SGD(torch_module.parameters(), lr=lr)
        m_opt = ms_nn.SGD(cell.trainable_params(), learning_rate=lr)
    inputs = [ms.Tensor(v.detach().numpy()) for v in pytree.tree_leaves((args, kwargs)) if torch.is_tensor(v)]

    def forward(*tensors):
        return ms_loss(cell(*tensors))

    grad_fn = ms.value_and_grad(forward, None, m_opt.parameters)
    losses = []
    for _ in range(steps):
        t_opt.zero_grad(set_to_none=True)
        loss = torch_loss(torch_module(*args, **kwargs))
        loss.backward()
        t_opt.step()
        value, grads = grad_fn(*inputs)
        m_opt(grads)
        losses.append((float(loss.detach()), float(value.asnumpy())))
    return losses


__all__ = ["output_step_parity", "train_step_parity"]
