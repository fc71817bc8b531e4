"""Latency harness: warm-up, then time every call with perf_counter_ns until the stop rule says stop.

Scenarios: batch 1 is single-stream latency; batch N > 1 is offline throughput. `throughput_ips` is
total images / total timed time = N * count / sum(per-call latencies) (= N / mean latency; the harness's own
bookkeeping between calls is excluded). Per-call device time (CUDA events, from `runner.device_time_ms`) is
collected alongside when a `device_time` callable is given. `pool_results` merges several executions of one
configuration (see stats.pool) into the record a result row is filled from.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..config import LatencyConfig
from ..rows import Latency
from .stats import StopRule, Summary, is_noisy, pool, summarize


@dataclass
class LatencyResult:
    summary: Summary                  # milliseconds
    batch_size: int
    throughput_ips: float
    device_p50_ms: Optional[float]    # p50 of per-call device time; None when the runner cannot measure it
    noisy: bool
    stop_reason: str                  # "ci" | "max_duration"
    warmup_iters: int
    timed_s: float                    # wall time of the timed phase
    samples: list                     # per-call latency (ms), kept so executions can be pooled
    device_samples: list              # per-call device time (ms); empty when not measured

    @property
    def scenario(self) -> str:
        return "single-stream" if self.batch_size == 1 else "offline"

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "summary"}
        return {**d, "summary": self.summary.as_dict(), "scenario": self.scenario}


def _warmup(fn: Callable[[], object], cfg: LatencyConfig) -> int:
    """Call fn until both warmup_iters calls and warmup_s seconds have passed; return the call count."""
    n, start = 0, time.perf_counter()
    while n < cfg.warmup_iters or time.perf_counter() - start < cfg.warmup_s:
        fn()
        n += 1
    return n


def measure(fn: Callable[[], object], cfg: LatencyConfig, device_time: Optional[Callable[[], Optional[float]]] = None,
            batch_size: int = 1) -> LatencyResult:
    """Time `fn()` (one inference of `batch_size` images) under `cfg`'s warm-up and stop rule."""
    warm = _warmup(fn, cfg)
    rule = StopRule.from_config(cfg)
    dev: list[float] = []
    clock = time.perf_counter_ns
    start = clock()
    while True:
        t0 = clock()
        fn()
        t1 = clock()
        if device_time is not None:
            d = device_time()
            if d is not None:
                dev.append(float(d))
        if rule.add((t1 - t0) / 1e6, (t1 - start) / 1e9):
            break
    timed_s = (clock() - start) / 1e9
    summary = summarize(rule.samples)
    total_ms = float(np.sum(rule.samples))
    return LatencyResult(
        summary=summary, batch_size=batch_size, throughput_ips=batch_size * summary.count / (total_ms / 1e3),
        device_p50_ms=float(np.percentile(dev, 50)) if dev else None, noisy=is_noisy(summary, cfg.noisy_cv),
        stop_reason=rule.reason, warmup_iters=warm, timed_s=timed_s, samples=rule.samples, device_samples=dev)


@dataclass
class Pooled:
    """Several executions of one configuration pooled (stats.pool)."""
    summary: Summary                  # milliseconds, all executions' samples
    batch_size: int
    scenario: str
    throughput_ips: float
    device_p50_ms: Optional[float]
    noisy: bool
    executions: int
    execution_p50s: list[float]       # each execution's p50, in round order

    def latency(self, efficiency: Optional[float] = None) -> Latency:
        """The result row's latency part."""
        s = self.summary
        return Latency(
            latency_ms_mean=s.mean, latency_ms_p50=s.p50, latency_ms_p90=s.p90, latency_ms_p95=s.p95,
            latency_ms_p99=s.p99, latency_ms_p50_ci_low=s.ci_low, latency_ms_p50_ci_high=s.ci_high, latency_cv=s.cv,
            throughput_ips=self.throughput_ips, latency_ms_std=s.std, latency_ms_min=s.min, latency_ms_max=s.max,
            latency_count=s.count, latency_executions=self.executions, latency_ms_device_p50=self.device_p50_ms,
            noisy=int(self.noisy), efficiency=efficiency, latency_ms_execution_p50s=self.execution_p50s)


def pool_results(parts: list[dict], noisy_cv: float) -> Pooled:
    """Several executions (`LatencyResult.as_dict()`s) of the same configuration pooled."""
    summary = pool([p["samples"] for p in parts])
    bs = int(parts[0]["batch_size"])
    dev = [d for p in parts for d in p["device_samples"]]
    total_ms = sum(sum(p["samples"]) for p in parts)
    return Pooled(summary, bs, parts[0]["scenario"], bs * summary.count / (total_ms / 1e3),
                  float(np.percentile(dev, 50)) if dev else None, is_noisy(summary, noisy_cv), len(parts),
                  [p["summary"]["p50"] for p in parts])
