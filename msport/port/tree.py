"""The generated model's member tree and constants, as Python source.

Members (layers and plain Parameters) sit under torch's attribute paths; the containers between
are written as ``nn.CellList`` (numbered children, so ``layers.0`` stays ``layers.0``) or
:class:`msport.port.support.Block` (named children), so MindSpore's parameter names are torch's.
"""

import keyword
import math
from collections import OrderedDict
from dataclasses import dataclass, field

import torch

_DTYPES = {torch.float32: "ms.float32", torch.float16: "ms.float16", torch.bfloat16: "ms.bfloat16",
           torch.float64: "ms.float64", torch.int64: "ms.int64", torch.int32: "ms.int32", torch.bool: "ms.bool_",
           torch.uint8: "ms.uint8", torch.int8: "ms.int8", torch.int16: "ms.int16",
           torch.complex64: "ms.complex64", torch.complex128: "ms.complex128"}


class CannotRender(Exception):
    pass


def torch_dtype_name(dtype):
    if dtype not in _DTYPES:
        raise CannotRender(f"dtype {dtype}")
    return _DTYPES[dtype]


def render_constant(value):
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return f"float({str(value)!r})"
        return repr(value)
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, torch.dtype):
        return torch_dtype_name(value)
    if isinstance(value, (torch.device, torch.layout, torch.memory_format)):
        return "None"  # places and layouts have no meaning in a MindSpore graph
    if isinstance(value, (tuple, list)):
        items = [render_constant(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    raise CannotRender(f"{type(value).__name__} constant {value!r}")


def path_expression(path, lists=frozenset()):
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


def simplify_arg(name, value):
    """``kernel_size=(3, 3)`` -> ``3``, ``normalized_shape=(768,)`` -> ``768``: how a person writes it."""
    if isinstance(value, tuple) and value and all(v == value[0] for v in value) and isinstance(value[0], int) \
            and name in ("kernel_size", "stride", "padding", "dilation", "output_padding", "normalized_shape",
                         "output_size") and (name != "normalized_shape" or len(value) == 1):
        return value[0]
    return value


def same_argument(value, default):
    """Is ``value`` what the default already gives (``0.0`` for ``0``, but not ``False`` for ``0``)?"""
    if isinstance(value, bool) or isinstance(default, bool):
        return value is default
    if isinstance(value, (int, float)) and isinstance(default, (int, float)):
        return value == default
    return type(value) is type(default) and value == default


@dataclass
class Member:
    """One member of the rebuilt module tree."""

    kind: str                         # "layer", "param", "container"
    order: int = 0
    source: str = ""                  # layer: the factory call; param: the Parameter expression
    children: OrderedDict = field(default_factory=OrderedDict)


class Tree:
    def __init__(self, order):
        self.root = Member("container")
        self.order = order
        self.lists = frozenset()
        self.uses_block = False

    def add(self, path, member):
        parts = path.split(".")
        node = self.root
        for i, part in enumerate(parts[:-1]):
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = Member("container", self.order.get(".".join(parts[:i + 1]), 10 ** 9))
            node = child
        member.order = self.order.get(path, 10 ** 9)
        node.children[parts[-1]] = member

    def init_lines(self):
        lines = []
        for name, member in sorted(self.root.children.items(), key=lambda kv: kv[1].order):
            value = self._source(name, member, 0)
            if name.isidentifier() and not keyword.iskeyword(name):
                lines.append(f"self.{name} = {value}")
            else:  # the root is a torch Sequential: members 0, 1, ...
                lines.append(f"setattr(self, {name!r}, {value})")
        return lines

    def _source(self, path, member, depth):
        if member.kind != "container":
            return member.source
        pad, inner = "    " * depth, "    " * (depth + 1)
        children = sorted(member.children.items(), key=lambda kv: kv[1].order)
        if path in self.lists:
            by_index = {int(k): m for k, m in children}
            # an index the graph never calls still holds a place, so the others keep torch's numbers
            items = [self._source(f"{path}.{i}", by_index[i], depth + 1) if i in by_index else "nn.Identity()"
                     for i in range(max(by_index) + 1)]
            return "nn.CellList([\n" + "".join(f"{inner}{item},\n" for item in items) + f"{pad}])"
        self.uses_block = True
        if all(k.isidentifier() and not keyword.iskeyword(k) for k, _ in children):
            body = "".join(f"{inner}{k}={self._source(f'{path}.{k}', m, depth + 1)},\n" for k, m in children)
            return f"Block(\n{body}{pad})"
        body = "".join(f"{inner}{k!r}: {self._source(f'{path}.{k}', m, depth + 1)},\n" for k, m in children)
        return f"Block(**{{\n{body}{pad}}})"


__all__ = ["CannotRender", "Member", "Tree", "path_expression", "render_constant", "same_argument",
           "simplify_arg", "torch_dtype_name"]
