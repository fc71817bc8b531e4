"""Pareto fronts: generic two-objective helper and the deploybench front (max top-1, min p50 latency)."""
from __future__ import annotations

from typing import Sequence


def pareto_indices(points: Sequence[tuple[float, float]], maximize: tuple[bool, bool] = (True, False)) -> list[int]:
    """Indices of the non-dominated points (None coordinates are never on the front), in input order.

    A point is dominated when another is at least as good in both objectives and strictly better in one;
    exact duplicates of a front point are all kept.
    """
    sign = [1 if m else -1 for m in maximize]
    pts = [(i, sign[0] * a, sign[1] * b) for i, (a, b) in enumerate(points) if a is not None and b is not None]
    front = []
    for i, a, b in pts:
        if not any((a2 >= a and b2 >= b) and (a2 > a or b2 > b) for _, a2, b2 in pts):
            front.append(i)
    return front


def pareto_rows(rows: Sequence[dict], acc: str = "top1", cost: str = "latency_ms_p50") -> list[dict]:
    """Rows on the front of maximizing `acc` and minimizing `cost`, sorted by cost ascending."""
    idx = pareto_indices([(r.get(acc), r.get(cost)) for r in rows], (True, False))
    return sorted((rows[i] for i in idx), key=lambda r: r[cost])
