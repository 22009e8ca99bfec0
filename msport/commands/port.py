"""msport port SPEC --out DIR: a readable MindSpore twin of a traced PyTorch model, its weights and parity."""

import ast
import json
import os
import tempfile

from msport.errors import UserError

NAME = "port"
HELP = ("generate a MindSpore model from a traced PyTorch one: <name>_ms.py, <name>.ckpt (converted "
        "weights), parity.json/parity.md (logits and first divergent layer)")

DEFAULT_INPUT_SHAPE = "1,3,224,224"


def add_arguments(parser):
    from msport.resolve import SPEC_HELP

    parser.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write the files into")
    parser.add_argument("--input-shape", default=DEFAULT_INPUT_SHAPE, metavar="N,C,H,W",
                        help=f"shape of the example input (default {DEFAULT_INPUT_SHAPE})")
    parser.add_argument("--name", help="name of the generated files and class (default: from SPEC)")
    parser.add_argument("--concrete-arg", action="append", default=[], metavar="NAME=VALUE",
                        help="fix a forward() argument while tracing (a Python literal), e.g. "
                             "--concrete-arg return_aux=False; repeatable")
    parser.add_argument("--num-classes", type=int, help="passed to the model builder when it takes num_classes "
                                                        "(torchvision's do)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and input (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace files already in DIR")


def parse_shape(text):
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(v < 1 for v in shape):
        raise UserError(f"--input-shape {text!r}: expected positive integers separated by commas, e.g. "
                        f"{DEFAULT_INPUT_SHAPE}")
    return shape


def parse_concrete_args(items):
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise UserError(f"--concrete-arg {item!r}: expected NAME=VALUE, e.g. return_aux=False")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise UserError(f"--concrete-arg {item!r}: {value!r} is not a Python literal (True, 3, 'text', None)") \
                from None
    return out


def run(args):
    shape = parse_shape(args.input_shape)
    concrete = parse_concrete_args(args.concrete_arg)
    import numpy as np
    import torch

    from msport.port import UnsupportedModel, port
    from msport import resolve

    torch.manual_seed(args.seed)
    if args.num_classes is not None and args.num_classes < 1:
        raise UserError(f"--num-classes must be at least 1, got {args.num_classes}")
    model = resolve.torch_model(args.spec, num_classes=args.num_classes, option="SPEC")
    name = args.name or resolve.file_name(args.spec)
    targets = [f"{name}_ms.py", f"{name}.ckpt", "parity.json", "parity.md"]
    existing = [t for t in targets if os.path.exists(os.path.join(args.out, t))]
    if existing and not args.overwrite:
        raise UserError(f"{args.out} already holds {', '.join(existing)}; pass --overwrite to replace them")
    x = torch.from_numpy(np.random.default_rng(args.seed).standard_normal(shape).astype(np.float32))
    with tempfile.TemporaryDirectory(prefix="msport_port_") as workdir:  # the source is imported from here
        try:
            result = port(model, x, name=name, concrete_args=concrete or None, workdir=workdir)
        except UnsupportedModel as exc:
            paths = write_unsupported(args.out, exc)
            raise UserError(f"{exc}\n(the list is in {', '.join(paths)}; nothing else was written)") from exc
        paths = result.save(args.out)
    logits = result.report["logits"]
    params = sum(int(np.prod(v.shape)) for v in result.params.values())
    cls = type(model)
    print(f"ported {args.spec} ({cls.__module__}.{cls.__qualname__}) as {result.class_name}: "
          f"{len(result.params)} tensors, {params:,} values")
    print(f"logits {tuple(logits['shape'])}: max |torch - MindSpore| = {logits['max_abs_diff']:.3g} "
          f"({'within' if logits['within_tolerance'] else 'OUTSIDE'} the tolerance {logits['tolerance']:g})")
    print(f"first divergent layer: {result.report['first_divergence'] or 'none'} "
          f"({result.report['layers_compared']} layers compared)")
    print(f"wrote {', '.join(paths)}")
    return 0 if logits["within_tolerance"] else 1


def write_unsupported(directory, exc):
    """``unsupported.json`` / ``unsupported.md``: every node that has no twin, with its source line."""
    from msport.files import atomic_write_text

    os.makedirs(directory, exist_ok=True)
    rows = [u.as_dict() for u in exc.unsupported]
    json_path, md_path = os.path.join(directory, "unsupported.json"), os.path.join(directory, "unsupported.md")
    atomic_write_text(json_path, json.dumps(rows, indent=1) + "\n")
    lines = ["# Not ported: nodes without a MindSpore twin", "",
             "Register a twin (README, `msport port`) and port again.", "",
             "| node | op | target | source line | why |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['node']} | {r['op']} | {r['target']} | {r['where'].replace('|', '/')} | {r['why']} |"
              for r in rows]
    atomic_write_text(md_path, "\n".join(lines) + "\n")
    return [json_path, md_path]
