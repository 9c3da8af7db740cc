"""Twin validation inside pytest: ``assert_twin_matches`` and the ``twin_validation`` fixture.

Metrics go into the running test's :class:`~pytest_simtwin.results.records.TestRecord` (the HTML report,
metrics JSON, JUnit properties and baselines read them from there); ``validation_report.png`` and
``metrics.json`` go into the test's artifacts folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_simtwin._internal.files import nodeid_filename
from pytest_simtwin.results.records import current_record, record_for
from pytest_simtwin.twin.data import Trajectory
from pytest_simtwin.twin.loaders import Topics, load_trajectory
from pytest_simtwin.twin.replay import replay
from pytest_simtwin.twin.report import write_outputs
from pytest_simtwin.twin.scoring import MetricSpec, TwinConfig, TwinResult, load_config, validate

if TYPE_CHECKING:
    import pytest

    from pytest_simtwin.results.records import TestRecord
    from pytest_simtwin.runtime.session import SimSession

RunLike = Trajectory | str | Path


def _as_run(run: RunLike, topics: Topics | None = None) -> Trajectory:
    return run if isinstance(run, Trajectory) else load_trajectory(Path(run), topics=topics)


def _config(config: TwinConfig | None, metrics: Iterable[str | MetricSpec] | None) -> TwinConfig:
    cfg = config or load_config()
    return cfg.with_metrics(metrics) if metrics is not None else cfg


def record_result(result: TwinResult, record: TestRecord, png: Path | None = None) -> None:
    """Store the twin metrics (value, tolerance, pass, RMSE/max/pass fraction in ``extra``) in ``record``."""
    for m in result.records:
        record.add_metric(m)
    record.artifacts["twin_verdict"] = result.verdict
    if png is not None:
        record.artifacts["twin_validation_png"] = str(png)


def assert_twin_matches(
    real: RunLike,
    sim: RunLike,
    metrics: Iterable[str | MetricSpec] | None = None,
    *,
    config: TwinConfig | None = None,
    record: TestRecord | None = None,
    out_dir: Path | None = None,
) -> TwinResult:
    """Fail the test unless ``sim`` matches ``real`` within every metric's tolerance.

    Records the metrics into ``record`` (default: the running test's record, when the plugin is
    active) and, with ``out_dir``, writes ``metrics.json`` and ``validation_report.png`` there.
    """
    __tracebackhide__ = True
    result = validate(_as_run(real), _as_run(sim), _config(config, metrics))
    png = None
    if out_dir is not None:
        png = write_outputs(result, out_dir).get("png")
    if record is None:
        record = current_record()
    if record is not None:
        record_result(result, record, png)
    if not result.passed:
        raise AssertionError(result.summary() + (f"\nreport: {png}" if png else ""))
    return result


class TwinValidation:
    """What the ``twin_validation`` fixture gives a test."""

    def __init__(
        self,
        record: TestRecord | None,
        out_dir: Path,
        session: Callable[[], SimSession] | None = None,
        config: TwinConfig | None = None,
    ) -> None:
        self.record = record
        self.out_dir = out_dir
        self._session = session
        self.config = config or load_config()
        self.results: list[TwinResult] = []

    def load(self, path: str | Path, topics: Topics | None = None, **kwargs: Any) -> Trajectory:
        """Load a recording (rosbag2 MCAP/sqlite3, ROS 1 bag or JSON)."""
        return load_trajectory(Path(path), topics=topics, **kwargs)

    def replay(self, real: RunLike, pose: str = "ground_truth") -> Trajectory:
        """Drive this test's simulator with ``real``'s /cmd_vel (uses the ``sim`` fixture's session)."""

        if self._session is None:
            raise RuntimeError("twin_validation.replay needs the simulator: this test has no simtwin session")
        return replay(_as_run(real), self._session(), pose=pose)

    def validate(
        self,
        real: RunLike,
        sim: RunLike | None = None,
        metrics: Iterable[str | MetricSpec] | None = None,
        *,
        png: bool = True,
    ) -> TwinResult:
        """Score ``sim`` (default: a replay of ``real``) against ``real``; records, never raises on a fail."""

        real_run = _as_run(real)
        sim_run = self.replay(real_run) if sim is None else _as_run(sim)
        result = validate(real_run, sim_run, _config(self.config, metrics))
        folder = self.out_dir if not self.results else self.out_dir / f"run{len(self.results) + 1}"
        paths = write_outputs(result, folder, png=png)
        if self.record is not None:
            record_result(result, self.record, paths.get("png"))
        self.results.append(result)
        return result

    def assert_matches(
        self, real: RunLike, sim: RunLike | None = None, metrics: Iterable[str | MetricSpec] | None = None
    ) -> TwinResult:
        __tracebackhide__ = True
        result = self.validate(real, sim, metrics)
        if not result.passed:
            raise AssertionError(f"{result.summary()}\nreport: {self.out_dir}")
        return result


def twin_validation_for(request: pytest.FixtureRequest, artifacts: Path) -> TwinValidation:
    """Build the fixture value: the test's record, its artifacts folder, the simulator on demand."""

    safe = nodeid_filename(request.node.nodeid)

    def session() -> SimSession:
        return request.getfixturevalue("sim")._session  # type: ignore[no-any-return]

    return TwinValidation(
        record_for(request.node),
        artifacts / "twin" / safe,
        session,
        load_config(search_from=Path(str(request.config.rootpath))),
    )
