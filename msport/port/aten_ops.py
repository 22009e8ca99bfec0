"""The op table's entries: every ATen op msport port maps, and the MindSpore expression it becomes.

Keys are the ATen overloads of the graph ``torch.export`` writes after
:func:`msport.port.capture.export`'s decompositions: every Core ATen op mapped here stays as it is,
and so do a few higher-level ops of the training IR that map onto one MindSpore call
(``aten.linear``, ``aten.conv2d``, ``aten.scaled_dot_product_attention``, ``aten.layer_norm``);
any other op is decomposed into Core ATen first. Argument names are the schema's (``self``,
``other``, ``dim``); :mod:`msport.port.ops` binds them.

The traps are in the defaults and the kernels: ``ops.flatten`` starts at dim 1 where torch's
starts at 0 (written out), ``F.avg_pool2d``'s stride defaults to the kernel size (``[]`` in the
schema), MindSpore 2.10 has no CPU kernel for ``ops.layer_norm``, ``ops.einsum`` or ``ops.roll``
(:mod:`msport.port.support` writes them with kernels it has). Result dtypes come from the trace's
own metadata (``node.meta["val"]``), so a creation op or a cast says exactly what torch made.
``tests/test_port_ops.py`` runs every entry against torch, in PYNATIVE_MODE and GRAPH_MODE.
"""

import torch

from msport.port.ops import Op, add, require

SUPPORT = ("msport.port", "support")  # generated code calls support.<helper>
_S = (SUPPORT,)


def _t(template):
    """An emitter from a format string over the schema's argument names (plus ``{dtype_out}``)."""
    return lambda a: template.format_map(_Lazy(a))


class _Lazy(dict):
    def __init__(self, a):
        super().__init__()
        self.a = a

    def __missing__(self, key):
        if key == "dtype_out":
            return self.a.render(self.a.out_dtype)
        return getattr(self.a, key)


def op(name, targets, emit, kind="expr", imports=(), doc=""):
    targets = tuple(f"aten.{t}" if not t.startswith(("aten.", "operator.", "_operator.", "msport.", "torch.")) else t
                    for t in targets.split())
    add(Op(name, targets, _t(emit) if isinstance(emit, str) else emit, kind, tuple(imports), doc))


# --- arithmetic and comparison ------------------------------------------------------------------

def _alpha(symbol):
    def emit(a):
        alpha = a.raw("alpha")
        return f"{a.self} {symbol} {a.other}" if alpha == 1 else f"{a.self} {symbol} {a.alpha} * {a.other}"
    return emit


op("add", "add.Tensor add.Scalar", _alpha("+"))
op("sub", "sub.Tensor sub.Scalar", _alpha("-"))
op("rsub", "rsub.Tensor rsub.Scalar",
   lambda a: f"{a.other} - {a.self}" if a.raw("alpha") == 1 else f"{a.other} - {a.alpha} * {a.self}")
op("mul", "mul.Tensor mul.Scalar", "{self} * {other}")
op("div", "div.Tensor div.Scalar", "{self} / {other}")


def _div_mode(a):
    mode = a.raw("rounding_mode")
    return f"{a.self} / {a.other}" if mode is None else f"ops.div({a.self}, {a.other}, rounding_mode={mode!r})"


op("div_mode", "div.Tensor_mode div.Scalar_mode", _div_mode)
op("pow", "pow.Tensor_Scalar pow.Tensor_Tensor", "ops.pow({self}, {exponent})")
op("pow_scalar", "pow.Scalar", "ops.pow({self}, {exponent})")
op("remainder", "remainder.Scalar remainder.Tensor", "ops.remainder({self}, {other})",
   doc="Python's sign convention, as torch's")
op("fmod", "fmod.Scalar fmod.Tensor", "ops.fmod({self}, {other})")
op("maximum", "maximum.default", "ops.maximum({self}, {other})")
op("minimum", "minimum.default", "ops.minimum({self}, {other})")
for _name, _symbol in (("eq", "=="), ("ne", "!="), ("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">=")):
    op(_name, f"{_name}.Tensor {_name}.Scalar", f"{{self}} {_symbol} {{other}}")
op("logical_and", "logical_and.default", "ops.logical_and({self}, {other})")
op("logical_or", "logical_or.default", "ops.logical_or({self}, {other})")
op("logical_xor", "logical_xor.default", "ops.logical_xor({self}, {other})")
op("logical_not", "logical_not.default", "ops.logical_not({self})")
op("bitwise_and", "bitwise_and.Tensor bitwise_and.Scalar __and__.Tensor", "support.bitwise_and({self}, {other})", imports=_S,
   doc="logical on bool tensors (MindSpore's BitwiseAnd takes integers only)")
op("bitwise_or", "bitwise_or.Tensor bitwise_or.Scalar __or__.Tensor", "support.bitwise_or({self}, {other})", imports=_S)
op("bitwise_xor", "bitwise_xor.Tensor bitwise_xor.Scalar", "support.bitwise_xor({self}, {other})", imports=_S)
op("bitwise_not", "bitwise_not.default", "support.bitwise_not({self})", imports=_S)
# complex tensors (a rotary embedding written as complex multiplication, llama4's): MindSpore's CPU kernels
# have complex64 polar, multiplication and indexing
op("polar", "polar.default", "ops.polar({abs}, {angle})", doc="a complex tensor from magnitudes and angles")
op("view_as_complex", "view_as_complex.default", "ops.Complex()({self}[..., 0], {self}[..., 1])",
   doc="pairs on the last axis as complex numbers (a copy, not a view: nothing writes to it)")
op("view_as_real", "view_as_real.default", "ops.stack((ops.real({self}), ops.imag({self})), -1)",
   doc="a complex tensor's real and imaginary parts on a new last axis")
op("where", "where.self", "ops.where({condition}, {self}, {other})")
op("clamp", "clamp.default clamp.Tensor", "ops.clamp({self}, {min}, {max})")
op("masked_fill", "masked_fill.Scalar masked_fill.Tensor", "support.masked_fill({self}, {mask}, {value})", imports=_S,
   doc="a where: MindSpore's CPU MaskedFill refuses integer and bool tensors and a value of another dtype")

# --- elementwise functions --------------------------------------------------------------------------

_ELEMENTWISE = (
    "abs", "exp", "expm1", "log", "log1p", "log2", "sqrt", "rsqrt", "reciprocal", "sin", "cos", "tan",
    "tanh", "sigmoid", "relu", "silu", "erf", "erfinv", "sign", "floor", "ceil", "trunc", "isnan", "isinf",
    "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "hardsigmoid", "hardswish", "mish",
    "log10")
for _name in _ELEMENTWISE:
    op(_name, f"{_name}.default", f"ops.{_name}({{self}})")
op("neg", "neg.default", "-{self}")
op("round", "round.default", "ops.round({self})", doc="half to even, as torch")
op("atan2", "atan2.default", "ops.atan2({self}, {other})")
op("gelu", "gelu.default", "ops.gelu({self}, approximate={approximate})")
op("hardtanh", "hardtanh.default", "ops.hardtanh({self}, {min_val}, {max_val})")
op("leaky_relu", "leaky_relu.default", "ops.leaky_relu({self}, {negative_slope})")
op("elu", "elu.default", "support.elu({self}, {alpha}, {scale}, {input_scale})", imports=_S,
   doc="MindSpore's Elu takes alpha 1 only; SELU is elu with scale and input_scale")
op("softplus", "softplus.default", "ops.softplus({self}, {beta}, {threshold})")

# --- dtype and copies -------------------------------------------------------------------------------


def _cast(a):
    return f"ops.cast({a.self}, {a.render(a.out_dtype)})" if a.out_dtype != a.in_dtype("self") else a.self


op("to_copy", "_to_copy.default to.dtype to.dtype_layout to.device", _cast,
   doc="a cast to the dtype the trace recorded; devices and memory formats have no meaning here")
op("alias", "alias.default clone.default detach.default lift_fresh_copy.default contiguous.default", None,
   kind="alias", doc="MindSpore tensors in a graph are values: a copy or a view is the tensor itself")
op("assert", "_assert_tensor_metadata.default _assert_scalar.default sym_constrain_range_for_size.default "
             "sym_constrain_range.default", None, kind="drop",
   doc="a check the trace already made; GRAPH_MODE cannot raise")

# --- reductions ----------------------------------------------------------------------------------


def _dims(a, name="dim"):
    value = a.raw(name)
    return "None" if value in (None, [], ()) else a.render(tuple(value) if isinstance(value, list) else value)


def _reduction(call, keep="keepdim"):
    def emit(a):
        x = a.self if a.out_dtype == a.in_dtype("self") else f"ops.cast({a.self}, {a.render(a.out_dtype)})"
        if "dim" not in a._values:
            return f"{call}({x})"
        return f"{call}({x}, {_dims(a)}, {keep}={a.keepdim})"
    return emit


op("sum", "sum.dim_IntList sum.default", _reduction("ops.sum"), doc="an integer or bool sum in int64, as torch")
op("mean", "mean.dim mean.default", _reduction("ops.mean", "keep_dims"))
op("prod", "prod.dim_int prod.default", _reduction("ops.prod", "keep_dims"))
op("amax", "amax.default", lambda a: f"ops.amax({a.self}, {_dims(a)}, keepdims={a.keepdim})")
op("amin", "amin.default", lambda a: f"ops.amin({a.self}, {_dims(a)}, keepdims={a.keepdim})")
op("max_dim", "max.dim", "ops.max({self}, {dim}, keepdims={keepdim})", doc="(values, indices)")
op("min_dim", "min.dim", "ops.min({self}, {dim}, keepdims={keepdim})", doc="(values, indices)")
op("max", "max.default", "ops.amax({self})")
op("min", "min.default", "ops.amin({self})")
op("argmax", "argmax.default", "ops.argmax({self}, {dim}, keepdim={keepdim})")
op("argmin", "argmin.default", "ops.argmin({self}, {dim}, keepdims={keepdim})")


def _var(call):
    def emit(a):
        correction = 1 if a.raw("correction") is None else a.raw("correction")
        return f"{call}({a.self}, {_dims(a)}, ddof={correction!r}, keepdims={a.keepdim})"
    return emit


op("var", "var.correction", _var("ops.var"))
op("var_dim", "var.dim", lambda a: f"ops.var({a.self}, {_dims(a)}, ddof={1 if a.raw('unbiased') else 0}, "
                                   f"keepdims={a.keepdim})")
op("std", "std.correction", _var("ops.std"))


def _bool_reduction(call):
    def emit(a):
        x = a.self if a.in_dtype("self") == torch.bool else f"ops.cast({a.self}, ms.bool_)"
        if "dim" not in a._values:
            return f"{call}({x})"
        return f"{call}({x}, {_dims(a)}, keep_dims={a.keepdim})"
    return emit


op("any", "any.dim any.dims any.default", _bool_reduction("ops.any"))
op("all", "all.dim all.default", _bool_reduction("ops.all"))
op("cumsum", "cumsum.default", lambda a: f"ops.cumsum({a.self}, {a.dim}, dtype={a.render(a.out_dtype)})")
op("logsumexp", "logsumexp.default", "ops.logsumexp({self}, {dim}, keepdim={keepdim})")
op("softmax", "_softmax.default softmax.int", "ops.softmax({self}, {dim})")
op("log_softmax", "_log_softmax.default log_softmax.int", "ops.log_softmax({self}, {dim})")

# --- shapes, indexing --------------------------------------------------------------------------------

op("view", "view.default reshape.default _unsafe_view.default", "ops.reshape({self}, {size})")
op("permute", "permute.default", "ops.permute({self}, {dims})")
op("transpose", "transpose.int", "ops.swapaxes({self}, {dim0}, {dim1})")
op("t", "t.default", lambda a: f"ops.swapaxes({a.self}, 0, 1)" if a.rank("self") == 2 else a.self)
op("unsqueeze", "unsqueeze.default", "ops.unsqueeze({self}, {dim})")
op("squeeze", "squeeze.dim squeeze.dims squeeze.default", lambda a: (
    f"ops.squeeze({a.self})" if "dim" not in a._values else f"support.squeeze({a.self}, {a.dim})"),
   imports=_S, doc="torch ignores a dim that is not 1; MindSpore's Squeeze refuses it")
op("expand", "expand.default", "ops.broadcast_to({self}, {size})")
op("flatten", "flatten.using_ints", "ops.flatten({self}, start_dim={start_dim}, end_dim={end_dim})",
   doc="torch starts at dim 0, ops.flatten at 1: always written out")
def _empty_1d(node):
    """Whether the traced value is a 1-D tensor of (concrete) size 0; a symbolic size is never compared,
    which would add a guard on it."""
    shape = getattr(getattr(node, "meta", {}).get("val"), "shape", None)
    return shape is not None and len(shape) == 1 and type(shape[0]) is int and shape[0] == 0


def _cat(a):
    tensors = list(a.raw("tensors"))
    # torch's legacy rule: a 1-D tensor of size 0 is skipped whatever the others' rank (XLM's empty cache);
    # MindSpore's Concat refuses the ranks
    kept = [t for t in tensors if not _empty_1d(t)]
    kept = kept or tensors[:1]
    return a.render(kept[0]) if len(kept) == 1 else f"ops.cat({a.render(kept)}, {a.dim})"


op("cat", "cat.default", _cat, doc="a 1-D tensor of size 0 is skipped, as torch skips it")
op("stack", "stack.default", "ops.stack({tensors}, {dim})")
op("split", "split.Tensor split_with_sizes.default", lambda a: (
    f"ops.split({a.self}, {a.render(a.raw('split_size') if 'split_size' in a._values else list(a.raw('split_sizes')))}"
    f", {a.dim})"))
op("chunk", "chunk.default", "ops.chunk({self}, {chunks}, {dim})")
op("unbind", "unbind.int", "ops.unbind({self}, {dim})")
op("narrow", "narrow.default", "ops.narrow({self}, {dim}, {start}, {length})")


def _subscript(a, dim, item):
    dim = dim % a.rank("self")
    return f"{a.self}[{', '.join([':'] * dim + [item])}]"


def _slice(a):
    start, end, step = a.raw("start"), a.raw("end"), a.raw("step")
    text = ("" if start in (None, 0) else a.render(start)) + ":" + (
        "" if end is None or (isinstance(end, int) and end >= 2 ** 62) else a.render(end))
    return _subscript(a, a.raw("dim"), text + ("" if step == 1 else f":{a.render(step)}"))


op("slice", "slice.Tensor", _slice)
op("select", "select.int", lambda a: _subscript(a, a.raw("dim"), a.index))


def _index(a):
    items = [":" if i is None else a.render(i) for i in a.raw("indices")]
    return f"{a.self}[{', '.join(items)}]"


op("index", "index.Tensor", _index, doc="advanced indexing, numpy's rules in both")
op("index_select", "index_select.default", "ops.index_select({self}, {dim}, {index})")
op("gather", "gather.default", "ops.gather_elements({self}, {dim}, {index})")
op("scatter", "scatter.src", "ops.scatter({self}, {dim}, {index}, {src})")
op("scatter_value", "scatter.value",
   "ops.scatter({self}, {dim}, {index}, ops.full({index}.shape, {value}, dtype={self}.dtype))")
op("repeat", "repeat.default", "ops.tile({self}, {repeats})")
op("flip", "flip.default", "ops.flip({self}, {dims})")
op("unfold", "unfold.default", "support.unfold({self}, {dimension}, {size}, {step})", imports=_S,
   doc="sliding windows as a gather (ops.unfold is im2col)")
op("roll", "roll.default", "support.roll({self}, {shifts}, {dims})", imports=_S,
   doc="no Roll kernel on the CPU: two slices and a concatenation")
op("sort", "sort.default", "ops.sort({self}, {dim}, {descending})", doc="(values, indices)")
op("topk", "topk.default", "ops.topk({self}, {k}, {dim}, {largest}, {sorted})", doc="(values, indices)")
op("diagonal", "diagonal.default", "ops.diagonal({self}, {offset}, {dim1}, {dim2})")
op("scatter_add", "scatter_add.default",
   "ops.tensor_scatter_elements({self}, {index}, {src}, {dim}, reduction='add')")
def _scatter_bound(a, name, default):
    """A slice bound as written: ``None`` for torch's open end (2**63 - 1) and for the default."""
    value = a.raw(name)
    return "None" if value is None or value == default or (isinstance(value, int) and value >= 2 ** 62) else a.render(value)


op("slice_scatter", "slice_scatter.default", lambda a: (
    f"ops.slice_scatter({a.self}, {a.src}, {a.raw('dim') % a.rank('self')}, {_scatter_bound(a, 'start', 0)}, "
    f"{_scatter_bound(a, 'end', None)}, {a.step})"),
   doc="x[..., start:end:step] = src, out of place (an in-place slice assignment after functionalisation)")
op("select_scatter", "select_scatter.default",
   "ops.select_scatter({self}, {src}, {dim}, {index})", doc="x[..., index] = src, out of place")
op("index_put", "index_put.default", "support.index_put({self}, {indices}, {values}, {accumulate})", imports=_S,
   doc="x[indices] = values (or +=): integer indices, or one bool mask with one value")
op("scatter_reduce", "scatter_reduce.two",
   "support.scatter_reduce({self}, {dim}, {index}, {src}, {reduce}, {include_self})", imports=_S,
   doc="sum, prod, mean, amax or amin into the indexed positions, through tensor_scatter_* on full coordinates")
op("masked_scatter", "masked_scatter.default", "support.masked_scatter({self}, {mask}, {source})", imports=_S,
   doc="the masked positions take the source's elements in order (a cumulative count of the mask)")
op("embedding_bag", "_embedding_bag.default _embedding_bag_forward_only.default", lambda a: (
    f"support.embedding_bag({a.weight}, {a.indices}, {a.offsets}, {a.mode}, {a.per_sample_weights}, "
    f"{a.include_last_offset}, {a.padding_idx})"), imports=_S,
   doc="each bag's sum, mean or max as segment reductions; offset2bag and bag_size as aten's")
op("histc", "histc.default", "ops.histc({self}, {bins}, {min}, {max})",
   doc="values outside [min, max] are not counted; min == max takes the data's range, as torch")

op("fill", "fill.Scalar", "ops.full({self}.shape, {value}, dtype={self}.dtype)")
op("copy", "copy.default", "ops.cast(ops.broadcast_to({src}, {self}.shape), {self}.dtype)")
op("tril", "tril.default", "ops.tril({self}, {diagonal})")
op("triu", "triu.default", "ops.triu({self}, {diagonal})")
op("constant_pad_nd", "constant_pad_nd.default", lambda a: (
    f"support.constant_pad({a.self}, {a.pad}, {a.value})" if any(p < 0 for p in a.raw("pad") if isinstance(p, int))
    else f"ops.pad({a.self}, {a.pad}, value={a.value})"), imports=_S,
   doc="a negative amount crops: sliced first (MindSpore's PadV3 gets a repeated negative pad wrong)")
op("reflection_pad", "reflection_pad1d.default reflection_pad2d.default",
   "ops.pad({self}, {padding}, mode='reflect')")
op("reflection_pad3d", "reflection_pad3d.default", "support.reflection_pad({self}, {padding})", imports=_S,
   doc="mirrored indices gathered per axis (MindSpore's PadV3 reflects 4-D tensors at most)")
op("replication_pad", "replication_pad2d.default replication_pad3d.default",
   "ops.pad({self}, {padding}, mode='replicate')")
op("embedding", "embedding.default", "ops.gather({weight}, {indices}, 0)",
   doc="a lookup; padding_idx only matters to the gradient, which nn.Embedding's twin handles")

# --- creation ---------------------------------------------------------------------------------------

def _arange(a):
    start = a.start if "start" in a._values else "0"
    step = a.step if "step" in a._values else "1"
    return f"ops.arange({start}, {a.end}, {step}, dtype={a.render(a.out_dtype)})"


op("arange", "arange.default arange.start arange.start_step", _arange)
op("full", "full.default", "ops.full({size}, {fill_value}, dtype={dtype_out})")
op("zeros", "zeros.default", "ops.zeros({size}, {dtype_out})")
op("ones", "ones.default", "ops.ones({size}, {dtype_out})")
op("new_full", "new_full.default", "ops.full({size}, {fill_value}, dtype={dtype_out})")
op("new_zeros", "new_zeros.default", "ops.zeros({size}, {dtype_out})")
op("new_ones", "new_ones.default", "ops.ones({size}, {dtype_out})")
op("full_like", "full_like.default", "ops.full({self}.shape, {fill_value}, dtype={dtype_out})")
op("zeros_like", "zeros_like.default", "ops.zeros({self}.shape, {dtype_out})")
op("ones_like", "ones_like.default", "ops.ones({self}.shape, {dtype_out})")
op("scalar_tensor", "scalar_tensor.default", "ms.Tensor({s}, {dtype_out})")
op("empty", "empty.memory_format empty_strided.default new_empty.default new_empty_strided.default",
   "ops.zeros({size}, {dtype_out})",
   doc="uninitialised storage as zeros: torch leaves its values undefined, so a model reads only what it writes "
       "into it (DeepSeek's new_empty filled by two slice copies)")

# --- layers as functions -----------------------------------------------------------------------------

op("linear", "linear.default", "support.linear({input}, {weight}, {bias})", imports=_S)
op("addmm", "addmm.default", lambda a: (require(a.raw("beta") == 1 and a.raw("alpha") == 1,
                                                "addmm with beta/alpha other than 1")
                                        or f"{a.self} + ops.matmul({a.mat1}, {a.mat2})"))
op("baddbmm", "baddbmm.default", "{beta} * {self} + {alpha} * ops.matmul({batch1}, {batch2})")
op("matmul", "mm.default bmm.default matmul.default",
   lambda a: f"ops.matmul({a.self}, {a.mat2 if 'mat2' in a._values else a.other})")


def _per_side(value, dims):
    """A pool's padding as MindSpore takes it, each of ``dims`` axes' amount twice (before, after); torch's
    is one amount, or one per axis."""
    value = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    return tuple(p for p in (value * dims if len(value) == 1 else value) for _ in (0, 1))


def _conv(a):
    transposed = a.raw("transposed") if "transposed" in a._values else False
    require(not transposed, "transposed convolution as a function (nn.ConvTranspose2d modules port)")
    dims = a.rank("input") - 2
    require(dims in (1, 2, 3), f"{dims}-D convolution as a function (Conv1d/Conv2d/Conv3d only)")
    return (f"support.conv({a.input}, {a.weight}, {a.bias}, {a.stride}, {a.padding}, {a.dilation}, "
            f"{a.groups})")


op("conv", "conv1d.default conv2d.default convolution.default", _conv, imports=_S)
op("layer_norm", "layer_norm.default", "support.layer_norm({input}, {normalized_shape}, {weight}, {bias}, {eps})",
   imports=_S, doc="ops.layer_norm has no CPU kernel; the LayerNorm primitive has")
op("native_layer_norm", "native_layer_norm.default",
   "support.native_layer_norm({input}, {normalized_shape}, {weight}, {bias}, {eps})", imports=_S)
op("group_norm", "group_norm.default", "support.group_norm({input}, {num_groups}, {weight}, {bias}, {eps})",
   imports=_S)
op("native_group_norm", "native_group_norm.default",
   "(support.group_norm({input}, {group}, {weight}, {bias}, {eps}), None, None)", imports=_S)
op("batch_norm", "_native_batch_norm_legit_no_training.default",
   "(support.batch_norm({input}, {weight}, {bias}, {running_mean}, {running_var}, {eps}), None, None)",
   imports=_S, doc="inference BatchNorm written as a function (the module twin trains)")
op("batch_norm_batch_stats", "_native_batch_norm_legit.no_stats",
   lambda a: (f"support.batch_norm_batch_stats({a.input}, {a.weight}, {a.bias}, {a.eps})" if a.raw("training") else
              require(False, "BatchNorm in eval mode without running statistics")),
   imports=_S, doc="F.batch_norm(x, None, None, training=True): the batch's own statistics")
op("max_pool2d", "max_pool2d.default max_pool2d_with_indices.default", lambda a: (
    f"support.max_pool2d({a.self}, {a.kernel_size}, {a.stride if a.raw('stride') else a.kernel_size}, "
    f"{a.padding}, {a.dilation}, {a.ceil_mode}, {str(a.target).endswith('indices.default')})"), imports=_S)
op("avg_pool2d", "avg_pool2d.default", lambda a: (
    f"ops.avg_pool2d({a.self}, {a.kernel_size}, {a.stride if a.raw('stride') else a.kernel_size}, "
    f"{a.render(_per_side(a.raw('padding'), 2))}, "
    f"ceil_mode={a.ceil_mode}, count_include_pad={a.count_include_pad}, "
    f"divisor_override={0 if a.raw('divisor_override') is None else a.divisor_override})"),
   doc="torch's stride defaults to the kernel size, MindSpore's to 1")
op("avg_pool3d", "avg_pool3d.default", lambda a: (
    f"ops.avg_pool3d({a.self}, {a.kernel_size}, {a.stride if a.raw('stride') else a.kernel_size}, "
    f"{a.render(_per_side(a.raw('padding'), 3))}, "
    f"{a.ceil_mode}, {a.count_include_pad}, {0 if a.raw('divisor_override') is None else a.divisor_override})"),
   doc="stride defaults to the kernel size; MindSpore takes the padding per side")
op("max_pool3d", "max_pool3d_with_indices.default", lambda a: (
    f"support.max_pool3d({a.self}, {a.kernel_size}, {a.stride if a.raw('stride') else a.kernel_size}, "
    f"{a.padding}, {a.dilation}, {a.ceil_mode})"), imports=_S)
op("adaptive_avg_pool3d", "_adaptive_avg_pool3d.default",
   "ops.adaptive_avg_pool3d({self}, {output_size})")
op("avg_pool1d", "avg_pool1d.default", lambda a: (
    f"ops.avg_pool1d({a.self}, {a.raw('kernel_size')[0]}, {(a.raw('stride') or a.raw('kernel_size'))[0]}, "
    f"{a.raw('padding')[0]}, {a.ceil_mode}, {a.count_include_pad})"), doc="stride defaults to the kernel size")
op("adaptive_avg_pool1d", "adaptive_avg_pool1d.default",
   "ops.squeeze(ops.adaptive_avg_pool2d(ops.expand_dims({self}, -2), (1, {output_size}[0])), -2)",
   doc="a 2-D pool of height 1 (ops.adaptive_avg_pool1d takes only lengths its output size divides)")
op("grid_sampler_2d", "grid_sampler_2d.default", lambda a: (
    f"ops.grid_sample({a.input}, {a.grid}, {['bilinear', 'nearest', 'bicubic'][a.raw('interpolation_mode')]!r}, "
    f"{['zeros', 'border', 'reflection'][a.raw('padding_mode')]!r}, {a.align_corners})"),
   doc="the schema's integer modes by name")
op("pdist", "_pdist_forward.default", "support.pdist({self}, {p})", imports=_S,
   doc="cdist of the rows with themselves, the pairs i < j gathered in row-major order")
op("col2im", "col2im.default",
   "support.col2im({self}, {output_size}, {kernel_size}, {dilation}, {padding}, {stride})", imports=_S,
   doc="F.fold: MindSpore's Col2Im takes the columns split into (C, kh * kw)")
op("fft_r2c", "_fft_r2c.default", "support.fft_r2c({self}, {dim}, {normalization}, {onesided})", imports=_S,
   doc="rfftn (or fftn of the real tensor, not one-sided); aten's normalization code as the norm")
op("fft_c2r", "_fft_c2r.default", "support.fft_c2r({self}, {dim}, {normalization}, {last_dim_size})", imports=_S,
   doc="irfftn to the last axis' recorded size")
op("fft_c2c", "_fft_c2c.default", "support.fft_c2c({self}, {dim}, {normalization}, {forward})", imports=_S,
   doc="fftn or ifftn of a complex tensor")
op("cdist", "_cdist_forward.default", "ops.cdist({x1}, {x2}, float({p}))")
op("adaptive_avg_pool2d", "adaptive_avg_pool2d.default _adaptive_avg_pool2d.default",
   "ops.adaptive_avg_pool2d({self}, {output_size})")
op("upsample_nearest2d", "upsample_nearest2d.vec",
   lambda a: f"ops.interpolate({a.input}, size={a.render(tuple(a.out_shape[-2:]))}, mode='nearest')")
op("upsample_bilinear2d", "upsample_bilinear2d.vec",
   lambda a: (f"ops.interpolate({a.input}, size={a.render(tuple(a.out_shape[-2:]))}, mode='bilinear', "
              f"align_corners={a.align_corners})"))
op("sdpa", "scaled_dot_product_attention.default",
   "support.scaled_dot_product_attention({query}, {key}, {value}, {attn_mask}, {dropout_p}, {is_causal}, "
   "{scale}, {enable_gqa}, self.training)", imports=_S,
   doc="softmax(q k^T * scale + mask) v, written out; dropout follows the cell's training flag")
op("dropout", "dropout.default native_dropout.default msport.dropout.default", lambda a: (
    f"support.dropout({a.input}, {a.p}, self.training{', True' if 'native' in str(a.target) else ''})"),
   imports=_S, doc="follows the cell's training flag, not the flag the trace saw (msport.dropout: the eval-mode "
                   "dropout :mod:`msport.port.capture` keeps from the decomposition)")

# --- symbolic sizes and Python on them ------------------------------------------------------------

op("sym_size", "sym_size.int", "{self}.shape[{dim}]")
for _name, _symbol in (("add", "+"), ("sub", "-"), ("mul", "*"), ("floordiv", "//"), ("mod", "%")):
    op(f"py_{_name}", f"operator.{_name}", f"{{input}} {_symbol} {{other}}")
for _name, _symbol in (("eq", "=="), ("ne", "!="), ("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">=")):
    op(f"py_{_name}", f"operator.{_name}", f"{{input}} {_symbol} {{other}}", doc="a size comparison, a Python bool")
op("py_neg", "operator.neg", "-{input}")
op("py_min", "torch.sym_min", "min({input}, {other})", doc="the smaller of two sizes (a slice's end clamped to the size)")
op("py_max", "torch.sym_max", "max({input}, {other})", doc="the larger of two sizes")
op("getitem", "operator.getitem", "{input}[{idx}]", doc="an element of a tuple an op returned")
