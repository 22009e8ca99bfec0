"""MindSpore cells of msport's own, where a MindSpore layer alone cannot compute what torch does.

The registry names them (a build's ``_impl`` key) and :func:`msport.registry.ms_class` finds them
here. This module imports MindSpore and nothing of msport's but the MindSpore import itself, so the
registry, the layer factories and the converters can all reach it without a cycle.
"""

from msport._mindspore import nn, ops


def _cropped_transpose(base, dims):
    """A transposed convolution computed in full ('valid') and cropped as torch crops it: torch's
    ``padding`` removes rows at both ends, ``output_padding`` gives some back at the end."""

    class Cropped(base):
        def __init__(self, *args, crop=(), **kwargs):
            super().__init__(*args, **kwargs)
            self.crop = tuple(crop)  # ((start, end offset) per spatial axis)

        def construct(self, x):
            y = super().construct(x)
            if dims == 1:
                (s0, e0), = self.crop
                return y[:, :, s0:y.shape[2] + e0]
            if dims == 2:
                (s0, e0), (s1, e1) = self.crop
                return y[:, :, s0:y.shape[2] + e0, s1:y.shape[3] + e1]
            (s0, e0), (s1, e1), (s2, e2) = self.crop
            return y[:, :, s0:y.shape[2] + e0, s1:y.shape[3] + e1, s2:y.shape[4] + e2]

    Cropped.__name__ = Cropped.__qualname__ = f"Cropped{base.__name__}"
    return Cropped


class MultiAxisLayerNorm(nn.LayerNorm):
    """LayerNorm over the last ``len(normalized_shape)`` axes, as torch's. MindSpore 2.10's CPU kernels
    normalise over one axis only (the multi-axis LayerNormExt kernel is missing), so the normalised axes
    are flattened into one, normalised, and restored; gamma and beta keep torch's shape."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.last_axis_norm = ops.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=self.epsilon)

    def construct(self, x):
        kept = x.shape[:x.ndim - len(self.normalized_shape)]
        flat = x.reshape(kept + (-1,))
        y, _, _ = self.last_axis_norm(flat, self.gamma.reshape(-1), self.beta.reshape(-1))
        return y.reshape(x.shape)


CroppedConv1dTranspose = _cropped_transpose(nn.Conv1dTranspose, 1)
CroppedConv2dTranspose = _cropped_transpose(nn.Conv2dTranspose, 2)
CroppedConv3dTranspose = _cropped_transpose(nn.Conv3dTranspose, 3)


class KLDivLoss(nn.KLDivLoss):
    """torch's ``KLDivLoss`` with ``log_target``: MindSpore 2.10's takes the target as probabilities only.
    Pointwise ``exp(t) * (t - x)`` for log targets, ``t * (log t - x)`` (0 where t = 0) otherwise."""

    def __init__(self, reduction="mean", log_target=False):
        super().__init__(reduction=reduction)
        self.log_target = log_target
        self.kind = reduction

    def construct(self, logits, labels):
        if self.log_target:
            pointwise = ops.exp(labels) * (labels - logits)
        else:
            pointwise = ops.xlogy(labels, labels) - labels * logits
        if self.kind == "none":
            return pointwise
        if self.kind == "sum":
            return pointwise.sum()
        if self.kind == "batchmean":
            return pointwise.sum() / logits.shape[0]
        return pointwise.mean()
