"""The machinery every msport optimizer shares: torch's param groups on a ``mindspore.nn.Optimizer``.

Why not MindSpore's own grouping: its base class takes only ``lr`` and ``weight_decay`` per
group, and given a plain list it silently skips weight decay on every parameter whose name
holds ``beta`` or ``gamma``. Here the base class is handed one flat list with no decay of its
own, and every group's hyperparameters live in float64 scalar Parameters of this optimizer:

* a compiled train step (GRAPH_MODE ``TrainOneStepCell``, ``value_and_grad``) reads them at
  run time, so a scheduler changing ``param_groups[i]['lr']`` from Python takes effect at the
  next step with no recompilation;
* the per-step scalars (bias corrections, step sizes) are computed from them in float64, as
  torch computes them in Python floats, and cast to float32 once, so ``1 - 0.999 ** t`` keeps
  its digits.

Hyperparameters that change the graph's shape (``amsgrad``, ``nesterov``, ``centered``...) are
fixed at construction; writing another value raises :class:`msport.errors.UserError`.
Subclasses give ``TORCH`` (a key of :data:`msport.optim.catalog.OPTIMIZERS`), ``_coefficients``
(per group, once per step) and ``_update`` (per parameter).
"""

import itertools

import numpy as np

from msport._mindspore import ms, nn, ops
from msport.errors import UserError
from msport.optim.catalog import spec_for

F64 = ms.float64


def f32(x):
    return ops.cast(x, ms.float32)


def _scalar_names(key):
    """The Parameters one torch hyperparameter is held in (``betas`` is two)."""
    return ("beta1", "beta2") if key == "betas" else (key,)


class _GroupHyper(nn.Cell):
    """One group's tunable hyperparameters, one float64 scalar Parameter each (``lr``, ``beta1``...)."""

    def __init__(self, index, values, tunable):
        super().__init__(auto_prefix=False)
        for key in tunable:
            parts = values[key] if key == "betas" else (values[key],)
            for name, value in zip(_scalar_names(key), parts):
                setattr(self, name, ms.Parameter(ms.Tensor(float(value), F64), name=f"optim.group{index}.{name}",
                                                 requires_grad=False))


class ParamGroup(dict):
    """A torch-style param group. Writing a tunable key (``lr``, ``betas``, ``momentum``...) updates the
    Parameter the compiled step reads; other keys (``initial_lr``, a scheduler's bookkeeping) are plain."""

    def __init__(self, optimizer, index, values):
        super().__init__(values)
        self._optimizer, self._index = optimizer, index

    def __setitem__(self, key, value):
        spec = self._optimizer.spec
        if key == "params":
            raise UserError("an msport optimizer's parameters are fixed at construction; build a new optimizer")
        if key in spec.tunable:  # as torch, no range check here: a schedule may go below zero
            try:
                value = tuple(float(v) for v in value) if key == "betas" else float(value)
            except (TypeError, ValueError):
                raise UserError(f"param_groups[{self._index}]['{key}'] must be a number, got {value!r}") from None
            self._optimizer._write_hyper(self._index, key, value)
        elif key in spec.structural and value != self.get(key):
            raise UserError(f"param_groups[{self._index}]['{key}'] shapes the compiled step and is fixed at "
                            f"construction ({self.get(key)!r}); build a new optimizer to change it")
        super().__setitem__(key, value)


class TorchOptimizer(nn.Optimizer):
    """Base of msport's torch-semantics optimizers (see the module docstring)."""

    TORCH = None

    def __init__(self, params, **hyper):
        self.spec = spec_for(self.TORCH)
        self.defaults = self.spec.checked(hyper, self.TORCH)
        groups = _groups(params, self.defaults, self.spec)
        flat = [p for g in groups for p in g["params"]]
        super().__init__(0.0, flat, 0.0)
        self.param_groups = [ParamGroup(self, i, g) for i, g in enumerate(groups)]
        bounds = np.cumsum([0] + [len(g["params"]) for g in groups])
        self._members = tuple(tuple(range(int(a), int(b))) for a, b in itertools.pairwise(bounds))
        self.hyper = nn.CellList([_GroupHyper(i, g, self.spec.tunable) for i, g in enumerate(groups)],
                                 auto_prefix=False)
        for name in ("step",) + tuple(n for n in self.spec.group_state if n != "step"):  # SGD counts steps too
            start = 1.0 if name == "mu_product" else 0.0
            setattr(self, name + "s", ms.ParameterTuple(
                ms.Parameter(ms.Tensor(start, F64), name=f"optim.group{i}.{name}", requires_grad=False)
                for i in range(len(groups))))
        for name in self.spec.state:
            flag = self.spec.optional_state.get(name)
            if flag is None or any(g[flag] for g in groups):
                setattr(self, name, self._parameters.clone(prefix=name, init="zeros"))
            else:
                setattr(self, name, None)
        self._flag = {key: tuple(bool(g[key]) for g in groups)
                      for key in self.spec.structural if isinstance(self.defaults[key], bool)}

    # --- the Python face: torch's names --------------------------------------------------------------

    def state_names(self):
        """The per-parameter state tensors this optimizer holds (torch's names)."""
        return [n for n in self.spec.state if getattr(self, n) is not None]

    def _write_hyper(self, index, key, value):
        parts = value if key == "betas" else (value,)
        for name, v in zip(_scalar_names(key), parts):
            ops.assign(getattr(self.hyper[index], name), ms.Tensor(float(v), F64))  # set_data misses a jit graph

    def current(self, key, group=0):
        """A tunable hyperparameter as the compiled step reads it (after ``set_lr`` in a graph, say)."""
        values = [float(getattr(self.hyper[group], n).asnumpy()) for n in _scalar_names(key)]
        return tuple(values) if key == "betas" else values[0]

    def zero_grad(self, set_to_none=True):
        """torch's API; gradients here are the values passed to the call, so there is nothing to clear."""
        del set_to_none

    # --- the compiled step ---------------------------------------------------------------------------

    def set_lr(self, lr):
        """Every group's learning rate from a tensor, inside a compiled step (what a per-step list needs)."""
        done = ()
        for h in self.hyper:
            done = done + (ops.assign(h.lr, ops.cast(lr, F64)),)
        return done

    @ms.jit(backend="ms_backend")  # as mindspore.nn's optimizers: PyNative runs the update as one graph too
    def construct(self, gradients):
        done = ()
        for gi in range(len(self._members)):
            coeffs = self._coefficients(gi, self.hyper[gi])
            for i in self._members[gi]:
                grad = gradients[i]
                if self._flag["maximize"][gi]:
                    grad = -grad
                done = done + (self._update(gi, i, self._parameters[i], grad, coeffs),)
        return done

    def _next_step(self, gi):
        step = self.steps[gi] + 1
        ops.assign(self.steps[gi], step)
        return step

    def _coefficients(self, gi, hyper):
        raise NotImplementedError

    def _update(self, gi, i, param, grad, coeffs):
        raise NotImplementedError


def _groups(params, defaults, spec):
    """torch's param-group rules: a list of Parameters, or of dicts holding ``params`` and overrides."""
    params = list(params)
    if not params:
        raise UserError(f"torch.optim.{spec.torch}: got an empty parameter list")
    if not isinstance(params[0], dict):
        params = [{"params": params}]
    groups, seen = [], set()
    for i, group in enumerate(params):
        if not isinstance(group, dict) or "params" not in group:
            raise UserError(f"param group {i} must be a dict with 'params' (torch's format), got {type(group).__name__}")
        members = group["params"]
        members = [members] if isinstance(members, ms.Parameter) else list(members)
        for p in members:
            if not isinstance(p, ms.Parameter):
                raise UserError(f"param group {i} holds a {type(p).__name__}; pass MindSpore Parameters "
                                f"(net.trainable_params())")
            if id(p) in seen:
                raise UserError(f"parameter {p.name} appears in more than one param group")
            seen.add(id(p))
        known = {k: v for k, v in group.items() if k in defaults}
        values = spec.checked(dict(defaults, **known), f"param group {i}")
        values.update((k, v) for k, v in group.items() if k not in values and k != "params")  # torch keeps extras
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        groups.append(dict(values, params=members))
    return groups
