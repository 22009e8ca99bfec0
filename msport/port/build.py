"""``port(module, example_inputs)``: trace, generate, import, convert the weights, check parity."""

import importlib.util
import itertools
import os
import re
import sys
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from msport import registry
from msport.errors import UserError
from msport.port.codegen import class_name_for, generate, trace


@dataclass
class PortResult:
    """A ported model: ``cell`` (weights loaded), ``source`` (the generated file's text), ``report``
    (parity, or ``None`` when not checked), ``params`` (``{MindSpore name: array}``, the .ckpt's
    content) and the conversion's own report."""

    name: str
    class_name: str
    cell: object
    source: str
    report: dict
    params: OrderedDict
    conversion: object
    graph_module: object
    source_path: str
    timings: dict = field(default_factory=dict)

    def files(self):
        """The file names :meth:`save` writes."""
        names = [f"{self.name}_ms.py", f"{self.name}.ckpt"]
        return names + (["parity.json", "parity.md"] if self.report is not None else [])

    def save(self, directory):
        """Write the model source, the converted weights and the parity report into ``directory``."""
        import json

        from msport.checkpoints import save_ms_checkpoint
        from msport.files import atomic_write_text
        from msport.port.parity import parity_markdown

        os.makedirs(directory, exist_ok=True)
        paths = [os.path.join(directory, f) for f in self.files()]
        atomic_write_text(paths[0], self.source)
        save_ms_checkpoint(self.params, paths[1])
        if self.report is not None:
            atomic_write_text(paths[2], json.dumps(self.report, indent=1, allow_nan=False) + "\n")
            atomic_write_text(paths[3], parity_markdown(self.report, f"{self.name} ({self.class_name})"))
        return paths


_COUNTER = itertools.count()


def port(module, example_inputs, *, name=None, concrete_args=None, check=True, workdir=None):
    """Port a ``torch.nn.Module`` to MindSpore; returns a :class:`PortResult`.

    ``example_inputs``: a tensor/array or a tuple of them; the parity check needs one image-like
    tensor. ``concrete_args`` is passed to torch.fx (fix an argument the control flow depends on).
    ``workdir``: where the generated source is written to be imported (GRAPH_MODE compiles from
    the source file); a fresh temporary folder by default. Raises
    :class:`~msport.port.codegen.TraceFailed` or :class:`~msport.port.codegen.UnsupportedModel`,
    both naming the source lines concerned.
    """
    import time

    import torch

    timings = OrderedDict()
    start = time.perf_counter()
    name = name or _snake(type(module).__name__)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise UserError(f"model name {name!r} must be a Python identifier (it names {name}_ms.py)")
    class_name = class_name_for(name)
    gm = trace(module, concrete_args, name=type(module).__name__)
    source, layers, param_paths = generate(gm, module, class_name, f"{name}_ms", f"{name}.ckpt",
                                           model_label=name if name == type(module).__name__
                                           else f"{name} ({type(module).__name__})")
    timings["trace_and_generate_s"] = time.perf_counter() - start

    workdir = workdir or tempfile.mkdtemp(prefix="msport_port_")
    path = os.path.join(workdir, f"{name}_ms.py")
    from msport.files import atomic_write_text

    atomic_write_text(path, source)
    generated = import_source(path)
    cell = getattr(generated, class_name)()
    params, conversion = convert_weights(gm, layers, param_paths, cell)
    _load(cell, params)
    timings["build_and_convert_s"] = time.perf_counter() - start - timings["trace_and_generate_s"]

    report = None
    if check:
        x = _single_input(example_inputs)
        from msport.port.parity import parity_report

        # with concrete_args the original needs them on every call; the traced graph has them built in
        report = parity_report(module if not concrete_args else gm, cell, x)
        timings["parity_s"] = time.perf_counter() - start - sum(timings.values())
    return PortResult(name, class_name, cell, source, report, params, conversion, gm, path, timings)


def load_ported(directory, num_classes=None, init="torch"):
    """The model ``msport port`` wrote into ``directory``, freshly initialised (``init``: an msport.layers
    scheme), for training (``--model port:DIR``); load weights with ``--init-from``. ``num_classes`` is
    checked against the last Dense layer's output size."""
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


def convert_weights(gm, layers, param_paths, cell):
    """``(params, conversion report)``: the traced graph's weights, renamed by the registry (and by
    user twins' ``params``), checked against every parameter name and shape of ``cell``."""
    from msport.convert import ms_param_shapes, torch_to_mindspore

    state = OrderedDict()
    rules = OrderedDict()
    for path, (kind, twin) in layers.items():
        module = gm.get_submodule(path)
        for key, value in module.state_dict().items():
            if kind == "user":
                state[f"{path}.{twin.params.get(key, key)}"] = value
            else:
                state[f"{path}.{key}"] = value
        if kind == "registry":
            for sub, entry in registry.torch_layers(module).items():
                rules[f"{path}.{sub}" if sub else path] = entry
    for torch_path, ms_path in param_paths.items():
        if torch_path == ms_path:  # a parameter the graph reads directly, not a layer's
            owner, _, attr = torch_path.rpartition(".")
            state[torch_path] = getattr(gm.get_submodule(owner) if owner else gm, attr)
    params, report = torch_to_mindspore(state, ms_param_shapes(cell), rules)
    order = [p.name for p in cell.get_parameters()]
    return OrderedDict((k, params[k]) for k in order), report


def _load(cell, params):
    from msport._mindspore import ms

    for p in cell.get_parameters():
        p.set_data(ms.Tensor(np.ascontiguousarray(params[p.name])))


def _single_input(example_inputs):
    value = example_inputs
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise UserError(f"the parity check runs both models on one input tensor; got {len(value)} inputs "
                            f"(port with check=False, and compare the outputs yourself)")
        value = value[0]
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def _snake(name):
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


__all__ = ["PortResult", "convert_weights", "import_source", "load_ported", "port"]
