"""What a run ran on: package versions, CPU, thread counts, OS; written beside every result.

Float32 training is deterministic on one machine (same code, data, seed and
thread counts give the same numbers), but another CPU, thread count or library
version can change the last digits of a sum, and a few such digits change
which validation images a model gets right. A run folder's
``environment.json`` (and reproduce's ``results.json``) say which of these a
result came from, so that a difference between two machines can be traced.

Versions are read from package metadata, never by importing: a torch-only
process must not start MindSpore. Thread counts are read from a framework only
when the process has already imported it.
"""

import importlib.metadata
import json
import os
import platform
import sys
import time

PACKAGES = ("msport", "torch", "mindspore", "numpy", "torchvision", "scikit-learn", "scipy", "matplotlib")
#: Environment variables that change thread counts or kernel choice (the oneDNN caps: see msport/_mindspore.py).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ONEDNN_MAX_CPU_ISA",
                    "DNNL_MAX_CPU_ISA")
ENVIRONMENT_FILE = "environment.json"


def describe():
    """A JSON-ready dict: time, Python, OS, CPU, package versions, thread settings."""
    return {
        "time": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "python": platform.python_version(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable_cpus(),
        "packages": {name: _version(name) for name in PACKAGES},
        "threads": _threads(),
        "environment_variables": {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ},
        "mindspore_cpu_setup": _mindspore_cpu_setup(),
    }


def usable_cpus():
    """The cores this process may run on (its affinity mask: a container's or taskset's share)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def read_records(path):
    """The records of an environment.json msport wrote (a list of :func:`describe` dicts), or None when the
    file is not one: a user's own file of that name is never taken over."""
    try:
        with open(path) as fh:
            records = json.load(fh)
    except (OSError, ValueError):
        return None
    if isinstance(records, list) and all(isinstance(r, dict) and {"time", "packages", "threads"} <= set(r)
                                         for r in records):
        return records
    return None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _mindspore_cpu_setup():
    """The oneDNN cap msport chose for MindSpore in this process (msport/_mindspore.py), if it imported it."""
    setup = sys.modules.get("msport._mindspore")
    return getattr(setup, "CPU_SETUP", None)


def _threads():
    threads = {}
    torch = sys.modules.get("torch")
    if torch is not None:
        threads["torch_intra_op"] = torch.get_num_threads()
        threads["torch_inter_op"] = torch.get_num_interop_threads()
    ms = sys.modules.get("mindspore")
    if ms is not None:
        try:
            threads["mindspore_runtime"] = ms.get_context("runtime_num_threads")
        except (ValueError, RuntimeError):  # a context key another MindSpore version lacks
            pass
    return threads
