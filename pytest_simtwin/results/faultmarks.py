"""Where a test's faults happened, for the plots: one span per fault in the record, in sim time.

A fault's record entry (control/faults.py) holds ``at`` (sim s it started), ``duration`` (None: until
cleared) and ``cleared_at`` when the test cleared it; a fault still on at the end of the recording ends
there. Node faults (kill, pause, ...) carry the sim time they were sent at (``duration`` 0: an instant);
without a simulator they have a wall time only and are listed, not drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: fault band colour in every plot
FAULT_COLOUR = "#9467bd"


@dataclass(frozen=True)
class FaultSpan:
    """One fault on the time axis: ``start``..``end`` sim seconds (``end`` == ``start``: an instant)."""

    kind: str
    target: str
    start: float
    end: float
    params: Mapping[str, Any]

    @property
    def label(self) -> str:
        """Short text next to the marker: the fault's kind and what it hit."""
        return f"{self.kind} {self.target}".strip()

    @property
    def hover(self) -> str:
        """The marker's hover text: kind, target, when and the parameters."""
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(self.params.items()))
        when = f"{self.start:.2f}–{self.end:.2f} s" if self.end > self.start else f"at {self.start:.2f} s"
        return f"fault {self.kind}" + (f" on {self.target}" if self.target else "") + f": {when}" + (
            f" ({params})" if params else ""
        )


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def spans(faults: Sequence[Mapping[str, Any]], t_end: float | None = None) -> list[FaultSpan]:
    """The drawable faults of a record: those with a sim start time, ending at their duration, when
    cleared, or at ``t_end`` (the last sample) whichever comes first."""
    out = []
    for f in faults:
        start = _number(f.get("at"))
        if start is None:
            continue
        ends = [e for e in (_number(f.get("cleared_at")),) if e is not None]
        duration = _number(f.get("duration"))
        if duration is not None:
            ends.append(start + duration)
        elif t_end is not None:
            ends.append(max(t_end, start))
        end = max(start, min(ends)) if ends else start
        out.append(FaultSpan(str(f.get("kind", "")), str(f.get("target", "") or ""), start, end,
                             dict(f.get("params") or {})))  # fmt: skip
    return out


def position_at(t: Sequence[float], xs: Sequence[float], ys: Sequence[float], when: float) -> tuple[float, float] | None:
    """(x, y) on a path at sim time ``when``, linearly interpolated (clamped to the path's ends)."""
    n = min(len(t), len(xs), len(ys))
    if n == 0:
        return None
    if when <= t[0]:
        return float(xs[0]), float(ys[0])
    for i in range(1, n):
        if t[i] >= when:
            span = t[i] - t[i - 1]
            a = (when - t[i - 1]) / span if span > 0 else 1.0
            return float(xs[i - 1] + a * (xs[i] - xs[i - 1])), float(ys[i - 1] + a * (ys[i] - ys[i - 1]))
    return float(xs[n - 1]), float(ys[n - 1])
