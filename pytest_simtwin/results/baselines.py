"""Metric baselines: one committed JSON file per test, comparison and verdicts.

A baseline holds a test's metrics, a downsampled trajectory and what produced them (plugin and
simulator version, backend, world hash). Files are written atomically in a diff-friendly form
(sorted keys, floats rounded to stable precision, one value per line) so a baseline update reads
as a small, reviewable diff.

A metric compares within a band around its baseline value, in its direction: for ``lower``
(errors, durations) a rise beyond the band is a regression, a fall an improvement; ``higher``
the other way round; ``two-sided`` compares magnitudes. The band is
``max(rtol * |baseline|, atol)``: ``rtol`` defaults to 5 % (ini ``simtwin_baseline_rtol``) and
``atol`` to 1 % of the metric's tolerance for ``lower``/``two-sided`` metrics (an error near zero
must not flip on sub-noise changes), 0 for ``higher`` ones; a metric overrides both with
``extra={"baseline_rtol": .., "baseline_atol": ..}``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_simtwin._internal.files import nodeid_filename
from pytest_simtwin.errors import BaselineError
from pytest_simtwin.results.metrics import MetricRecord
from pytest_simtwin.results.records import TestRecord, atomic_write_text, downsample

BASELINE_FORMAT = "simtwin-baseline"
BASELINE_VERSION = 1
DEFAULT_DIR = "simtwin_baselines"
DEFAULT_RTOL = 0.05
#: trajectory points kept in a baseline (plots only: the comparison uses metrics)
BASELINE_TRAJECTORY_POINTS = 200
TRAJECTORY_KEYS = ("t", "x", "y", "yaw", "gt_x", "gt_y")

REGRESSION = "regression"
IMPROVEMENT = "improvement"
UNCHANGED = "unchanged"
NEW = "new"  # metric (or whole test) without a baseline
MISSING = "missing"  # metric in the baseline that the test no longer records
ERROR = "error"  # the baseline file could not be read


def stable_float(value: float, digits: int = 9) -> float | str:
    """Round to ``digits`` significant digits so re-running does not churn the last bits."""
    if not math.isfinite(value):
        return str(value)
    return float(f"{value:.{digits}g}")


def baseline_filename(nodeid: str) -> str:
    """The baseline file of a test: :func:`~pytest_simtwin._internal.files.nodeid_filename` + ``.json``."""
    return nodeid_filename(nodeid) + ".json"


@dataclass
class Baseline:
    nodeid: str
    metrics: dict[str, dict[str, Any]]  # name -> {value, unit, tolerance, direction}
    trajectory: dict[str, list[float]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    path: Path | None = None

    @classmethod
    def from_record(cls, rec: TestRecord) -> Baseline:
        metrics = {
            m.name: {"value": m.value, "unit": m.unit, "tolerance": m.tolerance, "direction": m.direction}
            for m in rec.metrics
        }
        for m in rec.metrics:
            for key in ("baseline_rtol", "baseline_atol"):
                if key in m.extra:
                    metrics[m.name][key] = m.extra[key]
        traj = {k: v for k, v in rec.trajectory.items() if k in TRAJECTORY_KEYS}
        return cls(
            nodeid=rec.nodeid,
            metrics=metrics,
            trajectory=downsample(traj, BASELINE_TRAJECTORY_POINTS),
            provenance=dict(rec.provenance),
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        )

    def to_dict(self) -> dict[str, Any]:
        metrics = {
            name: {k: (stable_float(v) if isinstance(v, float) else v) for k, v in entry.items()}
            for name, entry in self.metrics.items()
        }
        traj = {k: [stable_float(v, 6) for v in vals] for k, vals in self.trajectory.items()}
        return {
            "format": BASELINE_FORMAT,
            "version": BASELINE_VERSION,
            "nodeid": self.nodeid,
            "created": self.created,
            "provenance": self.provenance,
            "metrics": metrics,
            "trajectory": traj,
        }

    def dumps(self) -> str:
        # indent=1 puts every scalar on its own line: a changed value is a one-line diff.
        return json.dumps(self.to_dict(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"

    def metric_records(self) -> list[MetricRecord]:
        out = []
        for name, e in sorted(self.metrics.items()):
            extra: dict[str, Any] = {k: e[k] for k in ("baseline_rtol", "baseline_atol") if k in e}
            out.append(
                MetricRecord(
                    name=name,
                    value=float(e["value"]),
                    unit=str(e.get("unit") or ""),
                    tolerance=None if e.get("tolerance") is None else float(e["tolerance"]),
                    direction=e.get("direction", "lower"),
                    extra=extra,
                )
            )
        return out


def parse_baseline(text: str, path: Path) -> Baseline:
    """Parse a baseline file; :class:`BaselineError` names the file and what is wrong."""
    hint = "fix it or re-create it with --simtwin-update-baseline"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"baseline {path} is not valid JSON ({exc}); {hint}") from None
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise BaselineError(f"baseline {path}: expected format {BASELINE_FORMAT!r}, found {found!r}; {hint}")
    metrics = data.get("metrics")
    if not isinstance(metrics, dict):
        raise BaselineError(f"baseline {path}: expected a 'metrics' object, found {type(metrics).__name__}; {hint}")
    for name, entry in metrics.items():
        try:
            float(entry["value"])
        except (TypeError, KeyError, ValueError):
            raise BaselineError(
                f"baseline {path}: metric {name!r} needs a numeric 'value', found {entry!r}; {hint}"
            ) from None
    traj = data.get("trajectory") or {}
    try:
        trajectory = {str(k): [float(v) for v in vals] for k, vals in traj.items()}
    except (TypeError, ValueError, AttributeError):
        raise BaselineError(f"baseline {path}: 'trajectory' must map names to lists of numbers; {hint}") from None
    return Baseline(
        nodeid=str(data.get("nodeid", "")),
        metrics=metrics,
        trajectory=trajectory,
        provenance=dict(data.get("provenance") or {}),
        created=str(data.get("created", "")),
        path=path,
    )


def load_baseline(path: Path) -> Baseline:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BaselineError(
            f"baseline {path} is not UTF-8 text ({exc}); re-create it with --simtwin-update-baseline"
        ) from None
    except OSError as exc:
        raise BaselineError(f"baseline {path} cannot be read ({exc.strerror}); check its permissions") from None
    return parse_baseline(text, path)


class BaselineStore:
    """The baseline folder: one file per test."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path_for(self, nodeid: str) -> Path:
        return self.directory / baseline_filename(nodeid)

    def load(self, nodeid: str) -> Baseline | None:
        """The test's baseline, None if there is none; raises :class:`BaselineError` if corrupt."""
        path = self.path_for(nodeid)
        if not path.exists():
            return None
        return load_baseline(path)

    def save(self, rec: TestRecord) -> tuple[Path, bool]:
        """Write the record's baseline; returns (path, changed). An unchanged baseline keeps its file
        (and its ``created`` stamp) so re-running an update produces no diff."""
        path = self.path_for(rec.nodeid)
        new = Baseline.from_record(rec)
        try:
            old = load_baseline(path) if path.exists() else None
        except BaselineError:
            old = None  # a corrupt file is simply replaced
        if old is not None:
            new.created = old.created
            if json.loads(new.dumps()) == json.loads(old.dumps()):
                return path, False
        for stale in self.directory.glob(f".{path.name}.*.tmp"):
            # left by a killed update of this same file (one writer per test, so never a live one)
            stale.unlink(missing_ok=True)
        try:
            atomic_write_text(path, new.dumps())
        except OSError as exc:
            raise BaselineError(f"cannot write baseline {path}: {exc}; check that the folder is writable") from None
        return path, True

    def load_all(self) -> tuple[dict[str, Baseline], dict[str, BaselineError]]:
        """Every baseline of the folder by node id, plus the files that could not be read."""
        good: dict[str, Baseline] = {}
        bad: dict[str, BaselineError] = {}
        if not self.directory.is_dir():
            raise BaselineError(f"baseline folder {self.directory} does not exist: expected a folder of *.json files")
        for path in sorted(self.directory.glob("*.json")):
            try:
                b = load_baseline(path)
            except BaselineError as exc:
                bad[path.name] = exc
                continue
            good[b.nodeid or path.stem] = b
        return good, bad


# -- comparison ----------------------------------------------------------------------------------


@dataclass
class MetricVerdict:
    name: str
    verdict: str
    baseline: float | None
    current: float | None
    delta: float | None
    band: float | None
    unit: str = ""
    direction: str = "lower"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict,
            "baseline": self.baseline,
            "current": self.current,
            "delta": self.delta,
            "band": self.band,
            "unit": self.unit,
            "direction": self.direction,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MetricVerdict:
        def num(key: str) -> float | None:
            return None if d.get(key) is None else float(d[key])

        return cls(
            str(d.get("name")),
            str(d.get("verdict")),
            num("baseline"),
            num("current"),
            num("delta"),
            num("band"),
            unit=str(d.get("unit") or ""),
            direction=str(d.get("direction") or "lower"),
        )


def band_for(base: MetricRecord, current: MetricRecord | None, rtol: float = DEFAULT_RTOL) -> float:
    """Half-width of the 'unchanged' band around the baseline value."""
    extra = {**base.extra, **(current.extra if current else {})}
    rtol = float(extra.get("baseline_rtol", rtol))
    tol = current.tolerance if current is not None and current.tolerance is not None else base.tolerance
    direction = current.direction if current is not None else base.direction
    default_atol = 0.01 * abs(tol) if tol and direction != "higher" else 1e-12
    atol = float(extra.get("baseline_atol", default_atol))
    return max(rtol * abs(base.value), atol)


def compare_metric(base: MetricRecord, cur: MetricRecord, rtol: float = DEFAULT_RTOL) -> MetricVerdict:
    band = band_for(base, cur, rtol)
    direction = cur.direction or base.direction
    delta = cur.value - base.value
    if math.isnan(cur.value) and not math.isnan(base.value):
        verdict = REGRESSION
    elif math.isnan(base.value):
        verdict = NEW
    else:
        # "worse" is positive for every direction
        if direction == "higher":
            worse = -delta
        elif direction == "two-sided":
            worse = abs(cur.value) - abs(base.value)
        else:
            worse = delta
        verdict = REGRESSION if worse > band else IMPROVEMENT if worse < -band else UNCHANGED
    return MetricVerdict(cur.name, verdict, base.value, cur.value, delta, band, cur.unit or base.unit, direction)


def compare(
    current: Iterable[MetricRecord], baseline: Iterable[MetricRecord], rtol: float = DEFAULT_RTOL
) -> list[MetricVerdict]:
    """Verdicts for every metric in either set (new and missing ones included)."""
    base = {m.name: m for m in baseline}
    cur = {m.name: m for m in current}
    out: list[MetricVerdict] = []
    for name in sorted(set(base) | set(cur)):
        b, c = base.get(name), cur.get(name)
        if b is not None and c is not None:
            out.append(compare_metric(b, c, rtol))
        elif c is not None:
            out.append(MetricVerdict(name, NEW, None, c.value, None, None, c.unit, c.direction))
        elif b is not None:
            out.append(MetricVerdict(name, MISSING, b.value, None, None, None, b.unit, b.direction))
    return out


def overall(verdicts: Iterable[MetricVerdict]) -> str:
    """A test's verdict: any regression wins, then improvement, else unchanged (or new if nothing compared)."""
    kinds = {v.verdict for v in verdicts}
    for kind in (REGRESSION, IMPROVEMENT, UNCHANGED):
        if kind in kinds:
            return kind
    return NEW


def evaluate(rec: TestRecord, store: BaselineStore, rtol: float = DEFAULT_RTOL) -> Baseline | None:
    """Compare ``rec`` with its baseline and store the verdicts in the record.

    Never raises for a missing or corrupt baseline: those become verdicts ``new`` / ``error`` (with
    the BaselineError text in ``rec.baseline``) so a broken file is reported, not a crash.
    """
    try:
        base = store.load(rec.nodeid)
    except BaselineError as exc:
        rec.baseline = [{"name": "*", "verdict": ERROR, "error": str(exc)}]
        rec.baseline_verdict = ERROR
        return None
    if base is None:
        rec.baseline = []
        rec.baseline_verdict = NEW if rec.metrics else "none"
        return None
    verdicts = compare(rec.metrics, base.metric_records(), rtol)
    rec.baseline = [v.to_dict() for v in verdicts]
    rec.baseline_verdict = overall(verdicts)
    rec.baseline_trajectory = base.trajectory
    return base


def regressions(rec: TestRecord) -> list[dict[str, Any]]:
    return [v for v in rec.baseline if v.get("verdict") == REGRESSION]


def describe_verdict(v: Mapping[str, Any]) -> str:
    """One line: ``speed: 0.450 -> 0.405 m/s (-10.0 %, band ±0.0225) regression``."""
    if v.get("verdict") == ERROR:
        return str(v.get("error", "baseline error"))
    unit = f" {v['unit']}" if v.get("unit") else ""
    b, c = v.get("baseline"), v.get("current")
    if b is None or c is None:
        return f"{v['name']}: {_fmt(b)} -> {_fmt(c)}{unit} {v['verdict']}"
    rel = f" ({(c - b) / abs(b) * 100:+.1f} %)" if b else ""
    band = f", band ±{v['band']:.3g}" if v.get("band") is not None else ""
    return f"{v['name']}: {_fmt(b)} -> {_fmt(c)}{unit}{rel}{band} {v['verdict']}"


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{float(x):.4g}"
