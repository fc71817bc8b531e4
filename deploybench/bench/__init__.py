"""Bench stage: measurement harness (stats, stop rule), memory, accuracy, device fingerprint, fresh-process workers."""
from .stage import bench_model, bench_run

__all__ = ["bench_run", "bench_model"]
