"""Options and helpers the diagnosis commands share: the model pair, its weights and its example inputs.

A zoo pair (``--model`` with ``--torch-weights``/``--ms-weights``, or fresh models from
``--torch-seed``/``--ms-init``/``--ms-seed``), or the user's own pair (``--torch mypkg.model:build
--ms mypkg.port:build``, ``--example mypkg.model:inputs``, ``--name-map FILE``, ``--copy-weights``),
for ``layer-diff``, ``audit`` and ``compare-ckpt``. Imports no framework at module level, so
``msport --help`` and a .pth-only compare-ckpt never start MindSpore.
"""

import os

from msport.errors import UserError


def add_model_arguments(parser, required=True):
    group = parser.add_argument_group("models: a zoo pair (--model) or your own (--torch and --ms)")
    group.add_argument("--model", help="zoo model name (e.g. resnet18, resnet50)")
    group.add_argument("--torch", dest="torch_spec", metavar="MODULE:CALLABLE",
                       help="your torch model: a function returning a torch.nn.Module (e.g. mypkg.model:build)")
    group.add_argument("--ms", dest="ms_spec", metavar="MODULE:CALLABLE",
                       help="your MindSpore port: a function returning a mindspore.nn.Cell (e.g. mypkg.port:build)")
    group.add_argument("--example", metavar="MODULE:CALLABLE",
                       help="a function returning example inputs: an array, a tuple or a dict (token ids welcome)")
    group.add_argument("--name-map", metavar="FILE",
                       help="torch name -> MindSpore name, as JSON or lines 'torch_name mindspore_name' "
                            "(layer or parameter names), for names neither the registry nor the structure pairs")
    group.add_argument("--copy-weights", action="store_true",
                       help="copy the torch model's weights into the MindSpore model through the name pairing")
    group.add_argument("--num-classes", type=int, default=10)
    group.add_argument("--torch-weights", metavar="FILE",
                       help="weights for the torch model (.pth or .ckpt); with a zoo --model and no --ms-weights, "
                            "also converted into the MindSpore model")
    group.add_argument("--ms-weights", metavar="FILE",
                       help="weights for the MindSpore model (.ckpt or .pth); with a zoo --model and no "
                            "--torch-weights, also converted into the torch model")
    group.add_argument("--torch-seed", type=int, default=0, help="torch.manual_seed for a fresh torch model")
    group.add_argument("--ms-init", default="torch", metavar="SCHEME",
                       help="msport.layers init scheme of a fresh MindSpore model, e.g. legacy for "
                            "MindSpore 1.x's Normal(0.01) (default torch)")
    group.add_argument("--ms-seed", type=int, default=0, help="mindspore.set_seed for a fresh MindSpore model")


def build_model_pair(args):
    """``(torch_module, ms_cell, description)`` from the options of :func:`add_model_arguments`."""
    import torch

    import reference_torch
    from msport._mindspore import ms
    from msport.convert import load_file_into_ms, load_file_into_torch
    from msport.layers import INIT_SCHEMES
    from msport.models import create_model, list_models

    if args.torch_spec or args.ms_spec:
        return build_user_pair(args)
    if args.model is None:
        raise UserError("give a zoo model (--model NAME) or your own pair "
                        "(--torch MODULE:CALLABLE --ms MODULE:CALLABLE)")
    if args.copy_weights:
        raise UserError("--copy-weights is for your own pair (--torch/--ms); a zoo pair takes --torch-weights FILE")
    if args.model not in list_models():
        raise UserError(f"unknown model {args.model!r}: choose one of {', '.join(list_models())}")
    if args.ms_init not in INIT_SCHEMES:
        raise UserError(f"unknown init scheme {args.ms_init!r}: choose one of {', '.join(INIT_SCHEMES)}")
    if args.num_classes < 1:
        raise UserError(f"--num-classes must be at least 1, got {args.num_classes}")
    for path in (args.torch_weights, args.ms_weights):
        if path is not None and not os.path.isfile(path):
            raise UserError(f"{path}: no such checkpoint file")
    torch.manual_seed(args.torch_seed)
    torch_module = reference_torch.create_model(args.model, num_classes=args.num_classes)
    ms.set_seed(args.ms_seed)
    ms_cell = create_model(args.model, num_classes=args.num_classes, init=args.ms_init)
    torch_file = args.torch_weights or args.ms_weights
    ms_file = args.ms_weights or args.torch_weights
    if torch_file is None:
        return torch_module, ms_cell, (f"fresh models: torch seed {args.torch_seed}, "
                                       f"MindSpore init {args.ms_init!r} seed {args.ms_seed}")
    load_file_into_torch(torch_module, torch_file)
    load_file_into_ms(ms_cell, ms_file)
    return torch_module, ms_cell, f"weights: torch <- {torch_file}, MindSpore <- {ms_file}"


def copied_text(pairing):
    """What --copy-weights did: how many tensors were copied, and how many on each side were not."""
    text = f"{len(pairing.params)} torch tensors copied into MindSpore through the name pairing"
    if pairing.unresolved_torch or pairing.unresolved_ms:
        text += (f"; NOT copied: {len(pairing.unresolved_torch)} torch tensors without a MindSpore twin, "
                 f"{len(pairing.unresolved_ms)} MindSpore parameters keep their own values (the pairing notes list "
                 f"them; a --name-map pairs them)")
    if pairing.lacking_torch or pairing.lacking_ms:
        text += (f"; {len(pairing.lacking_torch) + len(pairing.lacking_ms)} optional parameters (a bias) that the "
                 f"twin layer does not hold are not copied either: the layers differ in that setting")
    return text


def build_user_pair(args):
    """The user's own pair: ``--torch``/``--ms`` specs, weights from files or copied through the pairing."""
    from msport import resolve
    from msport.convert import load_file_into_ms, load_file_into_torch

    if args.model:
        raise UserError("give --model (a zoo pair) or --torch/--ms (your own), not both")
    if not (args.torch_spec and args.ms_spec):
        raise UserError("your own pair needs both --torch MODULE:CALLABLE and --ms MODULE:CALLABLE")
    for path in (args.torch_weights, args.ms_weights, args.name_map):
        if path is not None and not os.path.isfile(path):
            raise UserError(f"{path}: no such file")
    torch_module = resolve.torch_model(args.torch_spec, option="--torch")
    ms_cell = resolve.ms_model(args.ms_spec, option="--ms")
    described = [f"torch {args.torch_spec}", f"MindSpore {args.ms_spec}"]
    if args.torch_weights:
        load_file_into_torch(torch_module, args.torch_weights)
        described.append(f"torch <- {args.torch_weights}")
    if args.ms_weights:
        load_file_into_ms(ms_cell, args.ms_weights)
        described.append(f"MindSpore <- {args.ms_weights}")
    if args.copy_weights:
        from msport.diagnose.pairing import copy_torch_weights

        pairing = copy_torch_weights(torch_module, ms_cell, name_map=args.name_map)
        described.append(copied_text(pairing))
    return torch_module, ms_cell, ", ".join(described)


def example_inputs(args):
    """``(inputs, description)`` from ``--example`` (the user's function), else ``(None, None)``."""
    if not getattr(args, "example", None):
        return None, None
    from msport import specs
    from msport.diagnose.capture import as_inputs, describe_inputs

    inputs = specs.call(args.example, "--example")
    positional, keywords = as_inputs(inputs)
    return inputs, f"{args.example}: {describe_inputs(positional, keywords)}"
