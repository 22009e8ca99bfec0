"""Seed statistics: mean and spread per arm, and the difference between two arms with a 95% CI.

Two intervals: Welch's, for arms whose runs are independent draws, and the paired t interval, for an arm
whose every run started from another arm's run of the same seed (the same initial weights), where the
per-seed differences are what varies.

The interval is Welch's t interval: it does not assume the two arms have the
same seed-to-seed spread (a badly initialised arm may well be noisier), and
its degrees of freedom come from the Welch-Satterthwaite formula. Quantiles are
``scipy.stats.t``'s. With one run in an arm there is no spread to estimate, so
the interval is undefined: every function here says so with ``None`` rather
than inventing a number.

scipy is imported where it is used: it ships with msport's ``report`` extra,
and the rest of ``msport`` runs without it.
"""

import math
from dataclasses import dataclass
from typing import Optional, Sequence

from msport.errors import UserError

CONFIDENCE = 0.95
#: The power a seeds-needed estimate plans for: the chance that the CI excludes 0 if the
#: true gap and spread are the ones observed (a CI that just excludes 0 at the observed
#: gap would do so only half the time in a repeat).
PLANNING_POWER = 0.8
#: Seeds per arm beyond which the estimate is reported as "more than".
MAX_SEEDS_ESTIMATED = 1000


@dataclass(frozen=True)
class Summary:
    """One arm's values over seeds. ``std`` is the sample standard deviation (n - 1), None for n = 1."""

    values: tuple
    mean: float
    std: Optional[float]

    @property
    def n(self):
        return len(self.values)


class _Interval:
    """What a difference with a confidence interval (``ci_low``, ``ci_high``; None without one) says."""

    @property
    def has_ci(self):
        return self.ci_low is not None

    @property
    def resolved(self):
        """True when the CI excludes 0, False when it includes 0, None without a CI."""
        if not self.has_ci:
            return None
        return self.ci_low > 0 or self.ci_high < 0


@dataclass(frozen=True)
class Difference(_Interval):
    """``mean(a) - mean(b)`` with Welch's 95% CI; the CI fields are None when an arm has one run."""

    difference: float
    ci_low: Optional[float]
    ci_high: Optional[float]
    df: Optional[float]
    n_a: int
    n_b: int
    pooled_std: Optional[float]


def summarize(values: Sequence[float]) -> Summary:
    values = tuple(float(v) for v in values)
    if not values:
        raise ValueError("summarize needs at least one value")
    mean = math.fsum(values) / len(values)
    std = math.sqrt(_sample_variance(values, mean)) if len(values) >= 2 else None
    return Summary(values, mean, std)


def welch_difference(a: Sequence[float], b: Sequence[float], confidence=CONFIDENCE) -> Difference:
    """Difference of means of ``a`` and ``b`` and its Welch t interval."""
    sa, sb = summarize(a), summarize(b)
    difference = sa.mean - sb.mean
    if sa.n < 2 or sb.n < 2:
        return Difference(difference, None, None, None, sa.n, sb.n, None)
    se_a2, se_b2 = sa.std ** 2 / sa.n, sb.std ** 2 / sb.n
    se = math.sqrt(se_a2 + se_b2)
    pooled = math.sqrt(((sa.n - 1) * sa.std ** 2 + (sb.n - 1) * sb.std ** 2) / (sa.n + sb.n - 2))
    if se == 0:
        # Every seed gave the same number on both sides: no spread, so the interval is the point.
        return Difference(difference, difference, difference, None, sa.n, sb.n, pooled)
    df = (se_a2 + se_b2) ** 2 / (se_a2 ** 2 / (sa.n - 1) + se_b2 ** 2 / (sb.n - 1))
    half_width = _t_quantile(0.5 + confidence / 2, df) * se
    return Difference(difference, difference - half_width, difference + half_width, df, sa.n, sb.n, pooled)


@dataclass(frozen=True)
class PairedDifference(_Interval):
    """Per-seed differences ``a[seed] - b[seed]`` of two arms run from the same initial weights, their mean,
    sample std and t interval (n - 1 degrees of freedom); the CI fields are None below two pairs."""

    seeds: tuple
    differences: tuple
    mean: float
    std: Optional[float]
    ci_low: Optional[float]
    ci_high: Optional[float]
    df: Optional[int]

    @property
    def n(self):
        return len(self.seeds)


def paired_difference(a, b, confidence=CONFIDENCE) -> PairedDifference:
    """``a`` and ``b`` map seed -> value; the seeds both hold are paired.

    Each pair shares its initial weights, batches and seed, so what the draw adds to both cancels in
    the difference: its spread is the frameworks' own, often far below either arm's spread over seeds,
    and the interval narrows accordingly. With one pair there is no interval; with differences all
    equal the interval is that point.
    """
    seeds = tuple(sorted(set(a) & set(b)))
    if not seeds:
        raise ValueError("paired_difference needs at least one seed in both arms")
    differences = tuple(float(a[s]) - float(b[s]) for s in seeds)
    s = summarize(differences)
    if s.n < 2:
        return PairedDifference(seeds, differences, s.mean, None, None, None, None)
    if s.std == 0:
        return PairedDifference(seeds, differences, s.mean, 0.0, s.mean, s.mean, s.n - 1)
    half_width = _t_quantile(0.5 + confidence / 2, s.n - 1) * s.std / math.sqrt(s.n)
    return PairedDifference(seeds, differences, s.mean, s.std, s.mean - half_width, s.mean + half_width, s.n - 1)


def paired_seeds_needed(gap, std, confidence=CONFIDENCE, power=PLANNING_POWER):
    """Seeds (pairs) for a paired CI of a true ``gap`` to exclude 0 with ``power``, at per-pair spread ``std``:
    the smallest n >= 2 with ``(t_{1-alpha/2} + t_{power}) * std / sqrt(n) <= |gap|`` at n - 1 degrees of
    freedom; None without a gap or a spread, ``MAX_SEEDS_ESTIMATED + 1`` beyond the cap."""
    if gap == 0 or not std:
        return None
    for n in range(2, MAX_SEEDS_ESTIMATED + 1):
        margin = (_t_quantile(0.5 + confidence / 2, n - 1) + _t_quantile(power, n - 1)) * std / math.sqrt(n)
        if margin <= abs(gap):
            return n
    return MAX_SEEDS_ESTIMATED + 1


def seeds_needed(gap, std, confidence=CONFIDENCE, power=PLANNING_POWER):
    """Seeds per arm (equal arms) for the CI of a true ``gap`` to exclude 0 with ``power``, at spread ``std``.

    The classic two-sample planning formula with t quantiles:
    ``(t_{1-alpha/2} + t_{power}) * std * sqrt(2 / n) <= |gap|``, smallest such n >= 2.
    Returns None when there is no gap to resolve, and ``MAX_SEEDS_ESTIMATED + 1``
    when even that many would not do.
    """
    if gap == 0 or std is None:
        return None
    for n in range(2, MAX_SEEDS_ESTIMATED + 1):
        df = 2 * n - 2
        margin = (_t_quantile(0.5 + confidence / 2, df) + _t_quantile(power, df)) * std * math.sqrt(2 / n)
        if margin <= abs(gap):
            return n
    return MAX_SEEDS_ESTIMATED + 1


def _sample_variance(values, mean):
    return math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)


def _t_quantile(q, df):
    try:
        from scipy.stats import t
    except ImportError:
        raise UserError("msport reproduce's confidence intervals need scipy: pip install 'msport[report]'") from None
    return float(t.ppf(q, df))
