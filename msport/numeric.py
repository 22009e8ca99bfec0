"""One way to turn any framework's tensor into a numpy array (a base module: it imports no framework).

torch tensors, MindSpore tensors and Parameters, and anything array-like all
come through :func:`as_numpy`. numpy has no bfloat16, so a bfloat16 tensor
comes back as float32, which holds every bfloat16 value exactly: a comparison
or a statistic is unchanged, and casting back gives the same bits. Code that
must keep the stored bits (checkpoint files) reads them raw instead
(:mod:`msport.checkpoints`).
"""

import numpy as np


def as_numpy(value):
    """A numpy array from a torch tensor, a MindSpore tensor/Parameter or anything array-like."""
    if hasattr(value, "detach"):  # torch.Tensor
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        return value.numpy()
    if hasattr(value, "asnumpy"):  # mindspore Tensor / Parameter
        if str(value.dtype) == "BFloat16":
            value = value.float()
        return value.asnumpy()
    return np.asarray(value)


def bf16_to_float32(bits):
    """float32 values of bfloat16 stored as raw uint16 bits (exact: bfloat16 is float32's upper half)."""
    bits = np.asarray(bits, dtype=np.uint16)
    # through 1-D: numpy refuses to view a 0-d array (a scalar buffer) as another dtype
    return (bits.reshape(-1).astype(np.uint32) << 16).view(np.float32).reshape(bits.shape)
