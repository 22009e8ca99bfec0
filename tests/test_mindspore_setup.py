"""msport's MindSpore CPU setup (msport/_mindspore.py) holds in any import order, and says when it cannot.

Each case is a fresh Python process (oneDNN fixes its ISA once per process), with ONEDNN_VERBOSE=1 so
that the kernel oneDNN ran is read from its own log rather than inferred from a timing. On a host
without AVX-512 there is no slow kernel to avoid, and the cases that need one are skipped.
"""

import json
import os
import subprocess
import sys

import pytest

from msport._mindspore import AVX512_CORE_FLAGS, CAP, cpu_flags

AVX512 = all(flag in (cpu_flags() or ()) for flag in AVX512_CORE_FLAGS)
needs_avx512 = pytest.mark.skipif(not AVX512, reason="no AVX-512 here: oneDNN's default is already fast")

CONV = """
import numpy as np
x = mindspore.Tensor(np.ones((2, 8, 8, 8), np.float32))
mindspore.nn.Conv2d(8, 8, 3, pad_mode="pad", padding=1)(x).asnumpy()
"""


def run(code, **env_vars):
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")}
    env.update(ONEDNN_VERBOSE="1", **env_vars)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def conv_kernels(stdout, framework_marker=None):
    """Implementations of the forward convolutions oneDNN ran, from its verbose lines."""
    lines = stdout.splitlines()
    if framework_marker:
        lines = lines[lines.index(framework_marker) + 1:]
    return [line.split(",")[6] for line in lines
            if line.startswith("onednn_verbose") and ",exec,cpu,convolution," in line and "forward" in line]


@needs_avx512
def test_mindspore_imported_before_msport_still_runs_the_fast_convolution():
    done = run("import mindspore\nfrom msport import environment\nfrom msport._mindspore import ms\n" + CONV +
               "print('@@env ' + __import__('json').dumps(environment.describe()['mindspore_cpu_setup']))")
    kernels = conv_kernels(done.stdout)
    assert kernels and all("gemm:jit" in k for k in kernels), kernels
    recorded = json.loads(done.stdout.split("@@env ", 1)[1].splitlines()[0])
    assert recorded["set_by"] == "msport" and recorded["onednn_max_cpu_isa"] == CAP
    assert "msport:" not in done.stderr


@needs_avx512
def test_msport_first_caps_mindspore_only_torch_in_the_same_process_keeps_avx512():
    done = run("from msport._mindspore import ms as mindspore\nimport torch\n" + CONV +
               "print('@@torch', flush=True)\ntorch.nn.Conv2d(8, 8, 3, padding=1)(torch.ones(2, 8, 8, 8))")
    ms_kernels = conv_kernels(done.stdout.split("@@torch")[0])
    assert ms_kernels and all("gemm:jit" in k for k in ms_kernels), ms_kernels
    torch_kernels = conv_kernels(done.stdout, "@@torch")
    assert torch_kernels and all("avx512" in k for k in torch_kernels), torch_kernels


@needs_avx512
def test_a_convolution_before_msport_is_too_late_and_says_so():
    done = run("import mindspore\n" + CONV + "from msport._mindspore import CPU_SETUP\nprint('@@', CPU_SETUP)")
    assert "MindSpore already ran a oneDNN kernel" in done.stderr
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in done.stderr  # the way out is named
    assert "too late" in done.stdout.split("@@", 1)[1]


@needs_avx512
def test_the_users_own_cap_wins_even_the_slow_one():
    done = run("from msport._mindspore import CPU_SETUP\nimport mindspore\n" + CONV + "print('@@', CPU_SETUP)",
               ONEDNN_MAX_CPU_ISA="AVX512_CORE")
    assert "'set_by': 'user'" in done.stdout.split("@@", 1)[1]
    kernels = conv_kernels(done.stdout)
    assert kernels and all("jit_uni_ncsp" in k for k in kernels), kernels  # oneDNN's own AVX-512 choice
