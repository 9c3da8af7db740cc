"""The reporting hooks: metrics file, JUnit properties, pytest-html extras, baselines, recordings, bundles.

One plugin object registered by :mod:`.hooks`; the HTML and the data it writes live in :mod:`pytest_simtwin.results`.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_simtwin import __version__
from pytest_simtwin.errors import (
    BackendError,
    BaselineError,
    ConfigError,
    ControlError,
    DomainError,
    SimulatorDiedError,
    SimulatorError,
    SimulatorStartError,
)
from pytest_simtwin.plugin.keys import CALL_START_KEY, PHASES_KEY, RECORDING_KEY, SESSION_KEY
from pytest_simtwin.results import baselines as bl
from pytest_simtwin.results import cameras, dashboard, plots
from pytest_simtwin.results.baselines import DEFAULT_DIR, BaselineStore, describe_verdict
from pytest_simtwin.results.html import html_extras
from pytest_simtwin.results.recording import (
    default_topics,
    parse_topic_lines,
    recorder_for,
    rerun_command,
    safe_dirname,
    write_bundle,
)
from pytest_simtwin.results.records import (
    REPORT_ATTR,
    ResultsCollector,
    TestRecord,
    combine_outcome,
    existing_record,
    file_sha256,
    slim,
)
from pytest_simtwin.runtime import settings as cfg
from pytest_simtwin.sim.world.defaults import DEFAULT_ROBOT, DEFAULT_WORLD


class ReportingPlugin:
    """Metrics file, JUnit properties, pytest-html extras, baselines, recordings and failure bundles.

    Runs in every process: workers (and a plain run) build records, compare baselines, write
    baselines, bags and bundles, and attach the serialised record to the teardown report; the
    controller (or the plain run) collects the records, writes the metrics file and the summary.
    """

    def __init__(self, config: Any) -> None:

        self.config = config
        self.is_worker = hasattr(config, "workerinput")
        self.metrics_json: Path | None = cfg.get_option(config, "metrics-json")
        self.update = bool(cfg.get_option(config, "update-baseline"))
        self.fail_on_regression = bool(cfg.get_option(config, "fail-on-regression"))
        self.rtol = float(cfg.get_option(config, "baseline-rtol"))
        self.record_mode: str = cfg.get_option(config, "record") or "off"
        self.store = BaselineStore(cfg.get_option(config, "baseline-dir") or (config.rootpath / DEFAULT_DIR))
        self.artifacts: Path = cfg.get_option(config, "artifacts") or (config.rootpath / "simtwin-artifacts")

        try:
            self.extra_topics = parse_topic_lines(str(cfg.get_option(config, "record-topics") or "").splitlines())
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.collector = ResultsCollector()
        self._sim_info: dict[int, dict[str, Any]] = {}
        self._starts_seen: dict[int, int] = {}

    # -- worker side -------------------------------------------------------------------------------
    def _session(self, item: Any) -> Any:
        return item.stash.get(SESSION_KEY, None)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        item.stash[CALL_START_KEY] = time.monotonic()  # camera images received from here on are this test's
        self._start_recording(item)
        try:
            return (yield)
        finally:
            self._stop_recording(item)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        # tryfirst = outermost wrapper: sees the report after every other plugin changed it
        report = yield
        self.after_report(item, report, call)
        return report

    def _provenance(self, session: Any) -> dict[str, Any]:

        info: dict[str, Any] = {"plugin_version": __version__}
        if session is None or session.config is None:
            return info
        key = id(session.backend)
        if key not in self._sim_info:
            sim: dict[str, Any] = {"backend": session.settings.backend}
            try:
                client = session.control_or_none()
                if client is not None:
                    feats = client.features()
                    sim["simulator"] = feats.get("name")
                    sim["simulator_version"] = feats.get("version")
            except Exception as exc:  # provenance is best effort: never fail a test for it
                sim["simulator"] = f"unknown ({type(exc).__name__})"
            conf = session.config
            defaults = {"world": DEFAULT_WORLD, "robot": DEFAULT_ROBOT}
            for what in ("world", "robot"):
                path = getattr(conf, what, None)
                sim[what] = str(path) if path else "builtin"
                # the built-in files are hashed too: a changed default world/robot shows in the baseline diff
                sim[f"{what}_sha256"] = file_sha256(path or defaults[what])
            sim["seed"] = getattr(conf, "seed", None)
            self._sim_info = {key: sim}
        return {**info, **self._sim_info[key]}

    def _start_recording(self, item: Any) -> None:
        session = self._session(item)
        if self.record_mode == "off" or session is None or session.ros is None:
            return

        recorder = recorder_for(session.ros_session, default_topics(session.topics()) + self.extra_topics)
        recorder.start()
        item.stash[RECORDING_KEY] = recorder

    def _stop_recording(self, item: Any) -> Any:
        recorder = item.stash.get(RECORDING_KEY, None)
        if recorder is None or not hasattr(recorder, "stop"):
            return recorder
        take = recorder.stop()
        item.stash[RECORDING_KEY] = take
        return take

    def after_report(self, item: pytest.Item, report: pytest.TestReport, call: Any = None) -> None:

        phases = item.stash.setdefault(PHASES_KEY, {})
        phases[report.when] = report.outcome
        rec = existing_record(item)
        if rec is None:
            return
        if self.is_worker and rec.worker == "master":
            rec.worker = str(self.config.workerinput.get("workerid", "master"))
        session = self._session(item)
        if report.failed and not rec.infra:
            rec.infra = infra_reason(report, getattr(call, "excinfo", None), session)
        if report.when == "setup" and session is not None:
            starts = getattr(session, "starts", 0)
            if starts > self._starts_seen.get(id(session), 0):  # this setup (re)started the simulator
                rec.sim_start = round(float(report.duration), 3)
            self._starts_seen[id(session)] = starts
        if report.when == "call":
            if session is not None:
                rec.provenance.update(self._provenance(session))
                # noted now: the session may stop the simulator before the teardown report (last test)
                log = session.backend.log_path() if session.backend is not None else None
                if log is not None:
                    rec.artifacts["simulator_log"] = str(log)
            if rec.metrics and not self.update:
                bl.evaluate(rec, self.store, self.rtol)
                if rec.baseline_verdict == bl.ERROR:
                    report.user_properties.append(("simtwin:baseline_error", rec.baseline[0]["error"]))
                regs = bl.regressions(rec)
                if regs and self.fail_on_regression and report.passed:
                    report.outcome = "failed"
                    lines = "\n".join(f"  {bl.describe_verdict(v)}" for v in regs)
                    report.longrepr = (
                        f"simtwin: {len(regs)} metric(s) regressed against the baseline {self.store.path_for(item.nodeid)} "
                        f"(--simtwin-fail-on-regression):\n{lines}\nIf the change is intended, re-run with "
                        "--simtwin-update-baseline and commit the new baseline."
                    )
                    phases["call"] = "failed"
            for m in rec.metrics:
                prop = (f"simtwin:metric:{m.name}", f"{m.value:.6g}")
                item.user_properties.append(prop)
            if rec.baseline_verdict != "none":
                item.user_properties.append(("simtwin:baseline", rec.baseline_verdict))
            return
        if report.when != "teardown":
            return

        rec.outcome = combine_outcome(phases)
        failed = rec.outcome in ("failed", "error")
        take = self._stop_recording(item)
        if take is not None:
            rec.recorded = take.counts()
        images: dict[str, bytes] = {}
        # plots are drawn on the worker (in parallel); needed for the HTML report and failure bundles
        # (PNGs only for failing tests: passing ones get the lighter inline SVG plots, see html.test_block)
        if rec.trajectory and failed and (_html_enabled(self.config) or session is not None):
            images = plots.figures(rec, rec.baseline_trajectory or None)
        frames: dict[str, bytes] = {}
        if failed and session is not None and getattr(session, "ros", None) is not None:
            try:  # the last image per camera topic: a thumbnail in the report, the full PNG in the bundle
                frames = cameras.capture(rec, cameras.last_images(session.ros_session, item.stash.get(CALL_START_KEY, 0.0)))
            except Exception as exc:  # a report must never fail because of an image
                rec.artifacts["camera_error"] = f"{type(exc).__name__}: {exc}"
        try:
            self._write_artifacts(item, rec, session, take, images, failed, frames)
        except Exception as exc:  # artifacts must never turn a result into a crash
            rec.artifacts["artifact_error"] = f"{type(exc).__name__}: {exc}"
        if self.update:
            self._update_baseline(rec)
        report.extras = [*getattr(report, "extras", []), *html_extras(rec, images)]  # type: ignore[attr-defined]
        setattr(report, REPORT_ATTR, slim(rec).to_dict())  # shipped to the xdist controller

    def _write_artifacts(
        self, item: Any, rec: TestRecord, session: Any, take: Any, images: dict[str, bytes], failed: bool,
        frames: dict[str, bytes],
    ) -> None:  # fmt: skip

        if take is not None and not failed and self.record_mode == "all":
            bag = self.artifacts / "bags" / safe_dirname(rec.nodeid)
            rec.artifacts["bag"] = str(take.write(bag))
        if failed and session is not None:
            sim_log = Path(rec.artifacts["simulator_log"]) if "simulator_log" in rec.artifacts else None
            rerun = rerun_command(rec.nodeid, self.config.invocation_params.args, self.config.rootpath)
            folder = self.artifacts / "failures" / safe_dirname(rec.nodeid)
            rec.artifacts["bundle"] = str(folder)
            rec.artifacts["rerun"] = rerun
            if take is not None:
                rec.artifacts["bag"] = str(folder / "bag")
            write_bundle(folder, rec, take=take, images=images, rerun=rerun, sim_log=sim_log, camera_images=frames)

    def _update_baseline(self, rec: TestRecord) -> None:

        if not rec.metrics:
            return
        if rec.outcome != "passed":  # a failing run's metrics are not a reference
            rec.artifacts["baseline_update"] = f"skipped: the test {rec.outcome}"
            return
        try:
            path, changed = self.store.save(rec)
        except BaselineError as exc:
            rec.artifacts["baseline_update"] = f"error: {exc}"
            return
        rec.artifacts["baseline"] = str(path)
        rec.artifacts["baseline_update"] = "written" if changed else "unchanged"

    # -- controller side -------------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: Any) -> None:
        if not self.is_worker:
            self.collector.add_report(report)

    def pytest_sessionfinish(self, session: Any) -> None:
        if self.is_worker:
            return
        if self.metrics_json is not None:
            self.collector.write(Path(self.metrics_json))
        if self.collector.records:
            try:
                dashboard.write_step_summary(self.collector.ordered())
            except OSError as exc:  # a CI summary must not fail the run
                self.config.issue_config_time_warning(
                    pytest.PytestWarning(f"simtwin: cannot write $GITHUB_STEP_SUMMARY ({exc})"), stacklevel=2
                )

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str], session: Any) -> None:
        """The run dashboard at the top of the pytest-html report (controller or plain run)."""
        if self.is_worker or not self.collector.records:
            return
        htmlpath = getattr(self.config.option, "htmlpath", None)
        report_dir = (self.config.invocation_params.dir / Path(htmlpath).expanduser()).parent if htmlpath else None
        prefix.append(dashboard.summary_html(self.collector.ordered(), report_dir))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:

        if self.is_worker:
            return
        tr = terminalreporter
        recs = self.collector.ordered()
        regressed = [r for r in recs if r.baseline_verdict == "regression"]
        improved = [r for r in recs if any(v.get("verdict") == "improvement" for v in r.baseline)]
        broken = [r for r in recs if r.baseline_verdict == "error"]
        bundles = [r for r in recs if "bundle" in r.artifacts]
        changed = [
            (r.nodeid, v["name"], v["verdict"])
            for r in recs
            for v in r.baseline
            if v.get("verdict") in ("new", "missing")
        ]
        if not (regressed or improved or broken or bundles or changed or self.metrics_json or self.update):
            return
        tr.section("simtwin")
        for title, group, kinds in (
            ("regressions", regressed, ("regression",)),
            ("improvements", improved, ("improvement",)),
            ("baseline errors", broken, ("error",)),
        ):
            if group:
                tr.write_line(f"{title} ({len(group)} tests):", red=title != "improvements", bold=True)
                for r in group:
                    for v in r.baseline:
                        if v.get("verdict") in kinds:
                            tr.write_line(f"  {r.nodeid}: {describe_verdict(v)}")
        new = sum(1 for r in recs if r.baseline_verdict == "new")
        if new and not self.update:
            tr.write_line(f"{new} test(s) with metrics have no baseline yet (--simtwin-update-baseline creates them)")
        for nodeid, name, verdict in changed:
            what = "not in the baseline" if verdict == "new" else "in the baseline but not recorded"
            tr.write_line(f"  {nodeid}: metric {name} {what}")
        if self.update:
            states: dict[str, int] = {}
            for r in recs:
                if "baseline_update" in r.artifacts:
                    state = r.artifacts["baseline_update"].split(":")[0]
                    states[state] = states.get(state, 0) + 1
            text = ", ".join(f"{n} {k}" for k, n in sorted(states.items())) or "nothing to store"
            tr.write_line(f"baselines in {self.store.directory}: {text}")
            for r in recs:
                if r.artifacts.get("baseline_update", "").startswith(("skipped", "error")):
                    tr.write_line(f"  {r.nodeid}: {r.artifacts['baseline_update']}")
        for r in bundles:
            tr.write_line(f"failure bundle: {r.artifacts['bundle']}")
        if self.metrics_json is not None:
            tr.write_line(f"metrics: {len(recs)} tests -> {self.metrics_json}")


def infra_reason(report: pytest.TestReport, excinfo: Any, session: Any) -> str:
    """Why a failed phase is the infrastructure's fault ("" when it is the test's): simulator died,
    never became ready, timed out starting, no ROS domain, control services unanswered."""
    if getattr(report, "simtwin_infra", False):  # plugin/hooks.py: the simulator died during the call
        died = session.death_reason() if session is not None else None
        return f"simulator died during the test ({died})" if died else "simulator died during the test"
    exc = getattr(excinfo, "value", None)
    if report.when != "setup" or exc is None:
        return ""
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    if isinstance(exc, SimulatorDiedError):
        return f"simulator died before the test: {first}"
    if isinstance(exc, SimulatorStartError):
        what = "timed out starting" if "within" in first or "timed out" in first else "never became ready"
        return f"simulator {what}: {first}"
    if isinstance(exc, (DomainError, SimulatorError, ControlError, BackendError)):
        return f"{type(exc).__name__}: {first}"
    return ""


def _html_enabled(config: Any) -> bool:
    return bool(getattr(config.option, "htmlpath", None))
