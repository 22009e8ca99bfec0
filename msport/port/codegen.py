"""Trace a torch model with torch.fx and write the source of its MindSpore twin.

The generated model is one ``nn.Cell`` class:

* ``__init__`` recreates every layer the graph calls, by calling msport's factories
  (:mod:`msport.layers`, one per registry entry, torch's signature) with the constructor
  arguments read off the torch module, under torch's attribute path. Containers between
  the root and the layers are rebuilt as ``nn.CellList`` (torch children ``0``, ``1``, ...) or
  :class:`msport.port.support.Block` (named children), so MindSpore's parameter names are
  torch's dotted names (``layer1.0.conv1.weight``), each layer's own parameters renamed by
  the registry (``layer1.0.bn1.gamma``). Parameters the graph reads directly (ViT's
  ``class_token``) become ``Parameter`` members under their torch names.
* ``construct`` has one statement per graph node, named after the node, as torch.fx's own
  generated code: layer calls, and functions/methods through :mod:`msport.port.ops`.
  Nothing else: GRAPH_MODE compiles it.

Nested torch modules that are not registered layers (torchvision's ``BasicBlock``) are traced
through; registered layers, and module types a user registered a twin for, are leaves.
What cannot be mapped is collected, every node of it, and reported at once
(:class:`UnsupportedModel`); no source is written then.
"""

import keyword
import math
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.fx as fx

from msport import registry
from msport.errors import UserError
from msport.port import ops as op_table

SUPPORT = "msport.port.support"
LAYERS = "msport.layers"

# --- user twins for module types -------------------------------------------------------------


@dataclass(frozen=True)
class LayerTwin:
    """A user's MindSpore twin for a torch module type (see :func:`register_layer`)."""

    torch_type: type
    module: str          # where the twin is imported from
    name: str            # the Cell class or factory in that module
    args: Callable       # torch module -> (args tuple, kwargs dict) of the twin's constructor
    params: dict         # torch parameter name (relative) -> the twin's name; absent = same name


_USER_LAYERS = OrderedDict()


def register_layer(torch_type, twin, args=None, params=None):
    """Port every ``torch_type`` module as ``twin(*args(module)[0], **args(module)[1])``.

    ``twin``: a MindSpore Cell class or factory importable by the generated source (a module-
    level name, or the string ``"package.module:Name"``). ``args``: a function of the torch
    module returning ``(args, kwargs)`` of constants (default: none). ``params``: the twin's
    name of each torch parameter/buffer whose name differs (``{"weight": "gamma"}``).
    Registered types are leaves of the trace: their ``forward`` is not traced into.
    Returns the :class:`LayerTwin`.
    """
    if isinstance(twin, str):
        module, _, name = twin.partition(":")
        if not name:
            module, _, name = twin.rpartition(".")
    else:
        module, name = twin.__module__, twin.__qualname__
    if not module or not name or "." in name or "<" in name:
        raise UserError(f"register_layer: {twin!r} is not importable by name; define the twin at module "
                        f"level, or give it as 'package.module:Name'")
    entry = LayerTwin(torch_type, module, name, args or (lambda m: ((), {})), dict(params or {}))
    _USER_LAYERS[torch_type] = entry
    return entry


def unregister_layer(torch_type):
    _USER_LAYERS.pop(torch_type, None)


def layer_twin(module):
    """``("user", LayerTwin)``, ``("registry", LayerEntry)`` or ``(None, None)`` for a torch module.

    A registered torch class counts only when the module's class keeps its ``forward``: a
    subclass that overrides it (torchvision's ``LayerNorm2d``) computes something else and is
    traced through instead.
    """
    for cls in type(module).__mro__:
        if cls in _USER_LAYERS:
            return "user", _USER_LAYERS[cls]
    entry = registry.entry_for_torch(module)
    if entry is not None and type(module).forward is registry.torch_class(entry).forward:
        return "registry", entry
    return None, None


# --- tracing ---------------------------------------------------------------------------------


class TraceFailed(UserError):
    """torch.fx could not trace the model (data-dependent control flow, or bad example inputs)."""


class UnsupportedModel(UserError):
    """Nodes neither the registry, the op table nor a registered twin can map; all of them."""

    def __init__(self, model, unsupported):
        self.unsupported = unsupported
        lines = [f"cannot port {model}: {len(unsupported)} node(s) have no MindSpore twin; register one "
                 f"(msport.port.register_layer for a module type, msport.port.register_op for a function "
                 f"or method) and port again:"]
        lines += [f"  {u}" for u in unsupported]
        super().__init__("\n".join(lines))


@dataclass
class Unsupported:
    node: str
    op: str          # call_module / call_function / call_method / get_attr
    target: str      # torch.nn.Upsample, torchvision.models.swin_transformer.shifted_window_attention...
    where: str       # file:line `code`
    why: str

    def __str__(self):
        return f"{self.node} ({self.op} {self.target}) at {self.where}: {self.why}"

    def as_dict(self):
        return dict(node=self.node, op=self.op, target=self.target, where=self.where, why=self.why)


class _Tracer(fx.Tracer):
    """torch.fx's tracer with msport's leaves: registered layers and user twins."""

    def __init__(self):
        super().__init__()
        self.record_stack_traces = True

    def is_leaf_module(self, m, module_qualified_name):
        kind, _ = layer_twin(m)
        if kind is not None:
            return True
        return super().is_leaf_module(m, module_qualified_name)


def trace(module, concrete_args=None, name=None):
    """``torch.fx.GraphModule`` of ``module`` (traced in eval mode); :class:`TraceFailed` names the
    source line where tracing stopped and the ``concrete_args`` way around it."""
    name = name or type(module).__name__
    was_training = module.training
    module.eval()  # Python branches on self.training (torchvision's aux heads) take their eval path
    tracer = _Tracer()
    try:
        graph = tracer.trace(module, concrete_args=concrete_args)
    except Exception as exc:  # noqa: BLE001 - fx raises TraceError, TypeError, RuntimeError...
        where = _failure_location(exc)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TraceFailed(
            f"cannot trace {name}: {first} at {where}; torch.fx follows one path through the Python code, "
            f"so a branch or loop that depends on tensor values cannot be traced: fix the input it depends "
            f"on with concrete_args (msport port --concrete-arg NAME=VALUE, or port(..., "
            f"concrete_args={{'NAME': VALUE}})), or register a twin for the module that holds it "
            f"(msport.port.register_layer)") from exc
    finally:
        module.train(was_training)
    for node in graph.nodes:  # a fixed argument keeps its value as default: callers need not pass it
        if node.op == "placeholder" and concrete_args and node.target in concrete_args:
            node.args = (concrete_args[node.target],)
    return fx.GraphModule(tracer.root, graph, name)


_FRAMEWORK_DIRS = tuple(os.path.dirname(m.__file__) + os.sep for m in (torch,))


def _failure_location(exc):
    """``file:line `code``` of the innermost frame outside torch itself."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_FRAMEWORK_DIRS)]
    if not frames:
        return "an unknown place (inside torch)"
    frame = frames[-1]
    return f"{_short_path(frame.filename)}:{frame.lineno} `{(frame.line or '').strip()}`"


def _short_path(path):
    if "site-packages" + os.sep in path:
        return path.split("site-packages" + os.sep, 1)[1]
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<fn>\S+)\n\s*(?P<code>[^\n]*)')


def node_location(node):
    """``file:line `code``` of the source line a node came from (its stack trace's last frame)."""
    trace_text = node.stack_trace or ""
    frames = [f for f in _FRAME.finditer(trace_text) if not f["file"].startswith(_FRAMEWORK_DIRS)]
    if not frames:
        return "an unknown line"
    last = frames[-1]
    return f"{_short_path(last['file'])}:{last['line']} `{last['code'].strip()}`"


# --- the module tree -------------------------------------------------------------------------


@dataclass
class _Member:
    """One member of the rebuilt module tree."""

    kind: str                         # "layer", "param", "container"
    order: int = 0
    source: str = ""                  # layer: the factory call; param: the Parameter expression
    children: OrderedDict = field(default_factory=OrderedDict)


def _order_of(root):
    """Position of every module, parameter and buffer path in torch's own order."""
    order = {}
    for name, module in root.named_modules(remove_duplicate=False):
        order.setdefault(name, len(order))
        for attr in list(module._parameters) + list(module._buffers):
            order.setdefault(f"{name}.{attr}" if name else attr, len(order))
    return order


class _Tree:
    def __init__(self, order):
        self.root = _Member("container")
        self.order = order

    def add(self, path, member):
        parts = path.split(".")
        node = self.root
        for i, part in enumerate(parts[:-1]):
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = _Member("container", self.order.get(".".join(parts[:i + 1]), 10 ** 9))
            node = child
        member.order = self.order.get(path, 10 ** 9)
        node.children[parts[-1]] = member


# --- source rendering ------------------------------------------------------------------------

_DTYPES = {torch.float32: "ms.float32", torch.float16: "ms.float16", torch.bfloat16: "ms.bfloat16",
           torch.float64: "ms.float64", torch.int64: "ms.int64", torch.int32: "ms.int32", torch.bool: "ms.bool_",
           torch.uint8: "ms.uint8", torch.int8: "ms.int8", torch.int16: "ms.int16"}


class _CannotRender(Exception):
    pass


def _constant(value):
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return f"float({str(value)!r})"
        return repr(value)
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if value is Ellipsis:
        return "..."
    if isinstance(value, torch.dtype):
        if value not in _DTYPES:
            raise _CannotRender(f"dtype {value}")
        return _DTYPES[value]
    raise _CannotRender(f"{type(value).__name__} constant {value!r}")


def _path_expression(path, lists=frozenset()):
    """``layer1.0.conv1`` -> ``self.layer1[0].conv1`` (``lists``: the container paths built as CellList);
    a name that is no identifier (regnet's ``block1-0``) is reached by ``getattr``."""
    out, prefix = "self", ""
    for part in path.split("."):
        if part.isdigit() and prefix in lists:
            out += f"[{part}]"
        elif part.isidentifier() and not keyword.iskeyword(part):
            out += f".{part}"
        else:
            out = f"getattr({out}, {part!r})"
        prefix = f"{prefix}.{part}" if prefix else part
    return out


def _simplify_arg(name, value):
    """``kernel_size=(3, 3)`` -> ``3``, ``normalized_shape=(768,)`` -> ``768``: how a person writes it."""
    if isinstance(value, tuple) and value and all(v == value[0] for v in value) and isinstance(value[0], int) \
            and name in ("kernel_size", "stride", "padding", "dilation", "output_padding", "normalized_shape",
                         "output_size") and (name != "normalized_shape" or len(value) == 1):
        return value[0]
    return value


def _same_argument(value, default):
    """Is ``value`` what the default already gives (``0.0`` for ``0``, but not ``False`` for ``0``)?"""
    if isinstance(value, bool) or isinstance(default, bool):
        return value is default
    if isinstance(value, (int, float)) and isinstance(default, (int, float)):
        return value == default
    return type(value) is type(default) and value == default


class _Writer:
    """Renders one traced graph; collects every unsupported node instead of stopping at the first."""

    def __init__(self, gm, root, class_name):
        self.gm = gm
        self.root = root
        self.class_name = class_name
        self.unsupported = []
        self.imports = OrderedDict()  # module -> set of names
        self.names = {}               # node -> source text of its value
        self.tree = _Tree(_order_of(root))
        self.layers = OrderedDict()   # torch path -> ("registry", entry) / ("user", twin), for conversion
        self.param_paths = OrderedDict()  # get_attr torch path -> MindSpore parameter path
        self.statements = []
        self.reserved = {"self", "ms", "nn", "ops", "Block", "Parameter", "create"} | set(keyword.kwlist) | \
            {e.factory_name for e in registry.entries()} | {"support", "load_checkpoint"}

    # -- bookkeeping
    def need(self, module, name):
        self.imports.setdefault(module, set()).add(name)

    def fail(self, node, why, target=None):
        if target is None:
            target = (op_table.describe_target(node) if node.op in ("call_function", "call_method")
                      else str(node.target))
        self.unsupported.append(Unsupported(node.name, node.op, target, node_location(node), why))

    def variable(self, node):
        name = node.name
        while name in self.reserved or name in self.taken:
            name += "_"
        self.taken.add(name)
        return name

    # -- values
    def render(self, value):
        if isinstance(value, fx.Node):
            return self.names[value]
        if isinstance(value, torch.Size):
            value = tuple(value)
        if isinstance(value, (tuple, list)):
            items = [self.render(v) for v in value]
            return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k!r}: {self.render(v)}" for k, v in value.items()) + "}"
        if isinstance(value, slice):
            return f"slice({self.render(value.start)}, {self.render(value.stop)}, {self.render(value.step)})"
        return _constant(value)

    def render_index(self, value):
        if isinstance(value, tuple):
            return ", ".join(self.render_index(v) for v in value) if value else "()"
        if isinstance(value, slice):
            parts = ["" if v is None else self.render(v) for v in (value.start, value.stop, value.step)]
            text = f"{parts[0]}:{parts[1]}"
            return text + (f":{parts[2]}" if parts[2] else "")
        if isinstance(value, list):
            return "[" + ", ".join(self.render(v) for v in value) + "]"
        return self.render(value)

    # -- nodes
    def write(self):
        self.taken = set()
        self._drop_asserts()
        self.called = {n.target for n in self.gm.graph.nodes if n.op == "call_module"}
        self.lists = self._list_containers()
        placeholders = []
        for node in self.gm.graph.nodes:
            try:
                if node.op == "placeholder":
                    placeholders.append(self.placeholder(node))
                elif node.op == "get_attr":
                    self.get_attr(node)
                elif node.op == "call_module":
                    self.call_module(node)
                elif node.op in ("call_function", "call_method"):
                    self.call_op(node)
                elif node.op == "output":
                    self.statements.append(f"return {self.render(node.args[0])}")
            except _CannotRender as exc:
                self.fail(node, f"cannot write {exc} in MindSpore source")
                self.names.setdefault(node, node.name)
        return placeholders

    def _list_containers(self):
        """Container paths whose members are all numbered (torch Sequential/ModuleList): nn.CellList."""
        paths = set(self.called)
        for node in self.gm.graph.nodes:
            if node.op == "get_attr":
                owner = node.target.rpartition(".")[0]
                paths.add(owner if owner in self.called else node.target)
        children = {}
        for path in paths:
            parts = path.split(".")
            for i in range(1, len(parts)):
                children.setdefault(".".join(parts[:i]), set()).add(parts[i])
        return frozenset(p for p, kids in children.items() if all(k.isdigit() for k in kids))

    def path(self, path):
        return _path_expression(path, self.lists)

    def _drop_asserts(self):
        """Nodes the op table drops (``torch._assert``), then whatever only they used."""
        graph = self.gm.graph
        for node in list(graph.nodes):
            if node.op in ("call_function", "call_method"):
                op = op_table.lookup(node)
                if op is not None and op.kind == "drop":
                    graph.erase_node(node)
        for node in reversed(list(graph.nodes)):  # pure nodes only: an unknown op is reported, never dropped
            pure = node.op == "get_attr" or (node.op in ("call_function", "call_method")
                                             and op_table.lookup(node) is not None)
            if pure and not node.users:
                graph.erase_node(node)
        self.gm.recompile()  # the torch side runs the same graph (parity with concrete_args)

    def placeholder(self, node):
        name = self.variable(node)
        self.names[node] = name
        if node.args:
            return f"{name}={self.render(node.args[0])}"
        return name

    def get_attr(self, node):
        path = node.target
        owner_path, _, attr = path.rpartition(".")
        if owner_path in self.called:
            kind, twin = layer_twin(self.gm.get_submodule(owner_path))
            if kind is None:  # the layer itself is reported unsupported
                self.names[node] = node.name
                return
            ms_attr = self._layer_param_name(kind, twin, attr)
            self.names[node] = f"{self.path(owner_path)}.{ms_attr}"
            self.param_paths[path] = f"{owner_path}.{ms_attr}"
            return
        if path not in self.param_paths:
            value = self.gm.get_submodule(owner_path) if owner_path else self.gm
            value = getattr(value, attr)
            if not isinstance(value, torch.Tensor):
                self.fail(node, f"get_attr of a {type(value).__name__}, not a tensor")
                self.names[node] = node.name
                return
            trainable = isinstance(value, torch.nn.Parameter) and value.requires_grad
            dtype = _DTYPES.get(value.dtype)
            if dtype is None:
                self.fail(node, f"tensor of dtype {value.dtype}")
                self.names[node] = node.name
                return
            grad = "" if trainable else ", requires_grad=False"
            self.tree.add(path, _Member("param", source=(f"ms.Parameter(ops.zeros({self.render(tuple(value.shape))}, "
                                                         f"{dtype}), name={attr!r}{grad})")))
            self.param_paths[path] = path
        self.names[node] = self.path(path)

    @staticmethod
    def _layer_param_name(kind, twin, attr):
        if kind == "user":
            return twin.params.get(attr, attr)
        rule = twin.param_for(attr, "torch")
        return rule.target(attr, "torch") if rule is not None else attr

    def call_module(self, node):
        path = node.target
        module = self.gm.get_submodule(path)
        if path not in self.layers:
            kind, twin = layer_twin(module)
            if kind is None:
                cls = type(module)
                self.fail(node, f"no registry entry or registered twin for {cls.__module__}.{cls.__qualname__}",
                          target=f"{cls.__module__}.{cls.__qualname__}")
                self.names[node] = node.name
                return
            try:
                source = self._layer_source(kind, twin, module)
            except (registry.UnsupportedLayer, _CannotRender) as exc:
                self.fail(node, str(exc), target=type(module).__name__)
                self.names[node] = node.name
                return
            self.layers[path] = (kind, twin)
            self.tree.add(path, _Member("layer", source=source))
        args = [self.render(a) for a in node.args] + [f"{k}={self.render(v)}" for k, v in node.kwargs.items()]
        name = self.variable(node)
        self.names[node] = name
        self.statements.append(f"{name} = {self.path(path)}({', '.join(args)})")

    def _layer_source(self, kind, twin, module):
        if kind == "user":
            args, kwargs = twin.args(module)
            self.need(twin.module, twin.name)
            text = [self.render(a) for a in args] + [f"{k}={self.render(v)}" for k, v in kwargs.items()]
            return f"{twin.name}({', '.join(text)})"
        arguments = registry.torch_constructor_args(twin, module)
        twin.build(arguments)  # raises UnsupportedLayer for what MindSpore cannot compute
        text = []
        for name, default in twin.signature:
            value = _simplify_arg(name, arguments[name])
            if default is registry.REQUIRED:
                text.append(self.render(value))
            elif not _same_argument(value, default):
                text.append(f"{name}={self.render(value)}")
        self.need(LAYERS, twin.factory_name)
        return f"{twin.factory_name}({', '.join(text)})"

    def call_op(self, node):
        op = op_table.lookup(node)
        if op is None:
            self.fail(node, "not in the op table")
            self.names[node] = node.name
            return
        try:
            values = op.bind(node.args, node.kwargs)
            if op.kind == "alias":
                self.names[node] = self.render(next(iter(values.values())))
                return
            expression = op.emit(op_table.Args(values, self.render, self.render_index))
        except op_table.UnsupportedOp as exc:
            self.fail(node, str(exc))
            self.names[node] = node.name
            return
        for module, name in op.imports:
            self.need(module, name)
        name = self.variable(node)
        self.names[node] = name
        self.statements.append(f"{name} = {expression}")

    # -- the tree
    def init_lines(self):
        lines = []
        for name, member in sorted(self.tree.root.children.items(), key=lambda kv: kv[1].order):
            value = self._member_source(name, member, 0)
            if name.isidentifier() and not keyword.iskeyword(name):
                lines.append(f"self.{name} = {value}")
            else:  # the root is a torch Sequential: members 0, 1, ...
                lines.append(f"setattr(self, {name!r}, {value})")
        return lines

    def _member_source(self, path, member, depth):
        if member.kind != "container":
            return member.source
        pad, inner = "    " * depth, "    " * (depth + 1)
        children = sorted(member.children.items(), key=lambda kv: kv[1].order)
        if path in self.lists:
            by_index = dict((int(k), m) for k, m in children)
            items = []
            for i in range(max(by_index) + 1):
                # an index the graph never calls still holds a place, so the others keep torch's numbers
                items.append(self._member_source(f"{path}.{i}", by_index[i], depth + 1) if i in by_index
                             else "nn.Identity()")
            return "nn.CellList([\n" + "".join(f"{inner}{item},\n" for item in items) + f"{pad}])"
        self.need(SUPPORT, "Block")
        if all(k.isidentifier() and not keyword.iskeyword(k) for k, _ in children):
            body = "".join(f"{inner}{k}={self._member_source(f'{path}.{k}', m, depth + 1)},\n" for k, m in children)
            return f"Block(\n{body}{pad})"
        body = "".join(f"{inner}{k!r}: {self._member_source(f'{path}.{k}', m, depth + 1)},\n" for k, m in children)
        return f"Block(**{{\n{body}{pad}}})"


# --- the file --------------------------------------------------------------------------------

HEADER = '''"""MindSpore twin of {torch_class}, generated by `msport port`.

Layers come from msport's factories (torch's signatures and defaults) under torch's attribute
names, so every parameter name is torch's, renamed only by msport's layer registry
(BatchNorm's weight/bias/running_mean/running_var -> gamma/beta/moving_mean/moving_variance).
construct follows the traced torch graph, one statement per node. Plain parameters start
at zero: load the converted weights.

    from {module_name} import create
    net = create("{checkpoint}")
"""
'''


def generate(gm, root, class_name, module_name, checkpoint, model_label=None):
    """``(source, layers, param_paths)`` for a traced graph; raises :class:`UnsupportedModel`."""
    writer = _Writer(gm, root, class_name)
    placeholders = writer.write()
    init = writer.init_lines()
    if writer.unsupported:
        raise UnsupportedModel(model_label or class_name, writer.unsupported)
    writer.need(SUPPORT, "load_checkpoint")
    cls = type(root)
    lines = [HEADER.format(torch_class=f"{cls.__module__}.{cls.__qualname__}", module_name=module_name,
                           checkpoint=checkpoint), "from msport._mindspore import ms, nn, ops"]
    first = [LAYERS, SUPPORT]
    for module in first + sorted(m for m in writer.imports if m not in first and m != "msport._mindspore"):
        if module in writer.imports:
            lines.append(f"from {module} import {', '.join(sorted(writer.imports[module]))}")
    lines += ["", "", f"class {class_name}(nn.Cell):", "    def __init__(self):", "        super().__init__()"]
    lines += [f"        {line}" for text in init for line in text.split("\n")]
    lines += ["", f"    def construct(self, {', '.join(placeholders)}):"]
    lines += [f"        {s}" for s in writer.statements]
    lines += ["", "", "def create(checkpoint=None):",
              f'    """A {class_name}; with ``checkpoint`` (.ckpt) its weights loaded, names and shapes checked."""',
              f"    net = {class_name}()",
              "    if checkpoint is not None:",
              "        load_checkpoint(net, checkpoint)",
              "    return net", ""]
    source = "\n".join(lines)
    return source, writer.layers, writer.param_paths


def class_name_for(name):
    """``resnet18`` -> ``Resnet18``, ``vit_b_16`` -> ``VitB16``: a Python class name."""
    text = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9a-zA-Z]+", name) if part)
    if not text or text[0].isdigit():
        text = "Model" + text
    return text


__all__ = ["LayerTwin", "TraceFailed", "Unsupported", "UnsupportedModel", "class_name_for", "generate",
           "layer_twin", "node_location", "register_layer", "trace", "unregister_layer"]
