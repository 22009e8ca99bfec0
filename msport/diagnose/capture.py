"""Record every layer's output (and its gradient) in one forward/backward pass of either framework.

Both sides capture the same things under the same names:

* ``outputs``: each named submodule's output, in the order the layers finish
  (a block's name comes after its layers). A module called more than once in
  one pass (MindSpore ResNet blocks share one ``relu`` cell) gets ``name``,
  ``name#2``, ``name#3``...
* ``output_grads`` (with ``grads=True``): d(loss)/d(each of those outputs), in
  the order the backward pass reaches them; the loss is mean cross-entropy
  against ``y`` (torch: by default ``default_labels``, kept in ``labels``).
* ``param_grads``: d(loss)/d(each trainable parameter), under the framework's
  own parameter names.

How, and why this way:

* torch: a forward hook copies the output and registers a tensor hook on it.
  When a module returns its input unchanged (an empty ``nn.Sequential``
  shortcut), the tensor hook would see the gradient of every use of that
  tensor, so the hook returns a view instead and sees only this module's path.
* MindSpore 2.10, PyNative: ``Cell.register_forward_hook`` for outputs and
  ``Cell.register_backward_hook`` for their gradients (``grad_output`` is
  d(loss)/d(cell output), this call's path only, like torch's view). The
  seed's ``ops.InsertGradientOf`` does not work for this: its callback is
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


@dataclass
class Capture:
    """What one pass recorded; see the module docstring."""

    framework: str
    outputs: OrderedDict = field(default_factory=OrderedDict)
    output_grads: OrderedDict = field(default_factory=OrderedDict)
    param_grads: OrderedDict = field(default_factory=OrderedDict)
    logits: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None
    loss: Optional[float] = None


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


def _first_tensor(output, is_tensor):
    """The output itself, or the first tensor of a tuple/list output (``None`` when there is none)."""
    if is_tensor(output):
        return output
    if isinstance(output, (tuple, list)):
        return next((o for o in output if is_tensor(o)), None)
    return None


def default_labels(n, num_classes):
    """Labels for a gradient pass when the caller has none: fixed, covering every class in turn."""
    return (np.arange(n) % max(int(num_classes), 1)).astype(np.int64)


# --- torch -----------------------------------------------------------------------------------

def capture_torch(module, x, y=None, *, grads=False, train_mode=False):
    """One pass of a ``torch.nn.Module`` on ``x`` (float32 NCHW array); returns a :class:`Capture`."""
    import torch

    capture = Capture("torch")
    names = _CallNames()

    def forward_hook(name):
        def hook(_module, inputs, output):
            tensor = _first_tensor(output, torch.is_tensor)
            if tensor is None:
                return None
            call = names.next(name)
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
    handles = [m.register_forward_hook(forward_hook(n)) for n, m in module.named_modules() if n]
    try:
        module.train(train_mode)
        inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        with torch.set_grad_enabled(grads):
            logits = module(inputs)
            capture.logits = _copy(logits.detach().cpu().numpy())
            if grads:
                labels = np.asarray(y if y is not None else default_labels(len(x), logits.shape[-1]))
                capture.labels = labels.astype(np.int64)
                loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(capture.labels))
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

def capture_mindspore(cell, x, y=None, *, grads=False, train_mode=False):
    """One PyNative pass of a ``mindspore.nn.Cell`` on ``x``; returns a :class:`Capture`.

    ``grads=True`` needs the labels ``y`` (e.g. the torch capture's ``labels``).
    """
    from msport._mindspore import ms, nn

    if grads and y is None:
        raise ValueError("capture_mindspore(grads=True) needs labels y")

    capture = Capture("mindspore")
    names = _CallNames()
    forward_calls = {}  # cell name -> its call names, in forward order

    def is_tensor(value):
        return isinstance(value, ms.Tensor)

    def forward_hook(name):
        def hook(_cell, _inputs, output):
            tensor = _first_tensor(output, is_tensor)
            if tensor is not None:
                call = names.next(name)
                forward_calls.setdefault(name, []).append(call)
                capture.outputs[call] = _copy(tensor.asnumpy())
        return hook

    def backward_hook(name):
        def hook(_cell, _grad_input, grad_output):
            grad = _first_tensor(grad_output, is_tensor)
            calls = forward_calls.get(name, [])
            done = sum(1 for c in calls if c in capture.output_grads)
            if grad is not None and done < len(calls):
                capture.output_grads[calls[len(calls) - 1 - done]] = _copy(grad.asnumpy())
        return hook

    saved = _MindSporeState(cell, train_mode)
    handles = []
    for name, sub in cell.cells_and_names():
        if name:
            handles.append(sub.register_forward_hook(forward_hook(name)))
            if grads:
                handles.append(sub.register_backward_hook(backward_hook(name)))
    try:
        ms.set_context(mode=ms.PYNATIVE_MODE)  # hooks run only in PyNative
        cell.set_train(train_mode)
        inputs = ms.Tensor(np.ascontiguousarray(x, dtype=np.float32))
        if grads:
            loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
            weights = cell.trainable_params()
            logits_box = []

            def forward(data, labels):
                logits = cell(data)
                logits_box.append(logits)
                return loss_fn(logits, labels)

            capture.labels = np.asarray(y).astype(np.int64)
            label_tensor = ms.Tensor(capture.labels.astype(np.int32))
            loss, param_grads = ms.value_and_grad(forward, grad_position=None, weights=weights)(inputs, label_tensor)
            capture.loss = float(loss.asnumpy())
            capture.logits = _copy(logits_box[-1].asnumpy())
            capture.param_grads = OrderedDict((p.name, _copy(g.asnumpy())) for p, g in zip(weights, param_grads))
        else:
            capture.logits = _copy(cell(inputs).asnumpy())
    finally:
        for h in handles:
            h.remove()
        saved.restore()
    return capture


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


__all__ = ["Capture", "capture_torch", "capture_mindspore", "default_labels"]
