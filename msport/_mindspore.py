"""The one place msport imports MindSpore, and where it sets MindSpore's CPU kernels up for this host.

Why a setup at all: on a CPU with AVX-512 (oneDNN's ``avx512_core`` level and
up), MindSpore 2.10's bundled oneDNN 3.10 runs every convolution but the
unstrided 1x1s (forward and backward-data) through ``jit_uni_ncsp:conv+ref``. MindSpore
hands oneDNN plain NCHW/OIHW tensors; oneDNN's NCHW wrapper reorders the
activations to NHWC and nests a convolution that keeps the plain weights,
which only the reference kernel accepts: 25-100x slower than torch. Capped at
AVX2, oneDNN has no such wrapper and picks ``x64:gemm:jit`` (im2col + sgemm).
MindSpore's CPU convolution takes NCHW only, so no layout avoids the wrapper;
docs/performance.md has the measured alternatives and what the cap still costs.

How: the cap is set through MindSpore's own ``lib/libdnnl.so*`` with
``dnnl_set_max_cpu_isa`` (ctypes), not through ``ONEDNN_MAX_CPU_ISA``, because
that way it
- works in any import order, until MindSpore's first oneDNN kernel (any
  convolution, BatchNorm, Dense, ...) fixes the ISA for the process: after
  that the call fails and a warning says the process runs the slow kernels;
- leaves torch's own oneDNN at AVX-512, in this process and in child
  processes: the same cap slows torch's convolutions;
- applies in every MindSpore process msport starts, since each imports this.
The user's ``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_MAX_CPU_ISA``) wins: msport then
does nothing (``ONEDNN_MAX_CPU_ISA=ALL`` gives MindSpore's out-of-the-box
kernels). :data:`CPU_SETUP` records what was done; ``environment.json`` carries it.
"""

import ctypes
import glob
import os
import platform
import warnings

import mindspore as ms
from mindspore import nn, ops

ISA_CAP_VAR = "ONEDNN_MAX_CPU_ISA"
_USER_VARS = (ISA_CAP_VAR, "DNNL_MAX_CPU_ISA")  # oneDNN reads both; either is the user's choice
#: The cap msport applies on AVX-512 hosts, and its ``dnnl_cpu_isa_t`` value (0x7 in oneDNN 2 and 3's
#: include/oneapi/dnnl/dnnl_types.h). AVX2 is the highest level without the NCHW wrapper; AVX2_VNNI(_2)
#: add only int8/bf16 instructions, which a float32 step does not use (measured equal: docs/performance.md).
CAP = "AVX2"
_CAP_CODE = 0x7
#: /proc/cpuinfo flags of oneDNN's avx512_core level, the first with the slow NCHW convolution.
AVX512_CORE_FLAGS = ("avx512f", "avx512bw", "avx512vl", "avx512dq")


def cpu_flags():
    """The host's CPU flags (Linux), or None where /proc/cpuinfo says nothing."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def _needs_cap(flags):
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    return flags is None or all(f in flags for f in AVX512_CORE_FLAGS)  # unknown: cap (it never raises the ISA)


def _dnnl_library():
    """MindSpore's own oneDNN (the handle already loaded when MindSpore loaded it), or why not."""
    paths = sorted(glob.glob(os.path.join(os.path.dirname(ms.__file__), "lib", "libdnnl.so*")))
    if not paths:
        return None, "no lib/libdnnl.so* in the MindSpore package"
    try:
        lib = ctypes.CDLL(paths[0])
        lib.dnnl_set_max_cpu_isa, lib.dnnl_get_effective_cpu_isa  # noqa: B018 (both must exist)
    except (OSError, AttributeError) as exc:
        return None, str(exc)
    return lib, None


def _too_late_warning():
    return (f"msport: MindSpore already ran a oneDNN kernel in this process before msport was imported, so "
            f"oneDNN keeps its AVX-512 kernels and MindSpore's convolutions run on the reference path on this "
            f"CPU (tens of times slower). Import msport before running anything in MindSpore, or start Python "
            f"with {ISA_CAP_VAR}={CAP} (docs/performance.md).")


def setup_cpu():
    """Cap MindSpore's oneDNN at :data:`CAP` on AVX-512 hosts unless the user chose; return what was done."""
    user = {name: os.environ[name] for name in _USER_VARS if name in os.environ}
    if user:
        return {"onednn_max_cpu_isa": next(iter(user.values())), "set_by": "user", "variables": user}
    flags = cpu_flags()
    if not _needs_cap(flags):
        return {"onednn_max_cpu_isa": None, "set_by": "oneDNN default",
                "reason": "no AVX-512 on this host: oneDNN's default has no slow NCHW convolution"}
    lib, missing = _dnnl_library()
    if lib is None:
        return {"onednn_max_cpu_isa": None, "set_by": "oneDNN default", "reason": f"cannot cap: {missing}"}
    status = lib.dnnl_set_max_cpu_isa(_CAP_CODE)
    effective = lib.dnnl_get_effective_cpu_isa()
    record = {"onednn_max_cpu_isa": CAP, "set_by": "msport", "effective_isa_code": hex(effective),
              "reason": "AVX-512 host" if flags else "CPU flags unknown: capped (it never raises the ISA)"}
    if status != 0 or effective != _CAP_CODE:
        warnings.warn(_too_late_warning(), RuntimeWarning, stacklevel=3)
        record.update(onednn_max_cpu_isa=None, set_by="oneDNN default", reason="too late: a oneDNN kernel ran "
                      "before msport was imported")
    return record


#: What :func:`setup_cpu` did in this process (read by msport.environment for environment.json).
CPU_SETUP = setup_cpu()

__all__ = ["CAP", "CPU_SETUP", "ISA_CAP_VAR", "ms", "nn", "ops"]
