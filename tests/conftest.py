"""Shared fixtures and metric helpers; the tolerances live in msport/tolerances.py (tests and tools alike)."""

import numpy as np
import pytest

from msport.tolerances import cosine, max_rel, norm_rel as rel_norm  # noqa: F401 (tests import them from here)


def pytest_collection_modifyitems(config, items):
    """The slow tests first, so ``make test``'s two pytest-xdist workers start the longest runs early
    instead of one of them ending the suite alone on a 2-minute test. (A module-scoped fixture is built
    once per worker that runs its tests: the costly ones serve one test each.)"""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)

# Data parallel against one process, for a network without batch statistics, 3 SGD steps: the ranks'
# loss sums and the gradient all-reduce add in another order than one process does (float32).
# Measured (resnet10_w16_nobn, world 2 vs 1, max_rel of the worst parameter): torch 1.3e-7, MindSpore 9e-8.
DATA_PARALLEL_RTOL = 1e-5
