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
