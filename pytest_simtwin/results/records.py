"""Per-test result records: what a simulation test produced (metrics, trajectory, timings).

Fixtures fill the record of the running test (``record_for(item)``); the reporting hooks read it,
serialise it, and under xdist ship it to the controller, which merges all workers' records.

The worker attaches the serialised record to the teardown report as the attribute
:data:`REPORT_ATTR` (xdist ships every JSON-able report attribute to the controller);
:class:`ResultsCollector` runs on the controller (or in a plain run) and writes the one metrics file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_simtwin import __version__
from pytest_simtwin.errors import DataError
from pytest_simtwin.results.metrics import MetricRecord

METRICS_FORMAT = "simtwin-metrics"
METRICS_VERSION = 1
#: report attribute that carries the serialised record from a worker to the controller
REPORT_ATTR = "simtwin_record"
#: points kept per trajectory series in metrics files and baselines (enough for plots)
MAX_TRAJECTORY_POINTS = 600


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
    #: what produced the result: plugin_version, simulator, simulator_version, backend, world,
    #: world_sha256, robot, robot_sha256, seed (the session fills what it knows)
    provenance: dict[str, Any] = field(default_factory=dict)
    #: overall verdict against the baseline: regression | improvement | unchanged | new | error | none
    baseline_verdict: str = "none"
    #: short failure text (first lines of the longrepr) for reports
    message: str = ""
    #: faults injected during the test (control/faults.py): {"id", "kind", "target", "params", "at", "duration"}
    faults: list[dict[str, Any]] = field(default_factory=list)
    #: per topic message counts of the recording (if any) and the bag path in ``artifacts["bag"]``
    recorded: dict[str, int] = field(default_factory=dict)
    #: the baseline's (downsampled) trajectory, drawn under the current one in reports
    baseline_trajectory: dict[str, list[float]] = field(default_factory=dict)
    #: why this is an infrastructure error, not a test failure ("simulator died: ..."), else ""
    infra: str = ""
    #: seconds this test's setup spent (re)starting the simulator (0 when it reused a running one)
    sim_start: float = 0.0
    #: a failing test's last camera images: topic -> base64 PNG thumbnail (results/cameras.py)
    cameras: dict[str, str] = field(default_factory=dict)

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
            "faults": self.faults,
            "world": self.world,
            "backend": self.backend,
            "domain_id": self.domain_id,
            "baseline": self.baseline,
            "artifacts": self.artifacts,
            "worker": self.worker,
            "provenance": self.provenance,
            "baseline_verdict": self.baseline_verdict,
            "message": self.message,
            "recorded": self.recorded,
            "baseline_trajectory": self.baseline_trajectory,
            "infra": self.infra,
            "sim_start": self.sim_start,
            "cameras": self.cameras,
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
            "faults",
            "world",
            "backend",
            "domain_id",
            "baseline",
            "artifacts",
            "worker",
            "provenance",
            "baseline_verdict",
            "message",
            "recorded",
            "baseline_trajectory",
            "infra",
            "sim_start",
            "cameras",
        ):
            if key in data:
                setattr(rec, key, data[key])
        rec.metrics = [MetricRecord.from_dict(m) for m in data.get("metrics", [])]
        return rec


RECORD_KEY = pytest.StashKey[TestRecord]()
#: The running test's record: bound by the plugin around each test (setup, call, teardown).
_CURRENT: ContextVar[TestRecord | None] = ContextVar("simtwin_current_record", default=None)


@contextlib.contextmanager
def bind_record(record: TestRecord | None) -> Iterator[TestRecord | None]:
    """Make ``record`` the running test's record (what ``record_metric``/``assert_metric`` write to) inside."""
    token = _CURRENT.set(record)
    try:
        yield record
    finally:
        _CURRENT.reset(token)


def current_record() -> TestRecord | None:
    """The record bound by :func:`bind_record`, or None outside a test."""
    return _CURRENT.get()


def record_for(item: pytest.Item) -> TestRecord:
    """The (created on first use) record of ``item``."""
    rec = item.stash.get(RECORD_KEY, None)
    if rec is None:
        rec = TestRecord(nodeid=item.nodeid)
        item.stash[RECORD_KEY] = rec
    return rec


def existing_record(item: pytest.Item) -> TestRecord | None:
    return item.stash.get(RECORD_KEY, None)


# -- helpers ------------------------------------------------------------------------------------


def file_sha256(path: str | os.PathLike[str] | None) -> str | None:
    """SHA-256 of a file (world/robot description) for provenance; None when not a readable file."""
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def downsample(trajectory: dict[str, list[float]], max_points: int = MAX_TRAJECTORY_POINTS) -> dict[str, list[float]]:
    """Keep at most ``max_points`` evenly spaced samples of each series (first and last kept).

    Series sharing a length (odometry "t","x",... or command "cmd_*") are thinned with the same
    indices, so they stay aligned.
    """
    out: dict[str, list[float]] = {}
    for key, values in trajectory.items():
        n = len(values)
        if n <= max_points:
            out[key] = [float(v) for v in values]
            continue
        step = (n - 1) / (max_points - 1)
        out[key] = [float(values[round(i * step)]) for i in range(max_points)]
    return out


def _json_safe(value: Any) -> Any:
    """NaN/inf are not JSON: encode them as strings so every reader parses the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a torn one.

    Temp file in the same directory + fsync + rename + fsync of the directory: a kill at any
    point leaves the previous content intact.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def combine_outcome(phases: dict[str, str]) -> str:
    """One outcome from the per-phase outcomes (setup/call/teardown), as pytest's summary counts it."""
    setup, call, teardown = phases.get("setup"), phases.get("call"), phases.get("teardown")
    if setup == "failed" or "_infra" in phases:  # _infra: the simulator died during the call
        return "error"
    if setup == "skipped" or call == "skipped":
        return phases.get("_xfail", "skipped")
    if call == "failed":
        return "failed"
    if teardown == "failed":
        return "error"
    if call == "passed":
        return phases.get("_xpass", "passed")
    if "failed" in phases.values():  # e.g. xdist's report of a crashed worker (when="???")
        return "failed"
    return "unknown"


class ResultsCollector:
    """Collects every test's record from the reports (controller side) and writes the metrics file."""

    def __init__(self) -> None:
        self.records: dict[str, TestRecord] = {}
        self._phases: dict[str, dict[str, str]] = {}
        self._durations: dict[str, float] = {}
        #: the commit the run tested (history: flaky = passed and failed on one commit); None = ask git
        self.commit: str | None = None

    def add_report(self, report: pytest.TestReport) -> None:
        nodeid = report.nodeid
        phases = self._phases.setdefault(nodeid, {})
        if str(report.outcome) == "rerun":  # pytest-rerunfailures: only the final attempt counts
            return
        phases[report.when] = report.outcome
        if getattr(report, "simtwin_infra", False):  # plugin.pytest_runtest_makereport: reported as an error
            phases["_infra"] = "error"
        if hasattr(report, "wasxfail"):
            phases["_xfail" if report.outcome == "skipped" else "_xpass"] = (
                "xfailed" if report.outcome == "skipped" else "xpassed"
            )
        self._durations[nodeid] = self._durations.get(nodeid, 0.0) + float(report.duration)
        data = getattr(report, REPORT_ATTR, None)
        rec = self.records.get(nodeid)
        if isinstance(data, dict):
            new = TestRecord.from_dict(data)
            rec = new if rec is None else _merge(rec, new)
        elif rec is None:
            rec = TestRecord(nodeid=nodeid, worker=_worker_id(report))
        self.records[nodeid] = rec
        rec.outcome = combine_outcome(phases)
        rec.wall_duration = round(self._durations[nodeid], 6)
        if report.failed and not rec.message:
            rec.message = _short_message(report)
        if report.failed and report.when not in ("setup", "call", "teardown") and not rec.infra:
            rec.infra = "worker crashed"  # xdist's report of a worker that died with the test

    def ordered(self) -> list[TestRecord]:
        return [self.records[k] for k in sorted(self.records)]

    def to_dict(self) -> dict[str, Any]:

        tests = self.ordered()
        counts: dict[str, int] = {}
        verdicts: dict[str, int] = {}
        for rec in tests:
            counts[rec.outcome] = counts.get(rec.outcome, 0) + 1
            verdicts[rec.baseline_verdict] = verdicts.get(rec.baseline_verdict, 0) + 1
        return {
            "format": METRICS_FORMAT,
            "version": METRICS_VERSION,
            "plugin_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "summary": {"tests": len(tests), "outcomes": counts, "baseline": verdicts},
            "commit": self.commit if self.commit is not None else run_commit(),
            "tests": [_json_safe(slim(rec).to_dict()) for rec in tests],
        }

    def write(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")


def run_commit(cwd: Path | None = None) -> str:
    """The commit under test: CI's variable, else ``git rev-parse HEAD``, else "" (best effort)."""
    for var in ("GITHUB_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT", "GIT_COMMIT"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _worker_id(report: pytest.TestReport) -> str:
    node = getattr(report, "node", None)
    gw = getattr(node, "gateway", None)
    return str(getattr(gw, "id", "master"))


def _short_message(report: pytest.TestReport, lines: int = 3) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = getattr(crash, "message", None) or str(report.longrepr or "")
    return "\n".join(text.strip().splitlines()[:lines])[:500]


def _merge(old: TestRecord, new: TestRecord) -> TestRecord:
    """A later report's record wins; keep what only the earlier one had (e.g. setup-phase data)."""
    merged = TestRecord.from_dict({**old.to_dict(), **{k: v for k, v in new.to_dict().items() if v}})
    return merged


def slim(rec: TestRecord, max_points: int = MAX_TRAJECTORY_POINTS) -> TestRecord:
    """A copy with a downsampled trajectory (what goes into metrics files and onto the wire)."""
    copy = TestRecord.from_dict(rec.to_dict())
    # micrometre / microsecond resolution is plenty for plots and keeps the metrics file small
    copy.trajectory = {k: [round(v, 6) for v in vals] for k, vals in downsample(rec.trajectory, max_points).items()}
    return copy


def load_metrics_file(path: Path) -> list[TestRecord]:
    """Read a ``--simtwin-metrics-json`` file; :class:`DataError` says what is wrong with it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"metrics file {path} does not exist: expected a file written by --simtwin-metrics-json"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(
            f"metrics file {path} is not valid JSON ({exc}): re-run pytest with --simtwin-metrics-json"
        ) from None
    if not isinstance(data, dict) or data.get("format") != METRICS_FORMAT or not isinstance(data.get("tests"), list):
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise DataError(
            f"{path} is not a simtwin metrics file: expected an object with format {METRICS_FORMAT!r} and a "
            f"'tests' list, found format {found!r}"
        )
    try:
        return [TestRecord.from_dict(t) for t in data["tests"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"metrics file {path} has a malformed test entry ({exc!r})") from None


