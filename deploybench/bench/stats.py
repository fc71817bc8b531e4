"""Latency statistics and the stop rule (pure numpy; no runtime dependencies).

Percentiles use numpy's default linear interpolation between order statistics (Hyndman & Fan type 7,
the same as `numpy.percentile` / `pandas.quantile`). The 95 % confidence interval of the median is
distribution-free: for n samples the number below the true median is Binomial(n, 1/2), so the order
statistics X_(l) and X_(n-l+1) with the largest l such that P(B <= l-1) <= 2.5 % cover the true median with
probability >= 95 % for any continuous distribution (exact binomial tail, computed in log space). For n < 6
no such pair exists and the interval is [min, max] (coverage below 95 %).

That interval assumes independent samples, and on a shared machine they are not: the speed of the whole machine
drifts on a scale of seconds to minutes (seen on the 2-core build VM: one bare loop's 2-s medians moving 6.5-10 ms
within 90 s, while each 1-s run reported +-1 %). So a configuration is measured in several executions spread
over the bench (`pool`), and the CI of the pooled p50 is the wider of the binomial interval and a Student-t
interval over the executions' medians (Kalibera & Jones, "Rigorous benchmarking in reasonable time", 2013: when
the variance between executions dominates, repeat executions, not iterations).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np

PERCENTILES = (50, 90, 95, 99)
# two-sided 95 % Student-t quantiles t(0.975, df) for df = 1..30; larger df use 1.96
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


@lru_cache(maxsize=4096)
def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int]:
    """0-based ranks (lo, hi) into the sorted sample bounding the median with >= `confidence` coverage."""
    if n < 1:
        raise ValueError("median_ci_ranks needs n >= 1")
    x = np.arange(n + 1)
    # log C(n, x) via cumulative sums of log((n - i + 1) / i); pmf = C(n, x) / 2^n
    steps = np.log((n - x[1:] + 1) / x[1:])
    logpmf = np.concatenate(([0.0], np.cumsum(steps))) - n * math.log(2.0)
    cdf = np.cumsum(np.exp(logpmf))
    alpha = (1.0 - confidence) / 2.0
    # coverage of [X_(l), X_(n-l+1)] (1-based) is 1 - 2 * P(B <= l - 1); l - 1 = k below
    ok = np.nonzero(cdf[: (n + 1) // 2] <= alpha)[0]
    if ok.size == 0:
        return 0, n - 1
    l1 = int(ok[-1]) + 1          # 1-based rank of the lower bound
    return l1 - 1, n - l1          # 0-based lo; hi = n - l1 + 1 (1-based) -> n - l1


def median_ci(samples, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the median from binomial order statistics."""
    s = np.sort(np.asarray(samples, dtype=np.float64))
    lo, hi = median_ci_ranks(len(s), confidence)
    return float(s[lo]), float(s[hi])


@dataclass
class Summary:
    count: int
    mean: float
    std: float            # sample standard deviation (ddof=1; 0 for one sample)
    min: float
    max: float
    p50: float
    p90: float
    p95: float
    p99: float
    ci_low: float         # 95 % CI of p50
    ci_high: float
    cv: float             # std / mean

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def summarize(samples, confidence: float = 0.95) -> Summary:
    """Percentiles (linear interpolation), mean, std, min, max, CV and the median CI of `samples`."""
    s = np.sort(np.asarray(samples, dtype=np.float64))
    if s.size == 0:
        raise ValueError("summarize needs at least one sample")
    p50, p90, p95, p99 = np.percentile(s, PERCENTILES)
    mean = float(s.mean())
    std = float(s.std(ddof=1)) if s.size > 1 else 0.0
    lo, hi = median_ci_ranks(s.size, confidence)
    return Summary(count=int(s.size), mean=mean, std=std, min=float(s[0]), max=float(s[-1]),
                   p50=float(p50), p90=float(p90), p95=float(p95), p99=float(p99),
                   ci_low=float(s[lo]), ci_high=float(s[hi]), cv=std / mean if mean > 0 else 0.0)


def t975(df: int) -> float:
    return T975[df - 1] if df <= len(T975) else 1.96


def pool(executions) -> Summary:
    """Summary of several executions' samples: percentiles and moments of all samples together; the 95 % CI of
    p50 is the union of the pooled binomial CI and mean(execution p50s) +- t * sd / sqrt(k) for k >= 2 (not
    below 0)."""
    execs = [np.asarray(e, dtype=np.float64) for e in executions if len(e)]
    if not execs:
        raise ValueError("pool needs at least one non-empty execution")
    s = summarize(np.concatenate(execs))
    if len(execs) > 1:
        meds = np.array([np.median(e) for e in execs])
        half = t975(len(meds) - 1) * float(meds.std(ddof=1)) / math.sqrt(len(meds))
        s.ci_low = max(0.0, min(s.ci_low, float(meds.mean()) - half, s.p50))
        s.ci_high = max(s.ci_high, float(meds.mean()) + half, s.p50)
    return s


def is_noisy(summary: Summary, noisy_cv: float) -> bool:
    return summary.cv > noisy_cv


class StopRule:
    """When to stop timing: feed each sample with the elapsed timed-phase seconds; `done` says stop.

    Stop as soon as min_iters AND min_duration_s are reached and the 95 % CI of p50 lies within
    +-ci_rel_width * p50 (reason "ci"), or at max_duration_s (reason "max_duration"; a hard cap that still
    waits for min(min_iters, 5) samples). The CI is re-checked on a geometric schedule (every ~5 % more
    samples) so the sort stays cheap between timed calls.
    """

    def __init__(self, min_iters: int, min_duration_s: float, max_duration_s: float, ci_rel_width: float):
        self.min_iters = max(1, int(min_iters))
        self.min_duration_s = float(min_duration_s)
        self.max_duration_s = float(max_duration_s)
        self.ci_rel_width = float(ci_rel_width)
        self.samples: list[float] = []
        self.reason = ""
        self._next_check = self.min_iters

    @classmethod
    def from_config(cls, cfg) -> "StopRule":
        return cls(cfg.min_iters, cfg.min_duration_s, cfg.max_duration_s, cfg.ci_rel_width)

    def add(self, sample: float, elapsed_s: float) -> bool:
        """Record one sample; return True when timing should stop (reason in `self.reason`)."""
        self.samples.append(sample)
        n = len(self.samples)
        if elapsed_s >= self.max_duration_s and n >= min(self.min_iters, 5):
            self.reason = "max_duration"
            return True
        if n < self.min_iters or elapsed_s < self.min_duration_s or n < self._next_check:
            return False
        self._next_check = n + max(1, n // 20)
        if self.ci_converged():
            self.reason = "ci"
            return True
        return False

    def ci_converged(self) -> bool:
        s = np.sort(np.asarray(self.samples))
        lo, hi = median_ci_ranks(s.size)
        p50 = float(np.percentile(s, 50))
        return max(p50 - s[lo], s[hi] - p50) <= self.ci_rel_width * p50


@dataclass
class Ratio:
    """p50 of B over p50 of A from paired rounds: point estimate and 95 % CI (None with one round)."""
    ratio: float
    low: Optional[float]
    high: Optional[float]
    rounds: int

    @property
    def resolved(self) -> bool:
        """The CI excludes 1: which of the two is faster is settled."""
        return self.low is not None and (self.low > 1.0 or self.high < 1.0)


def ratio_ci(a_p50s, b_p50s) -> Ratio:
    """Paired p50 ratio B/A from per-round execution p50s (round i of A and B ran back to back in one bench call).

    Estimator: the geometric mean of the per-round ratios, with a Student-t 95 % interval on the log ratios
    (df = rounds - 1), exponentiated. Why: machine drift scales both configurations of a round alike, so the
    per-round ratio cancels it and the log makes that ratio additive and symmetric; the rounds are few (5 by
    default), where a t-interval is the standard small-sample choice and still covers 95 % for roughly normal log
    ratios, while a bootstrap needs far more rounds and the Hodges-Lehmann/Wilcoxon interval cannot reach 95 %
    below 6 pairs. Rounds with a non-positive p50 are ignored.
    """
    logs = np.array([math.log(b / a) for a, b in zip(a_p50s, b_p50s) if a > 0 and b > 0], dtype=np.float64)
    if logs.size == 0:
        raise ValueError("ratio_ci needs at least one round with positive p50s")
    mean = float(logs.mean())
    if logs.size < 2:
        return Ratio(math.exp(mean), None, None, 1)
    half = t975(logs.size - 1) * float(logs.std(ddof=1)) / math.sqrt(logs.size)
    return Ratio(math.exp(mean), math.exp(mean - half), math.exp(mean + half), int(logs.size))
