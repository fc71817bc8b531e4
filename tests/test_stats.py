"""Latency statistics, median CI and the stop rule on synthetic series; the harness on a real callable."""
from __future__ import annotations

import math

import numpy as np
import pytest

from deploybench.bench.latency import measure, pool_results
from deploybench.bench.stats import StopRule, is_noisy, median_ci, median_ci_ranks, pool, summarize, t975
from deploybench.config import LatencyConfig


def test_known_percentiles_and_moments():
    s = summarize(np.arange(1, 101, dtype=float)[::-1])        # order must not matter
    assert (s.count, s.min, s.max, s.mean) == (100, 1.0, 100.0, 50.5)
    # linear interpolation (numpy default): p = 1 + q * 99
    assert s.p50 == pytest.approx(50.5) and s.p90 == pytest.approx(90.1)
    assert s.p95 == pytest.approx(95.05) and s.p99 == pytest.approx(99.01)
    assert s.std == pytest.approx(np.std(np.arange(1, 101), ddof=1))
    assert s.cv == pytest.approx(s.std / 50.5)
    assert (s.ci_low, s.ci_high) == (40.0, 61.0)                # textbook 95 % ranks for n = 100


def test_median_ci_ranks_exact():
    assert median_ci_ranks(100) == (39, 60)
    assert median_ci_ranks(5) == (0, 4)                         # too few samples: [min, max]
    for n in (6, 10, 37, 200, 1001):
        lo, hi = median_ci_ranks(n)
        assert lo + hi == n - 1                                 # symmetric
        below = sum(math.comb(n, k) for k in range(lo + 1)) / 2 ** n
        assert 1 - 2 * below >= 0.95                            # guaranteed coverage
        assert 1 - 2 * (below + math.comb(n, lo + 1) / 2 ** n) < 0.95   # and the narrowest such pair


def test_median_ci_covers_true_median_95pct():
    rng = np.random.default_rng(0)
    trials, n, true_median = 2000, 41, math.log(2.0)           # exponential(1) median
    hits = sum(lo <= true_median <= hi for lo, hi in (median_ci(rng.exponential(size=n)) for _ in range(trials)))
    lo, hi = median_ci_ranks(n)
    exact = 1 - 2 * sum(math.comb(n, k) for k in range(lo + 1)) / 2 ** n
    assert 0.95 <= exact < 0.98
    assert abs(hits / trials - exact) < 0.015, (hits / trials, exact)


def _feed(rule: StopRule, series) -> tuple[int, float]:
    elapsed = 0.0
    for x in series:
        elapsed += x / 1e3
        if rule.add(x, elapsed):
            return len(rule.samples), elapsed
    raise AssertionError("stop rule never stopped")


def test_stop_rule_stops_early_on_constant_series():
    rule = StopRule(min_iters=50, min_duration_s=0.1, max_duration_s=10.0, ci_rel_width=0.01)
    n, elapsed = _feed(rule, np.full(100_000, 1.0))            # 1 ms per call
    assert rule.reason == "ci"
    assert n == 100 and elapsed == pytest.approx(0.1)          # as soon as min_iters AND min_duration hold


def test_stop_rule_respects_min_iters():
    rule = StopRule(min_iters=500, min_duration_s=0.0, max_duration_s=10.0, ci_rel_width=0.5)
    n, _ = _feed(rule, np.full(10_000, 1.0))
    assert n == 500 and rule.reason == "ci"


def test_stop_rule_runs_to_max_on_noisy_series():
    rng = np.random.default_rng(1)
    series = rng.lognormal(mean=0.0, sigma=1.5, size=200_000)   # ~3 ms mean, CV > 2
    rule = StopRule(min_iters=50, min_duration_s=0.5, max_duration_s=3.0, ci_rel_width=0.01)
    n, elapsed = _feed(rule, series)
    assert rule.reason == "max_duration" and 3.0 <= elapsed < 3.1
    assert is_noisy(summarize(rule.samples), 0.15)
    assert not is_noisy(summarize(1.0 + 0.01 * rng.standard_normal(1000)), 0.15)


def test_measure_times_a_real_callable():
    a = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    calls = []
    cfg = LatencyConfig(warmup_iters=5, warmup_s=0.02, min_iters=30, min_duration_s=0.05, max_duration_s=1.0,
                        ci_rel_width=0.05)

    def fn():
        calls.append(1)
        for _ in range(20):
            a @ a

    res = measure(fn, cfg, device_time=lambda: 0.5, batch_size=4)
    s = res.summary
    assert res.warmup_iters >= 5 and len(calls) == res.warmup_iters + s.count
    assert s.count >= 30 and res.stop_reason in ("ci", "max_duration")
    assert 0 < s.min <= s.p50 <= s.p90 <= s.p95 <= s.p99 <= s.max
    assert s.ci_low <= s.p50 <= s.ci_high
    assert res.throughput_ips == pytest.approx(4 / (s.mean / 1e3))   # total images / total timed time
    assert res.device_p50_ms == 0.5 and res.scenario == "offline"
    assert res.timed_s >= s.count * s.mean / 1e3


def test_pool_single_execution_is_summarize():
    x = np.random.default_rng(3).gamma(4.0, 0.5, size=400)
    assert pool([x]).as_dict() == summarize(x).as_dict()


def test_pool_ci_spans_execution_drift():
    """Three executions at 9, 10 and 11 ms (a drifting machine): each alone has a tight binomial CI, the pooled
    CI is mean +- t(2) * sd / sqrt(3) = 10 +- 4.303 * 1 / 1.732 and so covers every execution's median."""
    rng = np.random.default_rng(4)
    execs = [m + rng.normal(0, 0.02, 2000) for m in (9.0, 10.0, 11.0)]
    tight = summarize(execs[0])
    assert tight.ci_high - tight.ci_low < 0.01
    s = pool(execs)
    assert s.count == 6000 and s.ci_low == pytest.approx(10 - 4.303 / 3**0.5, abs=0.01)
    assert s.ci_high == pytest.approx(10 + 4.303 / 3**0.5, abs=0.01)
    assert all(s.ci_low <= np.median(e) <= s.ci_high for e in execs)
    # identical executions: the t-interval collapses and the binomial CI of the pooled samples remains
    same = pool([execs[1], execs[1]])
    assert same.ci_low == pytest.approx(summarize(np.concatenate([execs[1]] * 2)).ci_low)
    assert t975(2) == 4.303 and t975(1000) == 1.96
    assert pool([np.full(50, 1.0), np.full(50, 9.0)]).ci_low == 0.0          # a latency CI never goes below 0
    with pytest.raises(ValueError):
        pool([[], []])


def test_pool_results_merges_execution_records():
    cfg = LatencyConfig(warmup_iters=1, warmup_s=0.0, min_iters=20, min_duration_s=0.0, max_duration_s=1.0,
                        ci_rel_width=1.0)
    parts = [measure(lambda: sum(range(2000)), cfg, batch_size=2).as_dict() for _ in range(3)]
    rec = pool_results(parts, noisy_cv=10.0)
    assert rec.executions == 3 and rec.summary.count == sum(len(p["samples"]) for p in parts)
    assert rec.execution_p50s == [p["summary"]["p50"] for p in parts]
    assert rec.throughput_ips == pytest.approx(2 / (rec.summary.mean / 1e3))
    assert rec.device_p50_ms is None and rec.noisy is False and rec.scenario == "offline"
    lat = rec.latency(efficiency=0.5)
    assert (lat.latency_ms_p50, lat.latency_count, lat.latency_executions, lat.noisy, lat.efficiency) == (
        rec.summary.p50, rec.summary.count, 3, 0, 0.5)
