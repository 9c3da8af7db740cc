"""Per-test result records: what a simulation test produced (metrics, trajectory, timings).

Fixtures fill the record of the running test (``record_for(item)``); the reporting hooks read it,
serialise it, and under xdist ship it to the controller, which merges all workers' records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from .metrics import MetricRecord


@dataclass
class TestRecord:
    """Everything the plugin knows about one test."""

    __test__ = False  # not a test class, despite the name

    nodeid: str
    outcome: str = "unknown"  # passed | failed | error | skipped
    wall_duration: float = 0.0
    sim_duration: float = 0.0
    metrics: list[MetricRecord] = field(default_factory=list)
    #: time series keyed by name: "t", "x", "y", "yaw", "vx", "wz" (measured odometry),
    #: "gt_x", "gt_y" (ground truth), "cmd_t", "cmd_vx", "cmd_wz" (commanded), all lists of floats
    trajectory: dict[str, list[float]] = field(default_factory=dict)
    #: obstacles for plots: {"name", "shape", "size", "x", "y", "yaw"}
    obstacles: list[dict[str, Any]] = field(default_factory=list)
    world: str | None = None
    backend: str | None = None
    domain_id: int | None = None
    baseline: list[dict[str, Any]] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    worker: str = "master"

    def add_metric(self, metric: MetricRecord) -> None:
        # The last value of a metric name wins: a test that records it twice means the later one.
        self.metrics = [m for m in self.metrics if m.name != metric.name] + [metric]

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "wall_duration": self.wall_duration,
            "sim_duration": self.sim_duration,
            "metrics": [m.to_dict() for m in self.metrics],
            "trajectory": self.trajectory,
            "obstacles": self.obstacles,
            "world": self.world,
            "backend": self.backend,
            "domain_id": self.domain_id,
            "baseline": self.baseline,
            "artifacts": self.artifacts,
            "worker": self.worker,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TestRecord:
        rec = cls(nodeid=str(data["nodeid"]))
        for key in (
            "outcome",
            "wall_duration",
            "sim_duration",
            "trajectory",
            "obstacles",
            "world",
            "backend",
            "domain_id",
            "baseline",
            "artifacts",
            "worker",
        ):
            if key in data:
                setattr(rec, key, data[key])
        rec.metrics = [MetricRecord.from_dict(m) for m in data.get("metrics", [])]
        return rec


RECORD_KEY = pytest.StashKey[TestRecord]()


def record_for(item: pytest.Item) -> TestRecord:
    """The (created on first use) record of ``item``."""
    rec = item.stash.get(RECORD_KEY, None)
    if rec is None:
        rec = TestRecord(nodeid=item.nodeid)
        item.stash[RECORD_KEY] = rec
    return rec


def existing_record(item: pytest.Item) -> TestRecord | None:
    return item.stash.get(RECORD_KEY, None)
