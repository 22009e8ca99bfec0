"""Shared fixtures and metric helpers; the tolerances live in msport/tolerances.py (tests and tools alike)."""

import numpy as np
import pytest


def max_rel(a, b):
    """max |a - b| / max |a|: one number per tensor that is scale-free."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))


def rel_norm(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-30))


def cosine(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)

# Data parallel against one process, for a network without batch statistics, 3 SGD steps: the ranks'
# loss sums and the gradient all-reduce add in another order than one process does (float32).
# Measured (resnet10_w16_nobn, world 2 vs 1, max_rel of the worst parameter): torch 1.3e-7, MindSpore 9e-8.
DATA_PARALLEL_RTOL = 1e-5
