"""torch.optim's update rules on MindSpore: each class computes what torch's ``step()`` computes.

The formulas follow torch's single-tensor implementations (the ones torch runs on the CPU).
Where a MindSpore fused kernel computes the same update after a change of variables, it is used,
because one kernel per parameter is what makes ``nn.Adam`` fast:

* Adam/AdamW: torch's step is ``lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)`` with
  ``bc = 1 - beta^t``, which equals ``lr_t * m / (sqrt(v) + eps_t)`` with
  ``lr_t = lr sqrt(bc2) / bc1`` and ``eps_t = eps sqrt(bc2)``: the fused ``Adam`` kernel given
  beta powers of 0 (no bias correction of its own) computes exactly that. AdamW's decoupled decay,
  torch's ``param *= 1 - lr * wd`` before the step, is ``ApplyGradientDescent(param, lr * wd, param)``
  in place. Measured here (resnet18's 11.2M parameters, GRAPH_MODE, load 10): that pair takes 98 ms a
  step, the fused ``AdamWeightDecay`` kernel (decay inside the update) 269 ms, ``Adam`` alone 72 ms.
* SGD: ``ApplyMomentum`` is torch's momentum buffer (it starts at zero, so the first step's
  buffer is the gradient, as torch's is).

The rest (amsgrad, RMSprop, Adagrad, Adamax, NAdam, RAdam) are element-wise MindSpore ops in
torch's order. The scalars are computed in float64 (see :mod:`msport.optim.base`).
"""

import mindspore.ops.operations as P

from msport._mindspore import ops
from msport.errors import UserError
from msport.optim.base import F64, TorchOptimizer, f32


def _lerp(param, target, weight):
    """torch's ``param.lerp_(target, weight)``."""
    return ops.assign(param, param + (target - param) * weight)


def _decayed_grad(grad, param, weight_decay):
    """L2 decay added to the gradient (torch's coupled ``weight_decay``)."""
    return grad + param * weight_decay


class SGD(TorchOptimizer):
    """torch.optim.SGD (momentum, dampening, nesterov, weight_decay, maximize)."""

    TORCH = "SGD"

    def __init__(self, params, **hyper):
        super().__init__(params, **hyper)
        for g in self.param_groups:
            if g["nesterov"] and (g["momentum"] <= 0 or g["dampening"] != 0):
                raise UserError("SGD nesterov needs a momentum above 0 and dampening 0 (as torch requires)")
        self._dampened = tuple(g["dampening"] != 0 for g in self.param_groups)
        self._dampening = tuple(float(g["dampening"]) for g in self.param_groups)
        self._momentum = P.ApplyMomentum()

    def _coefficients(self, gi, h):
        step = self._next_step(gi)
        scale = 1.0
        if self._dampened[gi]:  # torch's buffer starts as the plain gradient; later gradients are dampened
            plain = ops.logical_or(step == 1.0, h.momentum == 0.0)
            scale = f32(ops.select(plain, ops.ones((), F64), 1.0 - ops.fill(F64, (), self._dampening[gi])))
        return f32(h.lr), f32(h.momentum), f32(h.weight_decay), scale

    def _update(self, gi, i, param, grad, c):
        lr, momentum, wd, scale = c
        grad = _decayed_grad(grad, param, wd)
        if self._flag["nesterov"][gi]:  # ApplyMomentum(use_nesterov=True) on the CPU ignores nesterov (measured)
            buf = ops.assign(self.momentum_buffer[i], self.momentum_buffer[i] * momentum + grad)
            return ops.assign(param, param - (grad + buf * momentum) * lr)
        return self._momentum(param, self.momentum_buffer[i], lr, grad * scale, momentum)


class _AdamFamily(TorchOptimizer):
    """Adam and AdamW share the moments; they differ in where weight decay enters."""

    DECOUPLED = False

    def __init__(self, params, **hyper):
        super().__init__(params, **hyper)
        self._shrink = P.ApplyGradientDescent()
        self._fused = P.Adam()

    def _coefficients(self, gi, h):
        step = self._next_step(gi)
        bc1 = 1.0 - ops.pow(h.beta1, step)
        root_bc2 = ops.sqrt(1.0 - ops.pow(h.beta2, step))
        return (f32(h.lr * root_bc2 / bc1), f32(h.eps * root_bc2), f32(h.beta1), f32(h.beta2),
                f32(h.lr * h.weight_decay), f32(h.weight_decay), f32(1.0 - h.lr * h.weight_decay),
                f32(h.lr / bc1), f32(root_bc2), f32(h.eps))

    def _update(self, gi, i, param, grad, c):
        lr_t, eps_t, beta1, beta2, lr_wd, wd, shrink, step_size, root_bc2, eps = c
        m, v = self.exp_avg[i], self.exp_avg_sq[i]
        if self._flag["amsgrad"][gi]:
            if self.DECOUPLED:
                ops.assign(param, param * shrink)
            else:
                grad = _decayed_grad(grad, param, wd)
            m = _lerp(m, grad, 1.0 - beta1)
            v = ops.assign(v, v * beta2 + grad * grad * (1.0 - beta2))
            v_max = ops.assign(self.max_exp_avg_sq[i], ops.maximum(self.max_exp_avg_sq[i], v))
            return ops.assign(param, param - m / (ops.sqrt(v_max) / root_bc2 + eps) * step_size)
        zero = ops.zeros((), param.dtype)
        if self.DECOUPLED:  # torch shrinks the weights first, then takes the Adam step from the shrunk ones
            grad = ops.depend(grad, self._shrink(param, lr_wd, param))
        else:
            grad = _decayed_grad(grad, param, wd)
        return self._fused(param, m, v, zero, zero, lr_t, beta1, beta2, eps_t, grad)


class Adam(_AdamFamily):
    """torch.optim.Adam (betas, eps, weight_decay as L2 on the gradient, amsgrad, maximize)."""

    TORCH = "Adam"


class AdamW(_AdamFamily):
    """torch.optim.AdamW: Adam with bias correction and decoupled weight decay (default 0.01)."""

    TORCH = "AdamW"
    DECOUPLED = True


class RMSprop(TorchOptimizer):
    """torch.optim.RMSprop (alpha, eps outside the root, momentum, centered, weight_decay)."""

    TORCH = "RMSprop"

    def _coefficients(self, gi, h):
        self._next_step(gi)
        return f32(h.lr), f32(h.alpha), f32(h.eps), f32(h.weight_decay), f32(h.momentum)

    def _update(self, gi, i, param, grad, c):
        lr, alpha, eps, wd, momentum = c
        grad = _decayed_grad(grad, param, wd)
        square_avg = ops.assign(self.square_avg[i], self.square_avg[i] * alpha + grad * grad * (1.0 - alpha))
        if self._flag["centered"][gi]:
            grad_avg = _lerp(self.grad_avg[i], grad, 1.0 - alpha)
            avg = ops.sqrt(square_avg - grad_avg * grad_avg) + eps
        else:
            avg = ops.sqrt(square_avg) + eps
        # torch keeps no buffer at momentum 0; buf = 0 * buf + g / avg is the same step
        buf = ops.assign(self.momentum_buffer[i], self.momentum_buffer[i] * momentum + grad / avg)
        return ops.assign(param, param - buf * lr)


class Adagrad(TorchOptimizer):
    """torch.optim.Adagrad (lr_decay, weight_decay, initial_accumulator_value, eps)."""

    TORCH = "Adagrad"

    def __init__(self, params, **hyper):
        super().__init__(params, **hyper)
        for members, group in zip(self._members, self.param_groups):
            for i in members:
                self.sum[i].set_data(ops.fill(self.sum[i].dtype, self.sum[i].shape,
                                              float(group["initial_accumulator_value"])))

    def _coefficients(self, gi, h):
        step = self._next_step(gi)
        return f32(h.lr / (1.0 + (step - 1.0) * h.lr_decay)), f32(h.eps), f32(h.weight_decay)

    def _update(self, gi, i, param, grad, c):
        clr, eps, wd = c
        grad = _decayed_grad(grad, param, wd)
        total = ops.assign(self.sum[i], self.sum[i] + grad * grad)
        return ops.assign(param, param - grad / (ops.sqrt(total) + eps) * clr)


class Adamax(TorchOptimizer):
    """torch.optim.Adamax (betas, eps, weight_decay)."""

    TORCH = "Adamax"

    def _coefficients(self, gi, h):
        step = self._next_step(gi)
        return f32(h.lr / (1.0 - ops.pow(h.beta1, step))), f32(h.beta1), f32(h.beta2), f32(h.eps), f32(h.weight_decay)

    def _update(self, gi, i, param, grad, c):
        clr, beta1, beta2, eps, wd = c
        grad = _decayed_grad(grad, param, wd)
        m = _lerp(self.exp_avg[i], grad, 1.0 - beta1)
        norm = ops.assign(self.exp_inf[i], ops.maximum(self.exp_inf[i] * beta2, ops.abs(grad) + eps))
        return ops.assign(param, param - m / norm * clr)


class _DecoupledAdam(TorchOptimizer):
    """NAdam's and RAdam's shared start of a step: decoupled decay or L2 by the group's flag, then both moments."""

    def _decay_and_moments(self, gi, i, param, grad, beta1, beta2, wd, shrink):
        if self._flag["decoupled_weight_decay"][gi]:
            ops.assign(param, param * shrink)
        else:
            grad = _decayed_grad(grad, param, wd)
        m = _lerp(self.exp_avg[i], grad, 1.0 - beta1)
        v = ops.assign(self.exp_avg_sq[i], self.exp_avg_sq[i] * beta2 + grad * grad * (1.0 - beta2))
        return grad, m, v


class NAdam(_DecoupledAdam):
    """torch.optim.NAdam (momentum_decay, decoupled_weight_decay)."""

    TORCH = "NAdam"

    def _coefficients(self, gi, h):
        step = self._next_step(gi)
        mu = h.beta1 * (1.0 - 0.5 * ops.pow(ops.fill(F64, (), 0.96), step * h.momentum_decay))
        mu_next = h.beta1 * (1.0 - 0.5 * ops.pow(ops.fill(F64, (), 0.96), (step + 1.0) * h.momentum_decay))
        product = self.mu_products[gi] * mu
        ops.assign(self.mu_products[gi], product)
        return (f32(1.0 - ops.pow(h.beta2, step)), f32(h.beta1), f32(h.beta2), f32(h.eps), f32(h.weight_decay),
                f32(1.0 - h.lr * h.weight_decay), f32(-h.lr * (1.0 - mu) / (1.0 - product)),
                f32(-h.lr * mu_next / (1.0 - product * mu_next)))

    def _update(self, gi, i, param, grad, c):
        bc2, beta1, beta2, eps, wd, shrink, grad_coef, avg_coef = c
        grad, m, v = self._decay_and_moments(gi, i, param, grad, beta1, beta2, wd, shrink)
        denom = ops.sqrt(v / bc2) + eps
        return ops.assign(param, param + grad / denom * grad_coef + m / denom * avg_coef)


class RAdam(_DecoupledAdam):
    """torch.optim.RAdam (rectified Adam; decoupled_weight_decay)."""

    TORCH = "RAdam"

    def _coefficients(self, gi, h):
        step = self._next_step(gi)
        bc1 = 1.0 - ops.pow(h.beta1, step)
        bc2 = 1.0 - ops.pow(h.beta2, step)
        rho_inf = 2.0 / (1.0 - h.beta2) - 1.0
        rho_t = rho_inf - 2.0 * step * ops.pow(h.beta2, step) / bc2
        rectified = rho_t > 5.0
        safe_rho = ops.select(rectified, rho_t, ops.fill(F64, (), 6.0))
        rect = ops.sqrt((safe_rho - 4.0) * (safe_rho - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * safe_rho))
        on = ops.cast(rectified, F64)
        return (f32(h.lr / bc1), f32(rect * ops.sqrt(bc2) * on), f32(1.0 - on), f32(h.beta1), f32(h.beta2),
                f32(h.eps), f32(h.weight_decay), f32(1.0 - h.lr * h.weight_decay))

    def _update(self, gi, i, param, grad, c):
        step_size, rect_root, plain, beta1, beta2, eps, wd, shrink = c
        grad, m, v = self._decay_and_moments(gi, i, param, grad, beta1, beta2, wd, shrink)
        # rho_t > 5: lr * m/bc1 * rect * sqrt(bc2) / (sqrt(v) + eps); else lr * m/bc1
        factor = rect_root / (ops.sqrt(v) + eps) + plain
        return ops.assign(param, param - m * factor * step_size)
