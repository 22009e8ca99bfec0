"""Figures that compare two tensors; the thresholds they are judged by live in :mod:`msport.tolerances`.

All figures are computed in float64 whatever the input dtype, so a sum over a
25-million-element ResNet50 layer does not lose the digits that tell "equal"
from "almost equal". Everything is vectorised numpy; no framework is imported.

The relative difference is norm-based, ``||a - b|| / ||a||`` with ``a`` the
reference (torch, or the first checkpoint). Max-abs relative errors are
misleading for gradients: in train mode one ReLU whose input is ``-1.5e-6`` on
one side and ``+1e-7`` on the other passes a gradient on one side only, and
that single element dominates an element-wise ratio while the tensor as a
whole agrees to 0.4% (measured on the zoo's ResNet18 at batch 4).
"""

import numpy as np

from msport.tolerances import INIT_KS_MAX_SAMPLES, MAGNITUDE_RATIO_RANGE

# --- figures ------------------------------------------------------------------------------

def summarize(x):
    """mean, mean|x|, std, min, max and L2 norm of one tensor (float64)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return {"mean": 0.0, "mean_abs": 0.0, "std": 0.0, "min": 0.0, "max": 0.0, "norm": 0.0}
    return {
        "mean": float(x.mean()),
        "mean_abs": float(np.abs(x).mean()),
        "std": float(x.std()),
        "min": float(x.min()),
        "max": float(x.max()),
        "norm": float(np.sqrt(np.dot(x, x))),
    }


def compare(a, b, sides=("a", "b")):
    """Difference figures of ``b`` against the reference ``a`` (same shape), as one flat dict.

    Keys: ``max_abs_diff``, ``mean_abs_diff``, ``rel_diff`` (``||a-b||/||a||``),
    ``cosine``, ``magnitude_ratio`` (mean|b| / mean|a|), and for each side
    ``<side>_mean``, ``_mean_abs``, ``_std``, ``_min``, ``_max``.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"compare needs equal sizes, got {a.size} and {b.size}")
    stats_a, stats_b = summarize(a), summarize(b)
    diff = np.abs(a - b) if a.size else np.zeros(1)
    diff_norm = float(np.sqrt(np.dot(diff, diff)))
    figures = {
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()) if a.size else 0.0,
        "rel_diff": _ratio(diff_norm, stats_a["norm"]),
        "cosine": _cosine(a, b, stats_a["norm"], stats_b["norm"]),
        "magnitude_ratio": _ratio(stats_b["mean_abs"], stats_a["mean_abs"], equal=1.0),
    }
    for side, stats in zip(sides, (stats_a, stats_b)):
        for key in ("mean", "mean_abs", "std", "min", "max"):
            figures[f"{side}_{key}"] = stats[key]
    return figures


def _ratio(num, den, equal=0.0):
    """num/den; ``equal`` when both are zero and inf when only ``den`` is."""
    if den == 0.0:
        return equal if num == 0.0 else float("inf")
    return num / den


def _cosine(a, b, norm_a, norm_b):
    if norm_a == 0.0 and norm_b == 0.0:
        return 1.0
    if norm_a == 0.0 or norm_b == 0.0:
        return 0.0
    return float(np.dot(a, b) / (norm_a * norm_b))


# --- Kolmogorov-Smirnov tests (numpy only: scipy is not a runtime dependency) --------------

def ks_uniform(x, bound):
    """``(D, p)`` of the one-sample KS test of ``x`` against U(-bound, bound)."""
    x = np.sort(_ks_sample(x))
    n = x.size
    cdf = np.clip((x + bound) / (2.0 * bound), 0.0, 1.0)
    steps = np.arange(1, n + 1, dtype=np.float64) / n
    d = float(max(np.max(steps - cdf), np.max(cdf - (steps - 1.0 / n))))
    return d, kolmogorov_p(d, n)


def ks_normal(x, sigma):
    """``(D, p)`` of the one-sample KS test of ``x`` against N(0, sigma^2)."""
    from math import erf, sqrt

    x = np.sort(_ks_sample(x))
    n = x.size
    cdf = 0.5 * (1.0 + np.vectorize(erf)(x / (sigma * sqrt(2.0))))
    steps = np.arange(1, n + 1, dtype=np.float64) / n
    d = float(max(np.max(steps - cdf), np.max(cdf - (steps - 1.0 / n))))
    return d, kolmogorov_p(d, n)


def ks_two_sample(a, b):
    """``(D, p)`` of the two-sample KS test: could ``a`` and ``b`` come from one distribution?"""
    a, b = np.sort(_ks_sample(a)), np.sort(_ks_sample(b))
    values = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, values, side="right") / a.size
    cdf_b = np.searchsorted(b, values, side="right") / b.size
    d = float(np.max(np.abs(cdf_a - cdf_b)))
    return d, kolmogorov_p(d, a.size * b.size / (a.size + b.size))


def kolmogorov_p(d, n):
    """Asymptotic p-value of a KS statistic ``d`` at (effective) sample size ``n``.

    Uses Stephens' small-sample correction of the Kolmogorov distribution,
    ``lambda = (sqrt(n) + 0.12 + 0.11/sqrt(n)) * d``; accurate to a few percent
    for n >= 5, which is all a pass/fail threshold of 1e-6 needs.
    """
    if n <= 0 or d <= 0.0:
        return 1.0
    root = np.sqrt(n)
    lam = (root + 0.12 + 0.11 / root) * d
    k = np.arange(1, 101, dtype=np.float64)
    p = 2.0 * np.sum((-1.0) ** (k - 1) * np.exp(-2.0 * k * k * lam * lam))
    return float(min(max(p, 0.0), 1.0))


def _ks_sample(x):
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x.size > INIT_KS_MAX_SAMPLES:
        x = np.random.default_rng(0).choice(x, INIT_KS_MAX_SAMPLES, replace=False)
    return x


def within_magnitude_range(ratio, bounds=MAGNITUDE_RATIO_RANGE):
    low, high = bounds
    return low <= ratio <= high


__all__ = ["summarize", "compare", "ks_normal", "ks_uniform", "ks_two_sample", "kolmogorov_p",
           "within_magnitude_range"]
