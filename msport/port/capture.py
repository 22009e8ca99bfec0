"""Capture a torch model with ``torch.export`` (non-strict) as a graph over a closed set of ATen ops.

This is the one tracer of ``msport port``. ``torch.fx.symbolic_trace`` is gone: it follows Python,
so it stops at a branch on a tensor shape (timm's dynamic "same" padding), at ``forward(**kwargs)``
(every Hugging Face model), and it records torch functions and methods, an open-ended set.
``torch.export`` runs the model on fake tensors and records ATen ops; its training IR keeps
``aten.linear``, ``aten.conv2d``, ``aten.scaled_dot_product_attention``..., and
:func:`export` decomposes every op the op table does not map into Core ATen, so what reaches the
code generator is Core ATen plus the table's own higher-level ops.

* Inputs: a tensor, a tuple of them, a dict (keyword arguments) or ``(args, kwargs)``; any dtype.
  numpy arrays become tensors. The first axis of every input is marked ``Dim.AUTO`` (and the second
  of integer and bool inputs, the sequence of token ids and masks): export keeps an axis dynamic
  where the model allows it and specialises it silently where not, so the generated code reads
  ``x.shape[0]`` instead of the example's batch size wherever it can.
* Changes msport must make to export a model are returned, and go into the report: a Hugging Face
  config's ``use_cache`` is turned off (a ``DynamicCache`` output is not a pytree), and a mixture of
  experts computed by ``grouped_mm`` (an opaque custom op) is computed by ``batched_mm`` instead.
"""

import contextlib
import functools
import io
import os
import traceback
import warnings

import numpy as np
import torch

from msport.errors import UserError


class TraceFailed(UserError):
    """``torch.export`` could not capture the model (data-dependent control flow, bad example inputs)."""


def as_inputs(example_inputs):
    """``(args tuple, kwargs dict)`` of torch values for a tensor, a tuple/list, a dict or ``(args, kwargs)``."""
    value = example_inputs
    if isinstance(value, dict):
        args, kwargs = (), dict(value)
    elif (isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[0], (tuple, list))
          and isinstance(value[1], dict)):
        args, kwargs = tuple(value[0]), dict(value[1])
    elif isinstance(value, (tuple, list)):
        args, kwargs = tuple(value), {}
    else:
        args, kwargs = (value,), {}
    return tuple(_tensor(v) for v in args), {k: _tensor(v) for k, v in kwargs.items()}


def _tensor(value):
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, (tuple, list)):
        return type(value)(_tensor(v) for v in value)
    return value


def _dynamic(value):
    from torch.export import Dim

    if isinstance(value, torch.Tensor):
        dims = {}
        if value.ndim >= 1 and value.shape[0] > 1:
            dims[0] = Dim.AUTO
        if value.ndim == 2 and not value.is_floating_point() and value.shape[1] > 1:
            dims[1] = Dim.AUTO
        return dims or None
    if isinstance(value, (tuple, list)):
        return type(value)(_dynamic(v) for v in value)
    if isinstance(value, dict):
        return {k: _dynamic(v) for k, v in value.items()}
    return None


def _dynamic_shapes(module, args, kwargs):
    """``dynamic_shapes`` by the forward's argument names (export matches them to the signature)."""
    import inspect

    try:
        bound = inspect.signature(module.forward).bind(*args, **kwargs)
    except TypeError:
        return None  # export itself will say what does not fit
    return {k: _dynamic(v) for k, v in bound.arguments.items()}


@contextlib.contextmanager
def exportable(module):
    """Eval mode, and a Hugging Face config's KV cache off; yields the list of changes, undone after."""
    changes = []
    was_training = module.training
    cached = _caching_configs(module)
    experts = _grouped_experts(module)
    module.eval()
    try:
        for config, _ in cached:
            config.use_cache = False
        if cached:
            changes.append("config.use_cache set to False while porting (a KV-cache output is not a pytree "
                           "torch.export can capture; the port computes the full sequence every call)")
        if experts:
            module.set_experts_implementation("batched_mm")
            changes.append("experts implementation 'grouped_mm' set to 'batched_mm' while porting (grouped_mm "
                           "is an opaque custom op over data-dependent row groups; batched_mm computes the same "
                           "token-expert products with a gather and a batched matmul)")
        yield changes
    finally:
        module.train(was_training)
        for config, value in cached:
            config.use_cache = value
        if experts:
            module.set_experts_implementation(experts)


def _caching_configs(module):
    """``[(config, use_cache)]`` of every Hugging Face config of ``module`` with its cache on: the model's
    own, its sub-configs (a multimodal model's ``text_config``) and those its submodules hold."""
    found, seen = [], set()

    def visit(config, depth=0):
        if config is None or id(config) in seen or depth > 4 or not hasattr(config, "to_dict"):
            return
        seen.add(id(config))
        if getattr(config, "use_cache", None):
            found.append((config, config.use_cache))
        for value in list(vars(config).values()):
            visit(value if hasattr(value, "to_dict") and hasattr(value, "use_cache") else None, depth + 1)

    for sub in module.modules():
        visit(getattr(sub, "config", None))
    return found


def _grouped_experts(module):
    """A Hugging Face model's experts implementations (``get_experts_implementation()``) when any is
    'grouped_mm', the default of its mixture-of-experts layers; else ``None``."""
    get = getattr(module, "get_experts_implementation", None)
    if get is None or not hasattr(module, "set_experts_implementation"):
        return None
    try:
        current = get()
    except (AttributeError, TypeError):
        return None
    return current if "grouped_mm" in current.values() else None


@contextlib.contextmanager
def _quiet_torch():
    """torch's log records below ERROR dropped while exporting (its loggers are made as it goes, so the
    filter sits on the handlers): a failure is msport's one line, not a graph dump."""
    import logging

    def keep(record):
        return not record.name.startswith("torch") or record.levelno >= logging.ERROR

    named = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict) if n.startswith("torch")]
    handlers = {id(h): h for logger in [logging.getLogger(), logging.getLogger("torch"), *named]
                for h in getattr(logger, "handlers", [])}.values()
    for handler in handlers:
        handler.addFilter(keep)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")  # export's own warnings and prints: its graph dumps are not for users
            yield
    finally:
        for handler in handlers:
            handler.removeFilter(keep)


@contextlib.contextmanager
def _state_kept(module):
    """The attributes of every submodule as they were before the trace. Export runs the model's Python on
    fake tensors: what a forward stores on itself (funnel's ``seq_len``, a symbolic size; RWKV's
    rescaled flag) would otherwise leak into the user's model, where a later copy or call trips on it."""
    saved = [(sub, dict(vars(sub))) for sub in module.modules()]
    try:
        yield
    finally:
        for sub, before in saved:
            state = vars(sub)
            for key in [k for k in state if k not in before]:
                del state[key]
            for key, value in before.items():
                if state.get(key, _MISSING) is not value:
                    state[key] = value


_MISSING = object()


def export(module, args, kwargs, keep, name=None):
    """The decomposed ``ExportedProgram`` of ``module`` on ``(args, kwargs)`` (eval mode, inside
    :func:`exportable`); ``keep``: ATen overloads not to decompose (the op table's). Dropout stays
    (:func:`_keep_dropout`)."""
    name = name or type(module).__name__
    dynamic = _dynamic_shapes(module, args, kwargs)
    try:
        with _quiet_torch(), _state_kept(module):
            program = torch.export.export(module, args, kwargs, strict=False, dynamic_shapes=dynamic)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TraceFailed(
            f"cannot export {name}: {first[:300]} at {failure_location(exc)}; torch.export records one path "
            f"through the Python code, so a branch on tensor values cannot be captured: fix that input "
            f"(msport port --concrete-arg NAME=VALUE), rewrite the branch with torch.where / torch.cond, "
            f"or register a twin for the module that holds it (msport.port.register_layer)") from exc
    table = torch.export.default_decompositions()
    for op in keep:
        if op in table:
            del table[op]
    _keep_dropout(program)
    with _quiet_torch():
        program = program.run_decompositions(table)
    return program


@contextlib.contextmanager
def layer_inputs(module):
    """``{submodule path: [input shape, ...]}`` of every call the export makes (a size export keeps dynamic
    is ``None``), filled while the block runs: what each layer really received. Export can attribute a view
    of the caller's tensor to the callee (a ``torch.split`` chunk is re-sliced inside the conv that reads
    it), and regrouping that callee into one layer call would swallow the slice: :mod:`msport.port.codegen`
    checks a group's input against this. Keyed by path, not by object: export may run a copy of the model."""
    seen = {}

    def record(path, _sub, args):
        first = next((a for a in args if isinstance(a, torch.Tensor)), None)
        if first is not None:
            seen.setdefault(path, []).append(tuple(d if isinstance(d, int) else None for d in first.shape))

    handles = [sub.register_forward_pre_hook(functools.partial(record, path))
               for path, sub in module.named_modules(remove_duplicate=False) if path]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


@torch.library.custom_op("msport::dropout", mutates_args=())
def _dropout(input: torch.Tensor, p: float) -> torch.Tensor:  # noqa: A002 - the name aten.dropout's schema uses
    """A dropout the decomposition keeps: identity in torch (the export is in eval mode), and in the port
    a dropout that follows the cell's training flag (``nn.Dropout`` modules become the registry's layer)."""
    return input.clone()


@_dropout.register_fake
def _dropout_fake(input, p):  # noqa: A002
    return torch.empty_like(input)


def _keep_dropout(program):
    """Every ``aten.dropout(x, p > 0, train=False)`` of the eval-mode training IR becomes ``msport::dropout``:
    the decomposition would drop it (it is the identity in eval), and a port trained from scratch would
    then train without the dropout torch trains with."""
    changed = False
    for node in program.graph.nodes:
        if (node.op == "call_function" and node.target == torch.ops.aten.dropout.default and len(node.args) > 1
                and isinstance(node.args[1], float) and node.args[1] > 0):
            node.target = torch.ops.msport.dropout.default
            node.args = node.args[:2]
            changed = True
    if changed:
        program.graph_module.recompile()


_FRAMEWORK_DIRS = tuple(os.path.dirname(m.__file__) + os.sep for m in (torch,))


def failure_location(exc):
    """``file:line `code``` of the innermost frame outside torch of an exception (and of its causes)."""
    frames = []
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        frames += [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_FRAMEWORK_DIRS)]
        exc = exc.__cause__ or exc.__context__
    frames = [f for f in frames if not f.filename.endswith(os.path.join("msport", "port", "capture.py"))]
    if not frames:
        return "an unknown place (inside torch)"
    frame = frames[-1]
    return f"{short_path(frame.filename)}:{frame.lineno} `{(frame.line or '').strip()}`"


def short_path(path):
    if "site-packages" + os.sep in path:
        return path.split("site-packages" + os.sep, 1)[1]
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


__all__ = ["TraceFailed", "as_inputs", "export", "exportable", "failure_location", "layer_inputs", "short_path"]
