"""Converting a checkpoint file into the other side's: the checks that need no model, output paths checked
before any work, and the streaming from one file to the other (:mod:`msport.checkpoints` does the I/O)."""

import os
import re
from collections import OrderedDict

from msport import checkpoints
from msport.checkpoints import MS_OPTIMIZER_STATE
from msport.convert.rules import (TORCH_ONLY_SUFFIXES, ConversionError, join_name, layer_map, mindspore_to_torch,
                                  ms_param_shapes, split_name, torch_state_shapes, torch_to_mindspore)
from msport.errors import few


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
