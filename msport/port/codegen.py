"""Write the source of a MindSpore twin from an exported (ATen) graph.

The generated model is one ``nn.Cell`` class:

* ``__init__`` recreates every layer the registry knows (or a user registered a twin for) by calling
  msport's factory for it (:mod:`msport.layers`, torch's signature) with the constructor arguments
  read off the torch module, under torch's attribute path. The ATen nodes a layer's call produced
  are found by each node's ``nn_module_stack`` and regrouped into that one call; containers between
  the root and the layers become ``nn.CellList`` or :class:`msport.port.support.Block`, so
  MindSpore's parameter names are torch's dotted names, each layer's own renamed by the registry
  (``layer1.0.bn1.gamma``). Tensors the graph reads directly (a ViT's ``cls_token``, rotary
  frequencies, GPT-2's ``Conv1D`` weights) become ``Parameter`` members under their torch names;
  buffers and constants are non-trainable. A parameter torch shares between modules (GPT-2's
  ``lm_head.weight`` is ``transformer.wte.weight``) is one MindSpore Parameter: the layer that holds
  the alias is given the first holder's Parameter.
* ``construct`` has one statement per remaining node, named after its module path and op
  (``layer1_0_add``), through the op table (:mod:`msport.port.ops`). Inputs are the model's own
  (``input_ids, attention_mask``); outputs keep torch's structure, a ``ModelOutput`` or dict as a
  dict with the same keys. Nothing else: GRAPH_MODE compiles it.

Every name the file binds lives in one namespace: imports are reserved before any variable is
named, so a value never shadows the function that computes it. What cannot be mapped is
collected, every node of it, and reported at once (:class:`UnsupportedModel`).
"""

import keyword
import operator
import re
from collections import OrderedDict

import torch

from msport import registry
from msport.port import ops as op_table
from msport.port.capture import short_path
from msport.port.coverage import known_reason
from msport.port.layers import (
    LAYERS,
    SUPPORT,
    Unsupported,
    UnsupportedModel,
    layer_source,
    layer_twin,
)
from msport.port.tree import (
    CannotRender,
    Member,
    Tree,
    path_expression,
    render_constant,
    torch_dtype_name,
)

_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<fn>\S+)\n\s*(?P<code>[^\n]*)')
_TORCH_DIR = torch.__file__.rsplit("/", 1)[0]


def node_location(node):
    """``file:line `code``` of the source line a node came from (its stack trace's last frame outside torch)."""
    frames = [f for f in _FRAME.finditer(node.meta.get("stack_trace") or "") if not f["file"].startswith(_TORCH_DIR)]
    if not frames:
        return "an unknown line"
    last = frames[-1]
    return f"{short_path(last['file'])}:{last['line']} `{last['code'].strip()}`"


def _is_view(node):
    """A node that only views its input: an aliasing ATen op, or an element of the list one returned."""
    if node.target is operator.getitem:
        return True
    return isinstance(node.target, torch._ops.OpOverload) and node.target.is_view


def _received(node, shapes):
    """Whether a node's tensor has one of the shapes a layer was called with (a dynamic size matches any)."""
    shape = tuple(d if isinstance(d, int) else None for d in _val(node).shape)
    return any(len(s) == len(shape) and all(a is None or b is None or a == b for a, b in zip(s, shape))
               for s in shapes)


def _val(node):
    return node.meta.get("val") if isinstance(node, torch.fx.Node) else None


class NodeArgs(op_table.Args):
    """:class:`msport.port.ops.Args` of one node, with what the trace knows of its values."""

    def __init__(self, values, render, subscript, node):
        super().__init__(values, render, subscript)
        self.__dict__["node"] = node
        self.__dict__["target"] = node.target
        val = _val(node)
        self.__dict__["out_dtype"] = getattr(val, "dtype", None)
        self.__dict__["out_shape"] = tuple(val.shape) if isinstance(val, torch.Tensor) else None

    def in_dtype(self, name):
        return getattr(_val(self._values[name]), "dtype", None)

    def rank(self, name):
        return _val(self._values[name]).ndim


class _Graph:
    """The exported program's placeholders, sorted by what they hold."""

    def __init__(self, program, root):
        sig = program.graph_signature
        self.program, self.root = program, root
        self.kind = {}  # placeholder name -> ("param" | "buffer" | "constant" | "input", fqn or name)
        for name, fqn in sig.inputs_to_parameters.items():
            self.kind[name] = ("param", fqn)
        for name, fqn in sig.inputs_to_buffers.items():
            self.kind[name] = ("buffer", fqn)
        for name, fqn in sig.inputs_to_lifted_tensor_constants.items():
            self.kind[name] = ("constant", fqn)
        for name in sig.user_inputs:
            self.kind[name] = ("input", name)
        self.canonical = {}  # torch name -> the first name of the same tensor (tied weights)
        self.aliases = {}    # torch name -> every name of the same tensor
        first = {}
        for named in (root.named_parameters(remove_duplicate=False), root.named_buffers(remove_duplicate=False)):
            for name, tensor in named:
                self.canonical[name] = first.setdefault(id(tensor), name)
                self.aliases.setdefault(self.canonical[name], []).append(name)
        self.aliases = {name: names for names in self.aliases.values() for name in names}

    def value(self, fqn):
        if fqn in self.program.state_dict:
            return self.program.state_dict[fqn]
        return self.program.constants[fqn]


class Writer:
    """Renders one exported graph; collects every unsupported node instead of stopping at the first."""

    def __init__(self, program, root, layer_inputs=None):
        self.g = _Graph(program, root)
        self.graph = program.graph
        self.root = root
        self.layer_inputs = layer_inputs or {}
        self.unsupported = []
        self.imports = OrderedDict()      # module -> set of names
        self.names = {}                   # node -> source text of its value
        self.layers = OrderedDict()       # torch path -> (kind, twin): layers regrouped into one call
        self.tensors = OrderedDict()      # MindSpore path -> (torch fqn, tensor): plain Parameter members
        self.ties = OrderedDict()         # MindSpore path of an alias -> MindSpore path of the first holder
        self.mutated = []                 # parameters and buffers the forward writes to (rwkv's rescaling)
        self.statements = []
        self.taken = {"self", "ms", "nn", "ops", "Block", "Parameter", "create", "support", "load_checkpoint",
                      "load_initial", "os"} | set(keyword.kwlist) | {e.factory_name for e in registry.entries()}
        self.groups = self._groups()
        self.tree = Tree(_order_of(root))
        self._reserve_imports()

    # -- one namespace: every imported name is taken before any variable is named
    def _reserve_imports(self):
        for node in self.graph.nodes:
            if node.op == "call_function":
                op = op_table.lookup(node.target)
                for _module, name in (op.imports if op else ()):
                    self.taken.add(name)
        for (kind, twin) in self.group_layers.values():
            if kind == "user":
                self.taken.add(twin.name)

    def need(self, module, name):
        self.imports.setdefault(module, set()).add(name)

    def variable(self, base):
        base = re.sub(r"\W", "_", base).strip("_") or "v"
        if base[0].isdigit():
            base = "v" + base
        name = base
        while name in self.taken:
            name += "_"
        self.taken.add(name)
        return name

    def fail(self, node, why, target=None):
        self.unsupported.append(Unsupported(node.name, "call_function", target or op_table.key_of(node.target),
                                            node_location(node), why))

    # -- regrouping registered layers ----------------------------------------------------------------
    def _groups(self):
        """``{node: (path, key)}`` for every node inside a registered layer's call that can be one call."""
        members = OrderedDict()
        self.group_layers = OrderedDict()
        for node in self.graph.nodes:
            if node.op != "call_function":
                continue
            for key, (path, _type) in (node.meta.get("nn_module_stack") or {}).items():
                if not path:
                    continue
                try:
                    module = self.root.get_submodule(path)
                except AttributeError:
                    break
                kind, twin = layer_twin(module)
                if kind is not None:
                    members.setdefault((path, key), []).append(node)
                    self.group_layers.setdefault(path, (kind, twin))
                    break
        out = {}
        for (path, key), nodes in members.items():
            received = self.layer_inputs.get(path)
            while nodes:
                group = set(nodes)
                inputs, front = self._group_inputs(path, nodes, group)
                outputs = [n for n in nodes if any(u not in group for u in n.users)]
                one_tensor = (len(inputs) == 1 and isinstance(_val(inputs[0]), torch.Tensor) and len(outputs) == 1
                              and isinstance(_val(outputs[0]), torch.Tensor))
                if one_tensor and (received is None or _received(inputs[0], received)):
                    for node in nodes:
                        out[node] = (path, key, inputs[0], outputs[0])
                    break
                # a view of the caller's tensor export wrote inside this layer's call (a split chunk re-sliced
                # where the layer reads it) is the caller's: it stays a statement of its own
                views = [n for n in front if _is_view(n)]
                if received is None or not views:
                    break
                nodes = [n for n in nodes if n not in views]
        self.group_layers = OrderedDict((p, v) for p, v in self.group_layers.items()
                                        if any(g[0] == p for g in out.values()))
        return out

    def _group_inputs(self, path, nodes, group):
        """``(inputs, front)``: the values from outside a group its nodes read (the layer's own tensors
        aside), and the nodes that read nothing but those."""
        inputs, front = [], []
        for node in nodes:
            outside = True
            for arg in node.all_input_nodes:
                if arg in group:
                    outside = False
                    continue
                kind = self.g.kind.get(arg.name, ("node",))[0]
                if kind in ("param", "buffer"):
                    fqn = self.g.kind[arg.name][1]
                    if any(n.startswith(path + ".") for n in self.g.aliases.get(fqn, [fqn])):
                        continue
                if arg not in inputs:
                    inputs.append(arg)
            if outside:
                front.append(node)
        return inputs, front

    # -- values
    def render(self, value):
        if isinstance(value, torch.fx.Node):
            return self.names[value]
        if isinstance(value, (tuple, list, torch.Size)):
            items = [self.render(v) for v in value]
            return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
        return render_constant(value)

    def subscript(self, value):
        return self.render(value)

    # -- nodes
    def write(self):
        self.checks_only = op_table.checks_only(self.graph)
        placeholders = []
        for node in self.graph.nodes:
            try:
                if node.op == "placeholder":
                    placeholders += self.placeholder(node)
                elif node.op == "call_function":
                    if node in self.groups:
                        self.call_layer(node)
                    else:
                        self.call_op(node)
                elif node.op == "output":
                    self.output(node)
            except CannotRender as exc:
                self.fail(node, f"cannot write {exc} in MindSpore source")
                self.names.setdefault(node, node.name)
        return placeholders

    def placeholder(self, node):
        kind, fqn = self.g.kind.get(node.name, ("input", node.name))
        if kind == "input":
            name = self.variable(node.name)
            self.names[node] = name
            return [name]
        if node.users:  # export lifts every parameter, also those no op reads
            self.names[node] = self.tensor_expression(fqn, kind)
        return []

    def tensor_expression(self, fqn, kind):
        """``self.<path>`` of a parameter, buffer or constant the graph reads; creates the member."""
        fqn = self.g.canonical.get(fqn, fqn)
        owner, _, attr = fqn.rpartition(".")
        if owner in self.group_layers:
            layer_kind, twin = self.group_layers[owner]
            ms_attr = _layer_param_name(layer_kind, twin, attr)
            return f"{self.path(owner)}.{ms_attr}"
        path = fqn if all(p.isidentifier() or p.isdigit() for p in fqn.split(".")) else re.sub(r"\W", "_", fqn)
        if path not in self.tensors:
            value = self.g.value(fqn)
            trainable = kind == "param" and isinstance(value, torch.nn.Parameter) and value.requires_grad
            self.tensors[path] = (fqn, value)
            grad = "" if trainable else ", requires_grad=False"
            self.tree.add(path, Member("param", source=(
                f"ms.Parameter(ops.zeros({self.render(tuple(value.shape))}, {torch_dtype_name(value.dtype)}), "
                f"name={path.rpartition('.')[2]!r}{grad})")))
        return self.path(path)

    def path(self, path):
        return path_expression(path, self.lists)

    def call_layer(self, node):
        path, _key, source, output = self.groups[node]
        if node is not output:
            return
        kind, twin = self.group_layers[path]
        if path not in self.layers:
            try:
                text = layer_source(kind, twin, self.root.get_submodule(path), self.render, self.need)
            except (registry.UnsupportedLayer, CannotRender) as exc:
                self.fail(node, str(exc), target=type(self.root.get_submodule(path)).__name__)
                self.names[node] = node.name
                return
            self.layers[path] = (kind, twin)
            self.tree.add(path, Member("layer", source=text))
        name = self.variable(path.replace(".", "_"))
        self.names[node] = name
        self.statements.append(f"{name} = {self.path(path)}({self.names[source]})")

    def _base_name(self, node):
        stack = node.meta.get("nn_module_stack") or {}
        path = list(stack.values())[-1][0] if stack else ""
        if not isinstance(path, str) or path.startswith("empty_nn_module_stack"):
            path = ""
        if str(node.target) == "aten.sym_size.int":  # a dynamic size: input_ids_size1
            return f"{self.names.get(node.args[0], 'x')}_size{node.args[1]}"
        short = node.target.__name__.split(".")[0] if isinstance(node.target, torch._ops.OpOverload) \
            else getattr(node.target, "__name__", "v")
        return f"{path.replace('.', '_')}_{short}" if path else short

    def call_op(self, node):
        if node in self.checks_only:  # a value only a dropped check reads (a data-dependent assert): not computed
            return
        op = op_table.lookup(node.target)
        if op is None:
            known = known_reason(str(node.target))
            self.fail(node, "not in the op table" + (f" ({known})" if known else ""))
            self.names[node] = node.name
            return
        if op.kind == "drop" or not node.users:  # every mapped op is pure: an unread value is not computed
            return
        try:
            values = op_table.bind(node.target, node.args, node.kwargs)
            if op.kind == "alias":
                self.names[node] = self.render(next(iter(values.values())))
                return
            expression = op.emit(NodeArgs(values, self.render, self.subscript, node))
        except op_table.UnsupportedOp as exc:
            self.fail(node, str(exc))
            self.names[node] = node.name
            return
        for module, name in op.imports:
            self.need(module, name)
        name = self.variable(self._base_name(node))
        self.names[node] = name
        self.statements.append(f"{name} = {expression}")

    def output(self, node):
        # the graph returns the values a forward writes into its parameters and buffers before the user's outputs;
        # only the user's are the cell's
        user = torch.export.graph_signature.OutputKind.USER_OUTPUT
        specs = self.g.program.graph_signature.output_specs
        self.mutated = [spec.target for spec in specs if spec.kind != user and spec.target]
        values = [v for v, spec in zip(node.args[0], specs) if spec.kind == user]
        leaves = [self.render(v) if isinstance(v, torch.fx.Node) else render_constant(v) for v in values]
        self.statements.append(f"return {render_tree(self.g.program.call_spec.out_spec, iter(leaves))}")

    def prepare(self):
        """Which containers are lists (numbered children only); run before :meth:`write`."""
        paths = set(self.group_layers)
        for kind, fqn in self.g.kind.values():
            if kind != "input":
                paths.add(fqn)
        children = {}
        for path in paths:
            parts = path.split(".")
            for i in range(1, len(parts)):
                children.setdefault(".".join(parts[:i]), set()).add(parts[i])
        self.lists = frozenset(p for p, kids in children.items() if all(k.isdigit() for k in kids))
        self.tree.lists = self.lists

    def tie_lines(self):
        """``self.lm_head.weight = self.transformer.wte.embedding_table``: one Parameter for tied tensors."""
        lines = []
        for alias, first in self.g.canonical.items():
            if alias == first:
                continue
            owner, _, attr = alias.rpartition(".")
            if owner not in self.layers:
                continue
            kind, twin = self.layers[owner]
            target = self.tensor_expression(first, "param")
            ms_attr = _layer_param_name(kind, twin, attr)
            self.ties[f"{owner}.{ms_attr}"] = target
            lines.append(f"{self.path(owner)}.{ms_attr} = {target}")
        return lines


HEADER = '''"""MindSpore twin of {torch_class}, generated by `msport port` from its torch.export graph.

Layers come from msport's factories (torch's signatures and defaults) under torch's attribute
names, so every parameter name is torch's, renamed only by msport's layer registry
(BatchNorm's weight/bias/running_mean/running_var -> gamma/beta/moving_mean/moving_variance).
construct follows the exported graph, one statement per ATen op. Tensors the graph reads
directly (plain parameters, buffers, constants) start from the torch model's own values,
kept in {initial}.

    from {module_name} import create
    net = create("{checkpoint}")
"""
'''


def generate(program, root, class_name, module_name, checkpoint, initial, model_label=None, layer_inputs=None):
    """``(source, writer)`` for an exported program of ``root``; raises :class:`UnsupportedModel`.
    ``layer_inputs``: :func:`msport.port.capture.layer_inputs`' record of the export, if there is one."""
    writer = Writer(program, root, layer_inputs)
    writer.prepare()
    placeholders = writer.write()
    ties = writer.tie_lines()  # before the members are written: a tie may add the first holder as one
    init = writer.tree.init_lines()
    if writer.unsupported:
        raise UnsupportedModel(model_label or class_name, writer.unsupported)
    if writer.tree.uses_block:
        writer.need(SUPPORT, "Block")
    writer.need(SUPPORT, "load_checkpoint")
    writer.need(SUPPORT, "load_initial")
    cls = type(root)
    lines = [HEADER.format(torch_class=f"{cls.__module__}.{cls.__qualname__}", module_name=module_name,
                           checkpoint=checkpoint, initial=initial), "import os", "",
             "from msport._mindspore import ms, nn, ops"]
    first = [LAYERS, SUPPORT]
    for module in first + sorted(m for m in writer.imports if m not in first):
        if module in writer.imports:
            names = sorted(writer.imports[module])
            if module == "msport.port" and names == ["support"]:
                lines.append("from msport.port import support")
            else:
                lines.append(f"from {module} import {', '.join(names)}")
    lines += ["", "", f"class {class_name}(nn.Cell):", "    def __init__(self):", "        super().__init__()"]
    lines += [f"        {line}" for text in init + ties for line in text.split("\n")]
    lines += ["", f"    def construct(self, {', '.join(placeholders)}):"]
    lines += [f"        {s}" for s in writer.statements]
    lines += ["", "", "def create(checkpoint=None):",
              f'    """A {class_name}: with ``checkpoint`` its weights loaded (names and shapes checked), without it',
              '    freshly initialised, the tensors torch does not initialise taken from the torch model."""',
              f"    net = {class_name}()",
              "    if checkpoint is not None:",
              "        return load_checkpoint(net, checkpoint)",
              f"    return load_initial(net, os.path.join(os.path.dirname(os.path.abspath(__file__)), {initial!r}))",
              ""]
    return "\n".join(lines), writer


def _layer_param_name(kind, twin, attr):
    if kind == "user":
        return twin.params.get(attr, attr)
    rule = twin.param_for(attr, "torch")
    return rule.target(attr, "torch") if rule is not None else attr


def _order_of(root):
    """Position of every module, parameter and buffer path in torch's own order."""
    order = {}
    for name, module in root.named_modules(remove_duplicate=False):
        order.setdefault(name, len(order))
        for attr in list(module._parameters) + list(module._buffers):
            order.setdefault(f"{name}.{attr}" if name else attr, len(order))
    return order


def render_tree(spec, leaves):
    """Source of torch's output structure: a leaf, a tuple, or a dict for a dict / ``ModelOutput``."""
    if spec.is_leaf():
        return next(leaves)
    children = [render_tree(c, leaves) for c in spec.children()]
    context = spec.context
    if spec.type is type(None):
        return "None"
    if isinstance(context, (list, tuple)) and len(context) == len(children) and all(isinstance(k, str)
                                                                                    for k in context):
        return "{" + ", ".join(f"{k!r}: {v}" for k, v in zip(context, children)) + "}"
    return f"({children[0]},)" if len(children) == 1 else f"({', '.join(children)})"


__all__ = ["NodeArgs", "Writer", "generate", "node_location", "render_tree"]
