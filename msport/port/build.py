"""``port(module, example_inputs)``: export, generate, import, convert the weights, check parity."""

import importlib.util
import itertools
import os
import re
import shutil
import sys
import tempfile
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from msport import registry
from msport.errors import UserError


@dataclass
class PortResult:
    """A ported model: ``cell`` (weights loaded), ``source`` (the generated file's text), ``report``
    (parity, or ``None`` when not checked), ``params`` (``{MindSpore name: array}``, the checkpoint's
    content), ``initial`` (the plain tensors' torch values, which a fresh ``create()`` starts from),
    ``inputs`` (the generated ``construct``'s argument names), ``changes`` (what msport changed on the
    model to export it) and the conversion's own report."""

    name: str
    class_name: str
    cell: object
    source: str
    report: dict
    params: OrderedDict
    initial: OrderedDict
    conversion: object
    program: object
    source_path: str
    inputs: list = field(default_factory=list)
    changes: list = field(default_factory=list)
    ties: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    def files(self):
        """The file names :meth:`save` writes."""
        names = [f"{self.name}_ms.py", f"{self.name}.ckpt", f"{self.name}_init.ckpt"]
        return names + (["parity.json", "parity.md"] if self.report is not None else [])

    def save(self, directory):
        """Write the model source, the converted weights, the initial values and the parity report."""
        import json

        from msport.checkpoints import save_ms_checkpoint
        from msport.files import atomic_write_text
        from msport.port.parity import parity_markdown

        if not self.params:  # refused before anything is written: MindSpore cannot hold an empty checkpoint
            raise UserError(f"{self.name} has no parameters or buffers, so there are no weights to write; "
                            f"msport port writes a model with its weights")
        os.makedirs(directory, exist_ok=True)
        paths = [os.path.join(directory, f) for f in self.files()]
        atomic_write_text(paths[0], self.source)
        save_ms_checkpoint(self.params, paths[1])
        if self.initial:
            save_ms_checkpoint(self.initial, paths[2])
        else:
            paths.pop(2)
        if self.report is not None:
            atomic_write_text(paths[-2], json.dumps(self.report, indent=1, allow_nan=False) + "\n")
            atomic_write_text(paths[-1], parity_markdown(self.report, f"{self.name} ({self.class_name})"))
        return paths


_COUNTER = itertools.count()


def port(module, example_inputs, *, name=None, concrete_args=None, check=True, workdir=None):
    """Port a ``torch.nn.Module`` to MindSpore; returns a :class:`PortResult`.

    ``example_inputs``: a tensor/array, a tuple of them, a dict of keyword inputs, or ``(args, kwargs)``;
    any dtype. ``concrete_args``: keyword arguments fixed while exporting (a flag the code branches on).
    ``workdir``: where the generated source is written to be imported (GRAPH_MODE compiles from the
    source file); by default a temporary folder that is removed when the cell is. Raises
    :class:`~msport.port.capture.TraceFailed` or :class:`~msport.port.layers.UnsupportedModel`, both
    naming the source lines concerned.
    """
    from msport.port.capture import as_inputs, export, exportable, layer_inputs
    from msport.port.codegen import generate
    from msport.port.coverage import kept_ops

    timings = OrderedDict()
    start = time.perf_counter()
    name = name or _snake(type(module).__name__)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise UserError(f"model name {name!r} must be a Python identifier (it names {name}_ms.py)")
    class_name = class_name_for(name)
    args, kwargs = as_inputs(example_inputs)
    kwargs.update(concrete_args or {})
    with exportable(module) as changes:
        with layer_inputs(module) as received:
            program = export(module, args, kwargs, kept_ops(), name=type(module).__name__)
        timings["export_s"] = time.perf_counter() - start
        source, writer = generate(program, module, class_name, f"{name}_ms", f"{name}.ckpt", f"{name}_init.ckpt",
                                  model_label=name if name == type(module).__name__
                                  else f"{name} ({type(module).__name__})", layer_inputs=received)
        timings["generate_s"] = time.perf_counter() - start - timings["export_s"]
        if writer.mutated:
            shown = ", ".join(writer.mutated[:3]) + (f" and {len(writer.mutated) - 3} more" if len(writer.mutated) > 3 else "")
            changes.append(f"the forward writes to {shown}: the port computes each call with the written values "
                           f"but does not store them back")

        owned = workdir is None
        workdir = workdir or tempfile.mkdtemp(prefix="msport_port_")
        path = os.path.join(workdir, f"{name}_ms.py")
        from msport.files import atomic_write_text

        atomic_write_text(path, source)
        generated = import_source(path)
        cell = getattr(generated, class_name)()
        if owned:  # GRAPH_MODE reads the source when it compiles: the folder lives as long as the cell
            weakref.finalize(cell, shutil.rmtree, workdir, True)
        params, initial, conversion = convert_weights(writer, cell)
        load_into(cell, params)
        timings["build_and_convert_s"] = time.perf_counter() - start - sum(timings.values())

        report = None
        if check:
            from msport.port.parity import parity_report

            report = parity_report(module, cell, args, kwargs, lambda m: convert_weights(writer, cell, m)[0],
                                   changes=changes)
            timings["parity_s"] = time.perf_counter() - start - sum(timings.values())
    inputs = [n for n in program.graph_signature.user_inputs]
    return PortResult(name, class_name, cell, source, report, params, initial, conversion, program, path,
                      inputs, list(changes), dict(writer.ties), timings)


def load_ported(directory, num_classes=None, init="torch"):
    """The model ``msport port`` wrote into ``directory``, freshly initialised (``init``: an msport.layers
    scheme; tensors no layer initialises start from the torch model's values), for training
    (``--model port:DIR``); load weights with ``--init-from``. ``num_classes`` is checked against the last
    Dense layer's output size."""
    import glob

    sources = sorted(glob.glob(os.path.join(directory, "*_ms.py")))
    if len(sources) != 1:
        found = f" ({', '.join(os.path.basename(p) for p in sources)})" if sources else ""
        raise UserError(f"port:{directory}: expected one <name>_ms.py written by msport port, found "
                        f"{len(sources)}{found}")
    cell = import_source(sources[0]).create()
    if init != "torch":
        from msport.layers import apply_init

        apply_init(cell, init)
    from msport._mindspore import nn

    dense = [c for _, c in cell.cells_and_names() if isinstance(c, nn.Dense)]
    if num_classes is not None and dense and dense[-1].out_channels != num_classes:
        raise UserError(f"port:{directory} was generated with {dense[-1].out_channels} outputs, not "
                        f"num_classes={num_classes}; port the torch model built with {num_classes} classes "
                        f"(msport port SPEC --num-classes {num_classes})")
    return cell


def import_source(path):
    """Import a generated model file as a module (under a unique name, so ports never collide)."""
    module_name = f"msport_ported_{os.path.splitext(os.path.basename(path))[0]}_{next(_COUNTER)}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # GRAPH_MODE resolves the construct's globals through it
    spec.loader.exec_module(module)
    return module


def _array(tensor):
    """A torch tensor's values as the checkpoint writer takes them, in its own dtype: numpy for all but
    bfloat16, which numpy 1.x lacks, so its bits go as msport.checkpoints' bfloat16 entry (not widened
    to float32: a bfloat16 model's plain tensors stay bfloat16 in the port's files)."""
    from msport.checkpoints import as_entries

    tensor = tensor.detach().cpu()
    if str(tensor.dtype) == "torch.bfloat16":
        return as_entries({"": tensor})[0]
    return tensor.numpy()


def _tensor_of(root, fqn, default):
    owner, _, attr = fqn.rpartition(".")
    try:
        value = getattr(root.get_submodule(owner) if owner else root, attr)
    except AttributeError:  # a constant export lifted out of the code, not a module's tensor
        return default
    return value if hasattr(value, "detach") else default


def convert_weights(writer, cell, root=None):
    """``(params, initial, conversion report)``: the layers' weights of ``root`` (default: the ported
    module) renamed by the registry (and by user twins' ``params``), the plain tensors under their own
    names, checked against every parameter name and shape of ``cell``; ``initial`` is the plain
    tensors alone."""
    from msport.convert import ms_param_shapes, torch_to_mindspore

    root = writer.root if root is None else root
    state = OrderedDict()
    rules = OrderedDict()
    tied = {alias for alias, first in writer.g.canonical.items() if alias != first}
    for path, (kind, twin) in writer.layers.items():
        module = root.get_submodule(path)
        for key, value in module.state_dict(keep_vars=True).items():
            if f"{path}.{key}" in tied and f"{path}.{key}" not in writer.tensors:
                continue  # one Parameter, the first holder's
            state[f"{path}.{twin.params.get(key, key) if kind == 'user' else key}"] = value
        if kind == "registry":
            for sub, entry in registry.torch_layers(module).items():
                rules[f"{path}.{sub}" if sub else path] = entry
    shapes = ms_param_shapes(cell)
    layer_shapes = OrderedDict((k, v) for k, v in shapes.items() if k not in writer.tensors)
    params, report = torch_to_mindspore(OrderedDict((k, _array(v)) for k, v in state.items()), layer_shapes, rules)
    initial = OrderedDict((path, _array(_tensor_of(root, fqn, value))) for path, (fqn, value) in writer.tensors.items())
    params.update(initial)
    order = [p.name for p in cell.get_parameters()]
    return OrderedDict((k, params[k]) for k in order), initial, report


def load_into(cell, params):
    from msport._mindspore import ms

    from msport.convert.rules import _numbers

    for p in cell.get_parameters():
        value = _numbers(params[p.name])  # a bfloat16 entry as float32, which holds it exactly
        # the parameter's own dtype (bfloat16 stays bfloat16); reshape keeps a 0-d tensor 0-d
        p.set_data(ms.Tensor(np.ascontiguousarray(value).reshape(np.shape(value)), dtype=p.dtype))


def class_name_for(name):
    """``resnet18`` -> ``Resnet18``, ``vit_b_16`` -> ``VitB16``: a Python class name."""
    text = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9a-zA-Z]+", name) if part)
    if not text or text[0].isdigit():
        text = "Model" + text
    return text


def _snake(name):
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


__all__ = ["PortResult", "class_name_for", "convert_weights", "import_source", "load_into", "load_ported", "port"]
