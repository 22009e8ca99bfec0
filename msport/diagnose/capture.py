"""Record every layer's output (and its gradient) in one forward/backward pass of either framework.

Both sides capture the same things under the same names:

* ``outputs``: each named submodule's output, in the order the layers finish
  (a block's name comes after its layers). A module called more than once in
  one pass (MindSpore ResNet blocks share one ``relu`` cell) gets ``name``,
  ``name#2``, ``name#3``...
* ``output_grads`` (with ``grads=True``): d(loss)/d(each of those outputs), in
  the order the backward pass reaches them. The loss is each side's
  ``loss_fn(output, labels)``; without one, mean cross-entropy against ``y``
  (by default :func:`default_labels`, kept in ``labels``), but only where the
  output is logits (a float (N, classes) tensor): for any other output a loss
  must be given, nothing is assumed.
* A layer with a tuple output (LSTM, MultiheadAttention) is captured at the
  element its registry entry names (``output_index``), else the first tensor.

Inputs are a tensor, a tuple (positional arguments) or a dict (keyword
arguments) of arrays, any dtype: integer token ids stay integers.
* ``param_grads``: d(loss)/d(each trainable parameter), under the framework's
  own parameter names.
* ``spans``: each call's ``(start, end)`` in one counter that a pre-hook
  and a hook advance, so which calls ran inside which (a block's layers inside
  the block, call by call even for a shared module) is known without trusting
  names. ``inputs`` (with ``inputs=True``): each call's positional inputs,
  arrays copied (a list input stays a list), which replaying a layer in
  isolation runs the other framework's twin on.

How, and why this way:

* torch: a forward hook copies the output and registers a tensor hook on it.
  When a module returns its input unchanged (an empty ``nn.Sequential``
  shortcut), the tensor hook would see the gradient of every use of that
  tensor, so the hook returns a view instead and sees only this module's path.
* MindSpore 2.10, PyNative: ``Cell.register_forward_hook`` for outputs and
  ``Cell.register_backward_hook`` for their gradients (``grad_output`` is
  d(loss)/d(cell output), this call's path only, like torch's view). The
  case study's ``ops.InsertGradientOf`` does not work for this: its callback is
  compiled as a MindSpore graph function, so it cannot store anything in a
  Python dict ("Only supported augassign to attribute of self..."). A shared
  cell's backward hook fires once per call, latest call first, and is matched
  to its forward calls in reverse.
  Parameter gradients come from ``ms.value_and_grad(..., weights=...)``.

Capturing leaves the models as they were: training flags, running statistics
(a train-mode pass updates them) and torch ``.grad`` fields are restored, the
hooks removed, and MindSpore's execution mode switched back if it was GRAPH.
"""

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from msport.errors import UserError


@dataclass
class Capture:
    """What one pass recorded; see the module docstring. ``logits`` is the model's output
    (its ``output_index`` element / first tensor when the model returns a tuple)."""

    framework: str
    outputs: OrderedDict = field(default_factory=OrderedDict)
    output_grads: OrderedDict = field(default_factory=OrderedDict)
    param_grads: OrderedDict = field(default_factory=OrderedDict)
    logits: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None
    loss: Optional[float] = None
    spans: OrderedDict = field(default_factory=OrderedDict)
    inputs: OrderedDict = field(default_factory=OrderedDict)


class _Spans:
    """Call names and ``(start, end)`` positions: a pre-hook opens a call, the hook closes the latest open
    call of that module (a module re-entered inside itself closes innermost first)."""

    def __init__(self, capture, keep_inputs, to_numpy):
        self.capture, self.keep_inputs, self.to_numpy = capture, keep_inputs, to_numpy
        self.names, self.clock, self.open = _CallNames(), 0, {}

    def start(self, name, inputs):
        call = self.names.next(name)
        self.open.setdefault(name, []).append((call, self.clock))
        self.clock += 1
        if self.keep_inputs:
            self.capture.inputs[call] = tuple(self._copy_input(v) for v in inputs)

    def end(self, name):
        call, start = self.open[name].pop()
        self.capture.spans[call] = (start, self.clock)
        self.clock += 1
        return call

    def _copy_input(self, value):
        if isinstance(value, (tuple, list)):
            return type(value)(self._copy_input(v) for v in value)
        array = self.to_numpy(value)
        return value if array is None else _copy(array)


class _CallNames:
    """``name``, ``name#2``, ... for successive calls of one module."""

    def __init__(self):
        self.calls = {}

    def next(self, name):
        count = self.calls.get(name, 0) + 1
        self.calls[name] = count
        return name if count == 1 else f"{name}#{count}"


def _copy(array):
    # Framework buffers can be reused or modified in place after the hook returns: own the memory.
    return np.array(array, copy=True)


def _first_tensor(output, is_tensor, index=None):
    """The output itself, or element ``index`` (else the first tensor) of a tuple/list output."""
    if is_tensor(output):
        return output
    if isinstance(output, (tuple, list)):
        if index is not None and index < len(output) and is_tensor(output[index]):
            return output[index]
        return next((o for o in output if is_tensor(o)), None)
    return None


def default_labels(n, num_classes):
    """Labels for a gradient pass when the caller has none: fixed, covering every class in turn."""
    return (np.arange(n) % max(int(num_classes), 1)).astype(np.int64)


# --- inputs and losses -------------------------------------------------------------------------

def as_inputs(x):
    """``(args, kwargs)`` of numpy arrays from a tensor/array, a tuple/list or a dict; dtypes kept."""
    def array(value, where):
        if hasattr(value, "detach"):
            return value.detach().cpu().numpy()
        if hasattr(value, "asnumpy"):
            return value.asnumpy()
        out = np.asarray(value)
        if out.dtype == object:
            raise UserError(f"example input {where} is not an array (found {type(value).__name__})")
        return out

    if isinstance(x, dict):
        return (), OrderedDict((k, array(v, repr(k))) for k, v in x.items())
    if isinstance(x, (tuple, list)):
        return tuple(array(v, f"#{i}") for i, v in enumerate(x)), {}
    return (array(x, ""),), {}


def batch_size(args, kwargs):
    first = (list(args) + list(kwargs.values()))[0]
    return int(first.shape[0]) if first.ndim else 1


def describe_inputs(args, kwargs):
    parts = [f"{a.dtype}{tuple(a.shape)}" for a in args] + [f"{k}={v.dtype}{tuple(v.shape)}" for k, v in kwargs.items()]
    return ", ".join(parts)


def is_logits(output):
    """A float (N, classes) array: the only output cross-entropy is assumed for."""
    return output is not None and output.ndim == 2 and output.shape[1] > 1 and np.issubdtype(output.dtype, np.floating)


def _no_default_loss(output):
    shape = "a tuple" if output is None else f"shape {tuple(output.shape)} dtype {output.dtype}"
    return UserError(f"the model's output ({shape}) is not (N, classes) logits, so there is no default loss for "
                     f"gradients; pass a loss for each side (torch_loss_fn=, loss_fn=: (output, labels) -> scalar)")


def _fresh(arrays):
    return [np.array(a, copy=True) for a in arrays]


def _entries_by_name(named, lookup):
    out = {}
    for name, sub in named:
        entry = lookup(sub)
        if entry is not None and entry.output_index is not None:
            out[name] = entry.output_index
    return out


# --- torch -----------------------------------------------------------------------------------

def capture_torch(module, x, y=None, *, grads=False, train_mode=False, loss_fn=None, inputs=False):
    """One pass of a ``torch.nn.Module`` on ``x`` (see :func:`as_inputs`); returns a :class:`Capture`.

    ``loss_fn(output, labels)``: the loss for ``grads`` (default: cross-entropy where the output is logits).
    ``inputs``: also keep every call's inputs (``Capture.inputs``).
    """
    import torch

    from msport.registry import entry_for_torch

    args, kwargs = as_inputs(x)
    capture = Capture("torch")
    spans = _Spans(capture, inputs, lambda v: v.detach().cpu().numpy() if torch.is_tensor(v) else None)
    indices = _entries_by_name(module.named_modules(), entry_for_torch)

    def pre_hook(name):
        def hook(_module, inputs):
            spans.start(name, inputs)
        return hook

    def forward_hook(name):
        def hook(_module, inputs, output):
            call = spans.end(name)
            tensor = _first_tensor(output, torch.is_tensor, indices.get(name))
            if tensor is None:
                return None
            capture.outputs[call] = _copy(tensor.detach().cpu().numpy())
            if not (grads and tensor.requires_grad):
                return None
            replaced = None
            if tensor is output and any(tensor is i for i in inputs):
                tensor = replaced = tensor.view_as(tensor)  # identity: this path's gradient only

            def store(grad):
                capture.output_grads[call] = _copy(grad.detach().cpu().numpy())

            tensor.register_hook(store)
            return replaced
        return hook

    saved = _TorchState(module, train_mode)
    handles = [h for n, m in module.named_modules() if n
               for h in (m.register_forward_pre_hook(pre_hook(n)), m.register_forward_hook(forward_hook(n)))]
    try:
        module.train(train_mode)
        torch_args = [torch.from_numpy(a) for a in _fresh(args)]
        torch_kwargs = {k: torch.from_numpy(a) for k, a in zip(kwargs, _fresh(kwargs.values()))}
        with torch.set_grad_enabled(grads):
            output = module(*torch_args, **torch_kwargs)
            logits = _first_tensor(output, torch.is_tensor)
            capture.logits = _copy(logits.detach().cpu().numpy()) if logits is not None else None
            if grads:
                if y is not None:
                    capture.labels = np.asarray(y)
                elif loss_fn is None and is_logits(capture.logits):
                    capture.labels = default_labels(batch_size(args, kwargs), capture.logits.shape[-1])
                if loss_fn is None:
                    if not (torch.is_tensor(output) and is_logits(capture.logits)):
                        raise _no_default_loss(capture.logits if torch.is_tensor(output) else None)
                    loss = torch.nn.functional.cross_entropy(output, torch.from_numpy(capture.labels.astype(np.int64)))
                else:
                    labels = torch.from_numpy(np.array(capture.labels)) if capture.labels is not None else None
                    loss = loss_fn(output, labels)
                for p in module.parameters():
                    p.grad = None
                loss.backward()
                capture.loss = float(loss.detach())
                capture.param_grads = OrderedDict(
                    (n, _copy(p.grad.cpu().numpy())) for n, p in module.named_parameters() if p.grad is not None)
    finally:
        for h in handles:
            h.remove()
        saved.restore()
    return capture


class _TorchState:
    """Training flags, buffers/parameters (when a train pass may change them) and ``.grad`` fields."""

    def __init__(self, module, train_mode):
        self.module = module
        self.flags = [(m, m.training) for m in module.modules()]
        self.grads = [(p, p.grad) for p in module.parameters()]
        self.state = ({k: v.detach().clone() for k, v in module.state_dict().items()}
                      if train_mode else None)

    def restore(self):
        import torch

        if self.state is not None:
            with torch.no_grad():
                self.module.load_state_dict(self.state)
        for m, flag in self.flags:
            m.training = flag
        for p, g in self.grads:
            p.grad = g


# --- MindSpore -------------------------------------------------------------------------------

def capture_mindspore(cell, x, y=None, *, grads=False, train_mode=False, loss_fn=None, inputs=False):
    """One PyNative pass of a ``mindspore.nn.Cell`` on ``x``; returns a :class:`Capture`.

    ``grads=True`` with the default loss (cross-entropy, logits only) needs the labels ``y``
    (e.g. the torch capture's ``labels``); ``loss_fn(output, labels)`` replaces it.
    ``inputs``: also keep every call's inputs (``Capture.inputs``).
    """
    from msport._mindspore import ms, nn
    from msport.registry import entry_for_ms

    args, kwargs = as_inputs(x)
    capture = Capture("mindspore")
    forward_calls = {}  # cell name -> its call names, in forward order
    indices = _entries_by_name(cell.cells_and_names(), entry_for_ms)

    def is_tensor(value):
        return isinstance(value, ms.Tensor)

    spans = _Spans(capture, inputs, lambda v: v.asnumpy() if is_tensor(v) else None)

    def pre_hook(name):
        def hook(_cell, inputs):
            spans.start(name, inputs)
        return hook

    def forward_hook(name):
        def hook(_cell, _inputs, output):
            call = spans.end(name)
            tensor = _first_tensor(output, is_tensor, indices.get(name))
            if tensor is not None:
                forward_calls.setdefault(name, []).append(call)
                capture.outputs[call] = _copy(tensor.asnumpy())
        return hook

    def backward_hook(name):
        def hook(_cell, _grad_input, grad_output):
            grad = _first_tensor(grad_output, is_tensor, indices.get(name))
            calls = forward_calls.get(name, [])
            done = sum(1 for c in calls if c in capture.output_grads)
            if grad is not None and done < len(calls):
                capture.output_grads[calls[len(calls) - 1 - done]] = _copy(grad.asnumpy())
        return hook

    saved = _MindSporeState(cell, train_mode)
    handles = []
    for name, sub in cell.cells_and_names():
        if name:
            handles.append(sub.register_forward_pre_hook(pre_hook(name)))
            handles.append(sub.register_forward_hook(forward_hook(name)))
            if grads:
                handles.append(sub.register_backward_hook(backward_hook(name)))
    try:
        ms.set_context(mode=ms.PYNATIVE_MODE)  # hooks run only in PyNative
        cell.set_train(train_mode)
        ms_args = [ms.Tensor(a) for a in _fresh(args)]
        ms_kwargs = {k: ms.Tensor(a) for k, a in zip(kwargs, _fresh(kwargs.values()))}
        if grads:
            if loss_fn is None and y is None:
                raise UserError("capture_mindspore(grads=True) with the default loss needs labels y")
            weights = cell.trainable_params()
            output_box = []
            default = loss_fn is None
            loss_cell = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean") if default else loss_fn

            def forward(labels):
                output = cell(*ms_args, **ms_kwargs)
                output_box.append(output)
                if default and not (is_tensor(output) and is_logits(_shape_probe(output))):
                    raise _no_default_loss(output.asnumpy() if is_tensor(output) else None)
                return loss_cell(output, labels)

            capture.labels = np.asarray(y) if y is not None else None
            if capture.labels is None:
                label_tensor = None
            elif default:
                label_tensor = ms.Tensor(capture.labels.astype(np.int32))
            else:
                label_tensor = ms.Tensor(np.array(capture.labels))
            loss, param_grads = ms.value_and_grad(forward, grad_position=None, weights=weights)(label_tensor)
            capture.loss = float(loss.asnumpy())
            first = _first_tensor(output_box[-1], is_tensor)
            capture.logits = _copy(first.asnumpy()) if first is not None else None
            capture.param_grads = OrderedDict((p.name, _copy(g.asnumpy())) for p, g in zip(weights, param_grads))
        else:
            first = _first_tensor(cell(*ms_args, **ms_kwargs), is_tensor)
            capture.logits = _copy(first.asnumpy()) if first is not None else None
    finally:
        for h in handles:
            h.remove()
        saved.restore()
    return capture


class _ShapeOnly:
    def __init__(self, tensor):
        self.ndim = len(tensor.shape)
        self.shape = tuple(tensor.shape)
        self.dtype = np.dtype(np.float32) if "Float" in str(tensor.dtype) else np.dtype(np.int64)


def _shape_probe(tensor):
    """What :func:`is_logits` reads, without copying a tensor out of a graph being differentiated."""
    return _ShapeOnly(tensor)


class _MindSporeState:
    """Execution mode, per-cell training flags and (for a train pass) every parameter's value."""

    def __init__(self, cell, train_mode):
        from msport._mindspore import ms

        self.cell = cell
        self.mode = ms.get_context("mode")
        self.flags = [(sub, sub.training) for _, sub in cell.cells_and_names()]
        self.values = ([(p, _copy(p.asnumpy())) for p in cell.get_parameters()] if train_mode else [])

    def restore(self):
        from msport._mindspore import ms

        for param, value in self.values:
            param.set_data(ms.Tensor(value))
        self.cell.set_train(self.flags[0][1])
        for sub, flag in self.flags:
            sub.add_flags(training=flag)
        ms.set_context(mode=self.mode)


__all__ = ["Capture", "as_inputs", "batch_size", "capture_torch", "capture_mindspore", "default_labels",
           "describe_inputs", "is_logits"]
