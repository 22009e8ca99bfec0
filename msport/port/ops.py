"""The op table of ``msport port``: one entry per torch function or tensor method, the MindSpore
expression it becomes.

Layers (``call_module`` nodes) map through :mod:`msport.registry`; everything a traced graph
calls besides layers maps through this table, and through nothing else. An entry gives

* ``targets``: what torch.fx records: the function object (``torch.flatten``,
  ``operator.add``) for ``call_function`` nodes, ``"Tensor.<name>"`` for ``call_method`` nodes;
* ``signature``: torch's argument list, as Python would write it (``"input, start_dim=0,
  end_dim=-1"``); a node's arguments are bound to it, defaults applied, so an argument torch
  accepts and the entry cannot express fails by name instead of being dropped;
* ``emit``: a function of the bound arguments (:class:`Args`, each attribute the argument's
  source text) returning the MindSpore expression. It raises :class:`UnsupportedOp` for a
  configuration it cannot express;
* ``kind``: ``"expr"`` (one statement ``name = expression``), ``"alias"`` (the node is its
  input: ``contiguous``) or ``"drop"`` (no MindSpore counterpart is needed: ``torch._assert``,
  which GRAPH_MODE cannot raise; the checks it guarded are shape checks the trace has fixed).

The traps sit in the defaults: ``torch.flatten`` starts at dim 0 and ``ops.flatten`` at 1,
``F.avg_pool2d``'s stride defaults to the kernel size and ``ops.avg_pool2d``'s to 1,
``ops.layer_norm`` has no CPU kernel. Every entry is checked against torch by
``tests/test_port_ops.py``, one case per entry (a test fails when an entry has no case).

Users add entries with :func:`register_op`; this module imports torch but never MindSpore: it
writes source text.
"""

import builtins
import inspect
import operator
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Tuple

import torch
import torch.nn.functional as F

from msport.errors import UserError


class UnsupportedOp(UserError):
    """A torch op, or one configuration of it, the op table cannot express in MindSpore."""


SUPPORT = ("msport.port", "support")  # generated code calls support.<helper>


@dataclass(frozen=True)
class Op:
    name: str
    targets: Tuple
    signature: str
    emit: Callable = None
    kind: str = "expr"
    imports: Tuple = ()   # ((module, name), ...) the expression needs beyond ms/nn/ops
    doc: str = ""

    def bind(self, args, kwargs):
        """``OrderedDict`` of torch's arguments for a node's ``args``/``kwargs``; UnsupportedOp on misuse."""
        try:
            bound = _signature(self.signature).bind(*args, **kwargs)
        except TypeError as exc:
            raise UnsupportedOp(f"{self.name}: {exc} (the entry knows the arguments ({self.signature}))") from None
        bound.apply_defaults()
        return OrderedDict(bound.arguments)


_SIGNATURES = {}


def _signature(text):
    if text not in _SIGNATURES:
        _SIGNATURES[text] = inspect.signature(eval(f"lambda {text}: None", {}))  # noqa: S307 - our own text
    return _SIGNATURES[text]


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

    def index(self, name):
        """Source text of a subscript: ``:, 0`` for ``(slice(None), 0)``."""
        return self._render_index(self._values[name])

    def varargs(self, name):
        """A ``*shape`` argument as one tuple: ``view(2, 3)`` and ``view((2, 3))`` both give ``(2, 3)``."""
        value = self._values[name]
        if len(value) == 1 and isinstance(value[0], (tuple, list, torch.Size)):
            value = value[0]
        return self._render(tuple(value))

    def is_constant(self, name):
        return not _holds_node(self._values[name])


def _holds_node(value):
    if isinstance(value, torch.fx.Node):
        return True
    if isinstance(value, (tuple, list)):
        return any(_holds_node(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_node(v) for v in value.values())
    return False


def _require(condition, message):
    if not condition:
        raise UnsupportedOp(message)


# --- the table ------------------------------------------------------------------------------

def _binary(symbol):
    return lambda a: f"{a.input} {symbol} {a.other}"


def _add(a):
    alpha = a.raw("alpha")
    return f"{a.input} + {a.other}" if alpha == 1 else f"{a.input} + {a.alpha} * {a.other}"


def _sub(a):
    alpha = a.raw("alpha")
    return f"{a.input} - {a.other}" if alpha == 1 else f"{a.input} - {a.alpha} * {a.other}"


def _getattr(a):
    name = a.raw("name")
    _require(name in ("shape", "ndim", "dtype"), f"getattr(tensor, {name!r}) is not in the op table")
    return f"{a.input}.{name}"


def _size(a):
    return f"{a.input}.shape" if a.raw("dim") is None else f"{a.input}.shape[{a.dim}]"


def _flatten(a):
    return f"ops.flatten({a.input}, start_dim={a.start_dim}, end_dim={a.end_dim})"


def _mean(a):
    _require(a.raw("dtype") is None, "mean(dtype=...) is not supported; cast the input first")
    if a.raw("dim") is None:
        return f"ops.mean({a.input})"
    return f"ops.mean({a.input}, {a.dim}, keep_dims={a.keepdim})"


def _softmax(a):
    _require(a.raw("dtype") is None, "softmax(dtype=...) is not supported; cast the input first")
    _require(a.raw("dim") is not None, "softmax(dim=None) is deprecated in torch; give dim")
    return f"ops.softmax({a.input}, {a.dim})"


def _avg_pool2d(a):
    stride = a.kernel_size if a.raw("stride") in (None, [], ()) else a.stride
    divisor = 0 if a.raw("divisor_override") is None else a.divisor_override
    return (f"ops.avg_pool2d({a.input}, {a.kernel_size}, {stride}, {a.padding}, ceil_mode={a.ceil_mode}, "
            f"count_include_pad={a.count_include_pad}, divisor_override={divisor})")


def _max_pool2d(a):
    _require(not a.raw("return_indices"), "max_pool2d(return_indices=True) is not supported")
    stride = a.kernel_size if a.raw("stride") in (None, [], ()) else a.stride
    return (f"ops.max_pool2d({a.input}, {a.kernel_size}, {stride}, {a.padding}, {a.dilation}, "
            f"ceil_mode={a.ceil_mode})")


def _gelu(a):
    _require(a.raw("approximate") in ("none", "tanh"), f"gelu(approximate={a.raw('approximate')!r})")
    return f"ops.gelu({a.input}, approximate={a.approximate})"


def _einsum(a):
    """Two-operand batched matrix products (``"bhid,bhjd->bhij"``), written as ``ops.matmul``:
    MindSpore 2.10's ``ops.einsum`` has no CPU kernel."""
    operands = a.raw("operands")
    if len(operands) == 1 and isinstance(operands[0], (tuple, list)):
        operands = operands[0]
    equation = a.raw("equation")
    _require(isinstance(equation, str) and len(operands) == 2,
             "einsum: only two-operand equations given as a constant string are supported")
    lhs, _, out = equation.replace(" ", "").partition("->")
    left, _, right = lhs.partition(",")
    _require("." not in equation and out and len(set(left)) == len(left) and len(set(right)) == len(right),
             f"einsum {equation!r}: only explicit '->' equations without '...' or repeated letters")
    batch = [c for c in left if c in right and c in out]
    summed = [c for c in left if c in right and c not in out]
    left_free = [c for c in left if c not in right]
    right_free = [c for c in right if c not in left]
    _require(len(summed) == 1 and len(left_free) == 1 and len(right_free) == 1
             and set(out) == set(batch + left_free + right_free),
             f"einsum {equation!r} is not one batched matrix product; write it with matmul")
    x, y = (a._render(op) for op in operands)
    x = _permuted(x, left, batch + left_free + summed)
    y = _permuted(y, right, batch + summed + right_free)
    return _permuted(f"ops.matmul({x}, {y})", "".join(batch + left_free + right_free), list(out))


def _permuted(source, have, want):
    have, want = list(have), list(want)
    if have == want:
        return source
    if have[:-2] == want[:-2] and have[-2:] == want[-2:][::-1]:
        return f"ops.swapaxes({source}, -2, -1)"
    return f"ops.permute({source}, {tuple(have.index(c) for c in want)})"


def _expand(a):
    return f"ops.broadcast_to({a.input}, {a.varargs('sizes')})"


def _stochastic_depth(a):
    # the trace baked the torch module's training flag in; the twin follows its own cell's flag
    return f"support.stochastic_depth({a.input}, {a.p}, {a.mode}, self.training)"


def _relu(a):
    return f"ops.relu({a.input})"


def _getitem(a):
    return f"{a.input}[{a.index('idx')}]"


OPS = [
    Op("add", (operator.add, operator.iadd, torch.add, "Tensor.add"), "input, other, alpha=1", _add,
       doc="in place (+=) becomes out of place: MindSpore tensors in a graph are values"),
    Op("sub", (operator.sub, operator.isub, torch.sub, "Tensor.sub"), "input, other, alpha=1", _sub),
    Op("mul", (operator.mul, operator.imul, torch.mul, "Tensor.mul"), "input, other", _binary("*")),
    Op("truediv", (operator.truediv, operator.itruediv, torch.div, "Tensor.div"), "input, other",
       _binary("/")),
    Op("floordiv", (operator.floordiv,), "input, other", _binary("//"),
       doc="shape arithmetic on ints (the trace sees shapes as values)"),
    Op("matmul", (operator.matmul, torch.matmul, "Tensor.matmul"), "input, other",
       lambda a: f"ops.matmul({a.input}, {a.other})"),
    Op("neg", (operator.neg, torch.neg, "Tensor.neg"), "input", lambda a: f"-{a.input}"),
    Op("eq", (operator.eq,), "input, other", _binary("==")),
    Op("ne", (operator.ne,), "input, other", _binary("!=")),
    Op("getitem", (operator.getitem,), "input, idx", _getitem,
       doc="tuple elements, shape entries, slices and tensor indexing"),
    Op("getattr", (builtins.getattr,), "input, name", _getattr, doc="x.shape, x.ndim, x.dtype"),
    Op("size", ("Tensor.size",), "input, dim=None", _size),
    Op("dim", ("Tensor.dim",), "input", lambda a: f"{a.input}.ndim"),
    Op("assert", (torch._assert,), "condition, message", kind="drop",
       doc="a shape check the trace has already fixed; GRAPH_MODE cannot raise"),
    Op("contiguous", ("Tensor.contiguous",), "input, memory_format=None", kind="alias",
       doc="MindSpore tensors have no memory-layout views"),
    Op("flatten", (torch.flatten, "Tensor.flatten"), "input, start_dim=0, end_dim=-1", _flatten,
       doc="torch starts at dim 0, ops.flatten at 1: always written out"),
    Op("reshape", (torch.reshape, "Tensor.reshape", "Tensor.view"), "input, *shape",
       lambda a: f"ops.reshape({a.input}, {a.varargs('shape')})"),
    Op("permute", (torch.permute, "Tensor.permute"), "input, *dims",
       lambda a: f"ops.permute({a.input}, {a.varargs('dims')})"),
    Op("transpose", (torch.transpose, "Tensor.transpose", torch.swapaxes, "Tensor.swapaxes", torch.swapdims,
                     "Tensor.swapdims"), "input, dim0, dim1",
       lambda a: f"ops.swapaxes({a.input}, {a.dim0}, {a.dim1})"),
    Op("cat", (torch.cat, torch.concat), "tensors, dim=0", lambda a: f"ops.cat({a.tensors}, {a.dim})"),
    Op("chunk", (torch.chunk, "Tensor.chunk"), "input, chunks, dim=0",
       lambda a: f"ops.chunk({a.input}, {a.chunks}, {a.dim})"),
    Op("mean", (torch.mean, "Tensor.mean"), "input, dim=None, keepdim=False, *, dtype=None", _mean),
    Op("softmax", (torch.softmax, F.softmax, "Tensor.softmax"), "input, dim=None, _stacklevel=3, dtype=None",
       _softmax),
    Op("relu", (F.relu, torch.relu, "Tensor.relu"), "input, inplace=False", _relu),
    Op("sigmoid", (torch.sigmoid, F.sigmoid, "Tensor.sigmoid"), "input", lambda a: f"ops.sigmoid({a.input})"),
    Op("tanh", (torch.tanh, F.tanh, "Tensor.tanh"), "input", lambda a: f"ops.tanh({a.input})"),
    Op("gelu", (F.gelu,), "input, approximate='none'", _gelu),
    Op("einsum", (torch.einsum,), "equation, *operands", _einsum, doc="two-operand batched matmuls only"),
    Op("expand", ("Tensor.expand",), "input, *sizes", _expand),
    Op("unsqueeze", (torch.unsqueeze, "Tensor.unsqueeze"), "input, dim",
       lambda a: f"ops.unsqueeze({a.input}, {a.dim})"),
    Op("adaptive_avg_pool2d", (F.adaptive_avg_pool2d,), "input, output_size",
       lambda a: f"ops.adaptive_avg_pool2d({a.input}, {a.output_size})"),
    Op("avg_pool2d", (F.avg_pool2d, torch._C._nn.avg_pool2d),
       "input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, "
       "divisor_override=None", _avg_pool2d, doc="torch's stride defaults to the kernel size, MindSpore's to 1"),
    Op("max_pool2d", (F.max_pool2d,),
       "input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False",
       _max_pool2d),
    Op("layer_norm", (F.layer_norm,), "input, normalized_shape, weight=None, bias=None, eps=1e-05",
       lambda a: f"support.layer_norm({a.input}, {a.normalized_shape}, {a.weight}, {a.bias}, {a.eps})",
       imports=(SUPPORT,), doc="ops.layer_norm has no CPU kernel"),
]


def _torchvision_ops():
    """torchvision's leaf helpers (functions its models mark for torch.fx not to trace into)."""
    try:
        from torchvision.ops.stochastic_depth import stochastic_depth
    except ImportError:  # torchvision is optional for msport port
        return []
    from torchvision.models import swin_transformer as swin

    return [Op("stochastic_depth", (stochastic_depth,), "input, p, mode, training=True", _stochastic_depth,
               imports=(SUPPORT,),
               doc="drops whole samples in training; follows the cell's own training flag"),
            Op("swin_patch_merging_pad", (swin._patch_merging_pad,), "x",
               lambda a: f"support.patch_merging_pad({a.x})", imports=(SUPPORT,)),
            Op("swin_relative_position_bias", (swin._get_relative_position_bias,),
               "relative_position_bias_table, relative_position_index, window_size",
               lambda a: (f"support.relative_position_bias({a.relative_position_bias_table}, "
                          f"{a.relative_position_index}, {a.window_size})"), imports=(SUPPORT,)),
            Op("swin_shifted_window_attention", (swin.shifted_window_attention,),
               "input, qkv_weight, proj_weight, relative_position_bias, window_size, num_heads, shift_size, "
               "attention_dropout=0.0, dropout=0.0, qkv_bias=None, proj_bias=None, logit_scale=None, training=True",
               _shifted_window_attention, imports=(SUPPORT,),
               doc="Swin v1; torch.roll written as two slices (no Roll kernel on the CPU)")]


def _shifted_window_attention(a):
    _require(a.raw("logit_scale") is None, "shifted_window_attention(logit_scale=...) (Swin v2's cosine "
                                           "attention) is not supported")
    return (f"support.shifted_window_attention({a.input}, {a.qkv_weight}, {a.proj_weight}, "
            f"{a.relative_position_bias}, {a.window_size}, {a.num_heads}, {a.shift_size}, "
            f"attention_dropout={a.attention_dropout}, dropout={a.dropout}, qkv_bias={a.qkv_bias}, "
            f"proj_bias={a.proj_bias}, training=self.training)")


OPS += _torchvision_ops()


# --- lookup and registration -----------------------------------------------------------------

_BY_TARGET = OrderedDict()


def _index(op):
    for target in op.targets:
        _BY_TARGET[target] = op


for _op in OPS:
    _index(_op)


def key_of(node):
    """The table key of a ``call_function`` / ``call_method`` node."""
    return f"Tensor.{node.target}" if node.op == "call_method" else node.target


def lookup(node):
    """The entry for a node, or ``None``."""
    try:
        return _BY_TARGET.get(key_of(node))
    except TypeError:  # an unhashable target
        return None


def describe_target(node):
    """``torch.flatten``, ``Tensor.view``, ``torchvision.models.swin_transformer.shifted_window_attention``."""
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    target = node.target
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or repr(target)
    if name.startswith("_VariableFunctionsClass."):  # torch's C functions: torch.erf, not torch._Var...erf
        name = name.partition(".")[2]
    module = {"_operator": "operator", "torch._C._nn": "torch.nn.functional"}.get(module, module)
    return f"{module}.{name}" if module else name


def register_op(target, signature, template, name=None, imports=(), kind="expr"):
    """Add (or replace) the op-table entry for ``target``: a function (``torch.erf``) or a tensor
    method name as ``"Tensor.erf"``. ``signature`` is torch's argument list (``"input, dim=0"``);
    ``template`` a format string over those names (``"ops.erf({input})"``) or a function of
    :class:`Args`. ``imports``: ``(module, name)`` pairs the expression needs. Returns the entry."""
    if isinstance(template, str):
        text = template

        def template(a):
            return text.format(**{n: getattr(a, n) for n in _signature(signature).parameters})
    label = name or (target if isinstance(target, str) else describe_target(
        type("N", (), {"op": "call_function", "target": target})()))
    op = Op(label, (target,), signature, template, kind=kind, imports=tuple(imports))
    _signature(signature)  # a malformed signature fails here, not while porting
    OPS.append(op)
    _index(op)
    return op


def unregister_op(op):
    """Remove an entry added by :func:`register_op` (tests use it to stay independent)."""
    OPS.remove(op)
    for target in op.targets:
        if _BY_TARGET.get(target) is op:
            del _BY_TARGET[target]
            for other in OPS:  # an entry it had replaced comes back
                if target in other.targets:
                    _BY_TARGET[target] = other


__all__ = ["Args", "OPS", "Op", "UnsupportedOp", "describe_target", "key_of", "lookup", "register_op",
           "unregister_op"]
