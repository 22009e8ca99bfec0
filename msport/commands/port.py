"""msport port SPEC --out DIR: a readable MindSpore twin of an exported PyTorch model, its weights and parity."""

import ast
import json
import os
import tempfile

from msport.errors import UserError

NAME = "port"
HELP = ("generate a MindSpore model from a PyTorch one (torch.export): <name>_ms.py, <name>.ckpt (converted "
        "weights), <name>_init.ckpt (initial values of plain tensors), parity.json/parity.md (every output, "
        "first divergent layer)")

DEFAULT_INPUT_SHAPE = "2,3,224,224"


def add_arguments(parser):
    from msport.resolve import SPEC_HELP

    parser.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write the files into")
    parser.add_argument("--input-shape", default=DEFAULT_INPUT_SHAPE, metavar="N,C,H,W",
                        help=f"shape of one random float32 example input (default {DEFAULT_INPUT_SHAPE}; a batch "
                             f"of 1 fixes the batch size in the generated code)")
    parser.add_argument("--example", metavar="FILE", help="the example inputs instead: an .npz (arrays named arr_0, "
                        "arr_1... are positional, others keyword arguments; any dtype) or module:callable "
                        "returning a tensor, a tuple, a dict or (args, kwargs)")
    parser.add_argument("--name", help="name of the generated files and class (default: from SPEC)")
    parser.add_argument("--concrete-arg", action="append", default=[], metavar="NAME=VALUE",
                        help="fix a forward() keyword argument while exporting (a Python literal), e.g. "
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


def load_example(text):
    """The example inputs an ``--example`` names: ``(args, kwargs)`` or what the callable returned."""
    if text.endswith(".npz"):
        import numpy as np

        if not os.path.isfile(text):
            raise UserError(f"--example {text}: no such file")
        try:
            with np.load(text, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception as exc:  # noqa: BLE001 - not an npz we can read: one line
            raise UserError(f"--example {text}: not a readable .npz ({type(exc).__name__}: {exc})") from exc
        if not arrays:
            raise UserError(f"--example {text}: the file holds no arrays")
        positional = sorted((k for k in arrays if k.startswith("arr_") and k[4:].isdigit()), key=lambda k: int(k[4:]))
        return tuple(arrays[k] for k in positional), {k: v for k, v in arrays.items() if k not in positional}
    from msport import specs

    return specs.call(text, "--example")


def run(args):
    shape = parse_shape(args.input_shape)
    concrete = parse_concrete_args(args.concrete_arg)
    if args.num_classes is not None and args.num_classes < 1:
        raise UserError(f"--num-classes must be at least 1, got {args.num_classes}")
    import numpy as np
    import torch

    from msport import resolve
    from msport.port import UnsupportedModel, port

    torch.manual_seed(args.seed)
    model = resolve.torch_model(args.spec, num_classes=args.num_classes, option="SPEC")
    name = args.name or resolve.file_name(args.spec)
    if not any(True for _ in model.state_dict()):  # before any work: there would be no weights to write
        raise UserError(f"SPEC {args.spec!r}: the model has no parameters or buffers, so there are no weights to "
                        f"port; msport port writes a model with its weights")
    targets = [f"{name}_ms.py", f"{name}.ckpt", f"{name}_init.ckpt", "parity.json", "parity.md"]
    existing = [t for t in targets if os.path.exists(os.path.join(args.out, t))]
    if existing and not args.overwrite:
        raise UserError(f"{args.out} already holds {', '.join(existing)}; pass --overwrite to replace them")
    if args.example:
        example = load_example(args.example)
    else:
        example = torch.from_numpy(np.random.default_rng(args.seed).standard_normal(shape).astype(np.float32))
    with tempfile.TemporaryDirectory(prefix="msport_port_") as workdir:  # the source is imported from here
        try:
            result = port(model, example, name=name, concrete_args=concrete or None, workdir=workdir)
        except UnsupportedModel as exc:
            paths = write_unsupported(args.out, exc)
            raise UserError(f"{exc} (the list is in {', '.join(paths)}; nothing else was written)") from exc
        paths = result.save(args.out)
    report = result.report
    params = sum(int(np.prod(v.shape)) for v in result.params.values())
    cls = type(model)
    print(f"ported {args.spec} ({cls.__module__}.{cls.__qualname__}) as {result.class_name}: "
          f"{len(result.params)} tensors, {params:,} values; inputs {', '.join(result.inputs)}")
    for change in result.changes:
        print(f"changed to export: {change}")
    for row in report["outputs"]:
        rel = "-" if row["norm_rel"] is None else f"{row['norm_rel']:.3g}"
        diff = "-" if row["max_abs"] is None else f"{row['max_abs']:.3g}"
        print(f"output {row['output']} {tuple(row['shape'])}: ||ms - torch|| / ||torch|| = {rel}, max abs {diff} "
              f"({'within' if row['within_tolerance'] else 'OUTSIDE'} the tolerance {report['tolerance']:g})")
    print(f"first divergent layer: {report['first_divergence'] or 'none'} "
          f"({report['layers_compared']} layers compared)")
    for note in report["prepared"]:
        print(f"checked on a prepared copy: {note}")
    print(f"wrote {', '.join(paths)}")
    return 0 if report["within_tolerance"] else 1


def write_unsupported(directory, exc):
    """``unsupported.json`` / ``unsupported.md``: every node that has no twin, with its source line."""
    from msport.files import atomic_write_text

    os.makedirs(directory, exist_ok=True)
    rows = [u.as_dict() for u in exc.unsupported]
    json_path, md_path = os.path.join(directory, "unsupported.json"), os.path.join(directory, "unsupported.md")
    atomic_write_text(json_path, json.dumps(rows, indent=1) + "\n")
    lines = ["# Not ported: nodes without a MindSpore twin", "",
             "Register a twin (docs/port.md) and port again.", "",
             "| node | target | source line | why |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['node']} | {r['target']} | {r['where'].replace('|', '/')} | {r['why']} |" for r in rows]
    atomic_write_text(md_path, "\n".join(lines) + "\n")
    return [json_path, md_path]
