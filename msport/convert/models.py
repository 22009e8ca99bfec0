"""Weights into built models: a torch state_dict into a MindSpore cell, a MindSpore parameter dict into a torch
module, and any checkpoint file into either, every name and shape checked through the rules."""

from collections import OrderedDict

import numpy as np

from msport import checkpoints
from msport.convert.rules import (ConversionError, ConversionReport, _numbers, _strip_data_parallel, layer_map,
                                  mindspore_to_torch, ms_param_shapes, torch_state_shapes, torch_to_mindspore)
from msport.errors import few


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
