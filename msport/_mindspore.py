"""The one place msport imports MindSpore, so its CPU speed fix always applies first.

On AVX-512 CPUs MindSpore 2.x runs NCHW 3x3 convolutions through oneDNN's
reference kernel (``jit_uni_ncsp:conv+ref``): a CIFAR ResNet50 training step
becomes ~30x slower than torch. Capping oneDNN at AVX2 makes it choose the
``gemm:jit`` path. oneDNN reads the variable once, when MindSpore loads it, so
it must be set before the first ``import mindspore``. The same cap slows torch,
which is why it lives here and not in ``msport/__init__.py``: torch-only
processes never import this module. A value the user set is respected.
"""

import os
import sys

ISA_CAP_VAR = "ONEDNN_MAX_CPU_ISA"

if "mindspore" not in sys.modules:
    os.environ.setdefault(ISA_CAP_VAR, "AVX2")

import mindspore as ms  # noqa: E402
from mindspore import nn, ops  # noqa: E402

__all__ = ["ms", "nn", "ops", "ISA_CAP_VAR"]
