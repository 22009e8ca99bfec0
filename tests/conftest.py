"""Shared fixtures and metric helpers; the tolerances live in msport/tolerances.py (tests and tools alike)."""

import numpy as np
import pytest

from msport.tolerances import cosine, max_rel, norm_rel as rel_norm  # noqa: F401 (tests import them from here)


def pytest_collection_modifyitems(config, items):
    """Order and group the tests for ``make test``'s two pytest-xdist workers (``--dist loadgroup``).

    The slow tests go first, so the two workers start the longest runs early instead of one of them
    ending the suite alone on a 2-minute test. Tests that share a module-scoped fixture (trained runs,
    a port, written files) form one group, which runs on one worker, so the fixture is built once.
    """
    for item in items:
        fixtures = getattr(item, "_fixtureinfo", None)
        if fixtures and any(defs[-1].scope == "module" for defs in fixtures.name2fixturedefs.values()):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)

# Data parallel against one process, for a network without batch statistics, 3 SGD steps: the ranks'
# loss sums and the gradient all-reduce add in another order than one process does (float32).
# Measured (resnet10_w16_nobn, world 2 vs 1, max_rel of the worst parameter): torch 1.3e-7, MindSpore 9e-8.
DATA_PARALLEL_RTOL = 1e-5
