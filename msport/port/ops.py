"""The op table's mechanism: one entry per ATen op (an ``OpOverload`` such as ``aten.add.Tensor``), the
MindSpore expression it becomes.

``torch.export`` writes every model as a graph over ATen ops, a closed set, so the table is keyed
by them and by nothing else (the entries are in :mod:`msport.port.aten_ops`; coverage against
PyTorch's Core ATen opset is :mod:`msport.port.coverage`). Layers the registry knows are not ops:
:mod:`msport.port.codegen` regroups their nodes into one factory call first.

An entry gives

* ``targets``: the ATen overload names it covers (``"aten.add.Tensor"``), or a Python function the
  graph calls on shapes (``"operator.getitem"``, ``"operator.mul"`` on symbolic sizes);
* ``emit``: a function of the node's bound arguments (:class:`Args`: each attribute the argument's
  source text, named as in the op's schema) returning the MindSpore expression. It raises
  :class:`UnsupportedOp` for a configuration it cannot express;
* ``kind``: ``"expr"`` (one statement ``name = expression``), ``"alias"`` (the node is its first
  argument: ``aten.alias``, ``aten.clone``) or ``"drop"`` (a check the trace already made:
  ``aten._assert_tensor_metadata``; GRAPH_MODE cannot raise).

Arguments are bound through the op's own schema (defaults applied), so an argument torch accepts
and an entry cannot express fails by name instead of being dropped. This module imports torch but
never MindSpore: it writes source text. Users add entries with :func:`register_op`.
"""

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch

from msport.errors import UserError


class UnsupportedOp(UserError):
    """An ATen op, or one configuration of it, the op table cannot express in MindSpore."""


@dataclass(frozen=True)
class Op:
    name: str
    targets: tuple
    emit: Callable = None
    kind: str = "expr"
    imports: tuple = ()   # ((module, name), ...) the expression needs beyond ms/nn/ops
    doc: str = ""


#: Python functions an exported graph calls on symbolic sizes and tuples, with their argument names.
PYTHON_SIGNATURES = {"operator.getitem": ("input", "idx"), "operator.add": ("input", "other"),
                     "operator.sub": ("input", "other"), "operator.mul": ("input", "other"),
                     "operator.floordiv": ("input", "other"), "operator.mod": ("input", "other"),
                     "operator.neg": ("input",), "torch.sym_min": ("input", "other"),
                     "torch.sym_max": ("input", "other"), **{f"operator.{name}": ("input", "other")
                                                             for name in ("eq", "ne", "lt", "le", "gt", "ge")}}


def key_of(target):
    """The table key of a graph node's target: ``"aten.add.Tensor"``, ``"operator.getitem"``."""
    if isinstance(target, torch._ops.OpOverload):
        return str(target)
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", None) or repr(target)
    module = {"_operator": "operator"}.get(module, module)
    return f"{module}.{name}" if module else name


def bind(target, args, kwargs):
    """``OrderedDict`` of a node's arguments by the op's schema names, defaults applied."""
    if isinstance(target, torch._ops.OpOverload):
        out = OrderedDict()
        positional = list(args)
        for i, arg in enumerate(target._schema.arguments):
            if i < len(positional) and not arg.kwarg_only:
                out[arg.name] = positional[i]
            elif arg.name in kwargs:
                out[arg.name] = kwargs[arg.name]
            elif arg.has_default_value():
                out[arg.name] = arg.default_value
            else:
                out[arg.name] = None
        return out
    names = PYTHON_SIGNATURES.get(key_of(target))
    if names is None or len(args) != len(names) or kwargs:
        raise UnsupportedOp(f"{key_of(target)} called with {len(args)} arguments")
    return OrderedDict(zip(names, args))


class Args:
    """Bound arguments of one node: ``a.input`` is the argument's source text, ``a.raw("dim")`` its
    value as traced (a constant, or a ``torch.fx.Node`` for a computed value)."""

    def __init__(self, values, render, render_index):
        self._values = values
        self._render = render
        self._render_index = render_index

    def __getattr__(self, name):
        try:
            return self._render(self._values[name])
        except KeyError:
            raise AttributeError(name) from None

    def raw(self, name):
        return self._values[name]

    def render(self, value):
        return self._render(value)

    def subscript(self, value):
        """Source text of a subscript: ``:, 0`` for ``(slice(None), 0)``."""
        return self._render_index(value)

    def is_constant(self, name):
        return not holds_node(self._values[name])


def holds_node(value):
    if isinstance(value, torch.fx.Node):
        return True
    if isinstance(value, (tuple, list)):
        return any(holds_node(v) for v in value)
    return False


def require(condition, message):
    if not condition:
        raise UnsupportedOp(message)


# --- lookup and registration -----------------------------------------------------------------

OPS = []
_BY_KEY = OrderedDict()


def add(op):
    OPS.append(op)
    for target in op.targets:
        _BY_KEY[target if isinstance(target, str) else key_of(target)] = op
    return op


def lookup(target):
    """The entry for a node's target, or ``None``."""
    try:
        return _BY_KEY.get(key_of(target))
    except TypeError:  # an unhashable target
        return None


def mapped_keys():
    """Every key the table maps (``aten.add.Tensor``, ...)."""
    return list(_BY_KEY)


def register_op(target, template, name=None, imports=(), kind="expr"):
    """Add (or replace) the entry for ``target``: an ATen overload (``torch.ops.aten.erf.default``) or
    its name (``"aten.erf.default"``). ``template``: a format string over the schema's argument names
    (``"ops.erf({self})"``) or a function of :class:`Args`. ``imports``: ``(module, name)`` pairs the
    expression needs. Returns the entry."""
    key = target if isinstance(target, str) else key_of(target)
    if isinstance(template, str):
        text = template

        def template(a):
            return text.format(**{n: getattr(a, n) for n in a._values})
    return add(Op(name or key, (key,), template, kind=kind, imports=tuple(imports)))


def unregister_op(op):
    """Remove an entry added by :func:`register_op`; an entry it had replaced comes back."""
    OPS.remove(op)
    for target in op.targets:
        if _BY_KEY.get(target) is op:
            del _BY_KEY[target]
            for other in OPS:
                if target in other.targets:
                    _BY_KEY[target] = other


def checks_only(graph):
    """The nodes whose values only the checks the port drops read (``torch._check(unique(x).numel() == 1)``),
    directly or through other such nodes: GRAPH_MODE cannot raise, so they need not be computed, and an op
    the table lacks there (``unique_consecutive``) does not stop the port."""
    def is_check(user):
        op = lookup(user.target) if user.op == "call_function" else None
        return op is not None and op.kind == "drop"

    out = set()
    for node in reversed(list(graph.nodes)):
        if node.op == "call_function" and node.users and all(is_check(u) or u in out for u in node.users):
            out.add(node)
    return out


__all__ = [
    "OPS",
    "PYTHON_SIGNATURES",
    "Args",
    "Op",
    "UnsupportedOp",
    "add",
    "bind",
    "checks_only",
    "holds_node",
    "key_of",
    "lookup",
    "mapped_keys",
    "register_op",
    "require",
    "unregister_op",
]
