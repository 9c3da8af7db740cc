"""HTML for simulation results: a per-test block (plots + metrics + baseline tables) and a
standalone, self-contained report built from a metrics file.

The same block goes into pytest-html (as an ``extras.html`` entry, images inline as base64 PNG)
and into ``simtwin report``. The pytest hooks that produce it are :class:`ReportingPlugin` (registered by plugin.py).
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Generator, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_simtwin.results import plots
from pytest_simtwin.results.records import TestRecord
from pytest_simtwin.sim.world.resources import DEFAULT_ROBOT, DEFAULT_WORLD

PHASES_KEY = pytest.StashKey[dict[str, str]]()
RECORDING_KEY = pytest.StashKey[Any]()  # the Recorder during the call, then its Take

VERDICT_COLOURS = {
    "regression": "#c62828",
    "improvement": "#2e7d32",
    "unchanged": "#555",
    "new": "#1565c0",
    "missing": "#8d6e63",
    "error": "#c62828",
}
OUTCOME_COLOURS = {
    "passed": "#2e7d32",
    "failed": "#c62828",
    "error": "#c62828",
    "skipped": "#777",
    "xfailed": "#777",
    "xpassed": "#e65100",
}

_TABLE = 'style="border-collapse:collapse;margin:6px 0;font-size:12px"'
_CELL = 'style="border:1px solid #ccc;padding:2px 8px;text-align:{align}"'


def _num(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return html.escape(str(x))
    if math.isnan(v):
        return "nan"
    return f"{v:.{digits}g}"


def _table(cls: str, header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    th = "".join(f"<th {_CELL.format(align='left')}>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td {_CELL.format(align='right' if i else 'left')}>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f'<table class="{cls}" {_TABLE}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _coloured(text: str, colours: Mapping[str, str]) -> str:
    colour = colours.get(text, "#333")
    return f'<span style="color:{colour};font-weight:bold">{html.escape(text)}</span>'


def metrics_table(rec: TestRecord) -> str:
    rows = []
    for m in rec.metrics:
        verdict = "-" if m.passed is None else ("pass" if m.passed else "FAIL")
        colour = {"pass": "passed", "FAIL": "failed"}.get(verdict, "")
        rows.append(
            [
                html.escape(m.name),
                _num(m.value),
                "-" if m.tolerance is None else f"{'≥' if m.direction == 'higher' else '≤'} {_num(m.tolerance)}",
                html.escape(m.unit),
                _coloured(verdict, {"pass": OUTCOME_COLOURS["passed"], "FAIL": OUTCOME_COLOURS["failed"]})
                if colour
                else "-",
            ]
        )
    return _table("simtwin-metrics", ["metric", "value", "tolerance", "unit", "pass"], rows)


def baseline_table(rec: TestRecord) -> str:
    rows = []
    for v in rec.baseline:
        if v.get("verdict") == "error":
            return f'<p class="simtwin-baseline-error" style="color:#c62828">{html.escape(str(v.get("error")))}</p>'
        b, c = v.get("baseline"), v.get("current")
        rel = ""
        if b not in (None, 0) and c is not None:
            rel = f" ({(float(c) - float(b)) / abs(float(b)) * 100:+.1f} %)"
        rows.append(
            [
                html.escape(str(v.get("name"))),
                _num(b),
                _num(c),
                ("-" if v.get("delta") is None else _num(v.get("delta"))) + rel,
                html.escape(str(v.get("unit") or "")),
                _coloured(str(v.get("verdict")), VERDICT_COLOURS),
            ]
        )
    return _table("simtwin-baseline", ["metric", "baseline", "current", "delta", "unit", "verdict"], rows)


def test_block(rec: TestRecord, images: Mapping[str, bytes] | None = None, heading: bool = False) -> str:
    """The HTML block of one test: figures, metrics table, baseline table, provenance, artifacts."""
    if images is None:
        images = plots.figures(rec, rec.baseline_trajectory or None)
    parts = ['<div class="simtwin" style="font-family:sans-serif;font-size:12px;margin:4px 0 12px 0">']
    if heading:
        parts.append(
            f'<h3 id="{html.escape(_anchor(rec.nodeid))}" style="font-size:14px;margin:14px 0 4px 0">'
            f"{html.escape(rec.nodeid)} {_coloured(rec.outcome, OUTCOME_COLOURS)}</h3>"
        )
        if rec.message:
            parts.append(f'<pre style="color:#c62828;white-space:pre-wrap">{html.escape(rec.message)}</pre>')
    images = {**images, **_png_artifacts(rec)}
    if images:
        parts.append('<div class="simtwin-figures">')
        for name, png in images.items():
            parts.append(
                f'<img class="simtwin-plot" alt="{html.escape(name)}" title="{html.escape(name)}" '
                f'style="max-width:48%;margin:2px;border:1px solid #eee" src="data:image/png;base64,{plots.b64(png)}"/>'
            )
        parts.append("</div>")
    if rec.metrics:
        parts.append(metrics_table(rec))
    if rec.baseline:
        parts.append(f"<div>baseline: {_coloured(rec.baseline_verdict, VERDICT_COLOURS)}</div>")
        parts.append(baseline_table(rec))
    elif rec.baseline_verdict == "new":
        parts.append(f"<div>baseline: {_coloured('new', VERDICT_COLOURS)} (no baseline file yet)</div>")
    info = [f"{k}: {v}" for k, v in sorted(rec.provenance.items()) if v not in (None, "") and not k.endswith("sha256")]
    if rec.sim_duration:
        info.append(f"sim time: {rec.sim_duration:.2f} s")
    if rec.recorded:
        info.append("recorded: " + ", ".join(f"{t} ({n})" for t, n in sorted(rec.recorded.items())))
    if info:
        parts.append(f'<div class="simtwin-info" style="color:#555">{html.escape(" | ".join(info))}</div>')
    for key, value in sorted(rec.artifacts.items()):
        parts.append(
            f'<div class="simtwin-artifact"><b>{html.escape(key)}</b>: <code>{html.escape(value)}</code></div>'
        )
    parts.append("</div>")
    return "".join(parts)


def _png_artifacts(rec: TestRecord, limit: int = 4 << 20) -> dict[str, bytes]:
    """PNG files a test produced itself (e.g. the twin validation report), shown inline."""
    found: dict[str, bytes] = {}
    for key, value in sorted(rec.artifacts.items()):
        path = Path(value)
        if not (key.endswith("_png") or path.suffix.lower() == ".png"):
            continue
        try:
            if path.is_file() and path.stat().st_size <= limit:
                found[key] = path.read_bytes()
        except OSError:
            continue  # a report must never fail because an artifact went away
    return found


def _anchor(nodeid: str) -> str:
    return "t-" + "".join(c if c.isalnum() else "-" for c in nodeid)


def html_extras(rec: TestRecord, images: Mapping[str, bytes] | None = None) -> list[dict[str, Any]]:
    """pytest-html extras for a record ([] when pytest-html is not installed or nothing to show)."""
    try:
        from pytest_html import extras
    except ImportError:
        return []
    if not (rec.metrics or rec.trajectory or rec.baseline or rec.artifacts):
        return []
    return [extras.html(test_block(rec, images))]


def standalone(records: list[TestRecord], title: str = "pytest-simtwin report", source: str = "") -> str:
    """A self-contained HTML document (no external files, plots inline) for a list of records."""
    counts: dict[str, int] = {}
    for r in records:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no tests"
    index_rows = [
        [
            f'<a href="#{html.escape(_anchor(r.nodeid))}">{html.escape(r.nodeid)}</a>',
            _coloured(r.outcome, OUTCOME_COLOURS),
            f"{r.wall_duration:.2f}",
            f"{r.sim_duration:.2f}" if r.sim_duration else "-",
            str(len(r.metrics)),
            _coloured(r.baseline_verdict, VERDICT_COLOURS) if r.baseline_verdict != "none" else "-",
        ]
        for r in records
    ]
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    body = [
        f"<h1 style='font-size:20px'>{html.escape(title)}</h1>",
        f"<p>{html.escape(summary)} — generated {now}"
        + (f" from <code>{html.escape(source)}</code>" if source else "")
        + "</p>",
        _table("simtwin-index", ["test", "outcome", "wall [s]", "sim [s]", "metrics", "baseline"], index_rows),
    ]
    body += [test_block(r, heading=True) for r in records]
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>"
        f"<body style='font-family:sans-serif;margin:16px'>{''.join(body)}</body></html>\n"
    )


# -- pytest hooks (registered by plugin.py as one plugin object) --------------------------------------


class ReportingPlugin:
    """Metrics file, JUnit properties, pytest-html extras, baselines, recordings and failure bundles.

    Runs in every process: workers (and a plain run) build records, compare baselines, write
    baselines, bags and bundles, and attach the serialised record to the teardown report; the
    controller (or the plain run) collects the records, writes the metrics file and the summary.
    """

    def __init__(self, config: Any) -> None:
        from pytest_simtwin.results.baselines import DEFAULT_DIR, BaselineStore
        from pytest_simtwin.results.records import ResultsCollector
        from pytest_simtwin.runtime import settings as cfg

        self.config = config
        self.is_worker = hasattr(config, "workerinput")
        self.metrics_json: Path | None = cfg.get_option(config, "metrics-json")
        self.update = bool(cfg.get_option(config, "update-baseline"))
        self.fail_on_regression = bool(cfg.get_option(config, "fail-on-regression"))
        self.rtol = float(cfg.get_option(config, "baseline-rtol"))
        self.record_mode: str = cfg.get_option(config, "record") or "off"
        self.store = BaselineStore(cfg.get_option(config, "baseline-dir") or (config.rootpath / DEFAULT_DIR))
        self.artifacts: Path = cfg.get_option(config, "artifacts") or (config.rootpath / "simtwin-artifacts")
        from pytest_simtwin.errors import ConfigError
        from pytest_simtwin.results.recording import parse_topic_lines

        try:
            self.extra_topics = parse_topic_lines(str(cfg.get_option(config, "record-topics") or "").splitlines())
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.collector = ResultsCollector()
        self._sim_info: dict[int, dict[str, Any]] = {}

    # -- worker side -------------------------------------------------------------------------------
    def _session(self, item: Any) -> Any:
        from pytest_simtwin.plugin.hooks import SESSION_KEY

        return item.stash.get(SESSION_KEY, None)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
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
        self.after_report(item, report)
        return report

    def _provenance(self, session: Any) -> dict[str, Any]:
        from pytest_simtwin import __version__
        from pytest_simtwin.results.records import file_sha256

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
        from pytest_simtwin.results.recording import default_topics, recorder_for

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

    def after_report(self, item: pytest.Item, report: pytest.TestReport) -> None:
        from pytest_simtwin.results import baselines as bl
        from pytest_simtwin.results.records import REPORT_ATTR, existing_record, slim

        phases = item.stash.setdefault(PHASES_KEY, {})
        phases[report.when] = report.outcome
        rec = existing_record(item)
        if rec is None:
            return
        if self.is_worker and rec.worker == "master":
            rec.worker = str(self.config.workerinput.get("workerid", "master"))
        session = self._session(item)
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
        from pytest_simtwin.results.records import combine_outcome

        rec.outcome = combine_outcome(phases)
        failed = rec.outcome in ("failed", "error")
        take = self._stop_recording(item)
        if take is not None:
            rec.recorded = take.counts()
        images: dict[str, bytes] = {}
        # plots are drawn on the worker (in parallel); needed for the HTML report and failure bundles
        if rec.trajectory and (_html_enabled(self.config) or (failed and session is not None)):
            images = plots.figures(rec, rec.baseline_trajectory or None)
        try:
            self._write_artifacts(item, rec, session, take, images, failed)
        except Exception as exc:  # artifacts must never turn a result into a crash
            rec.artifacts["artifact_error"] = f"{type(exc).__name__}: {exc}"
        if self.update:
            self._update_baseline(rec)
        report.extras = [*getattr(report, "extras", []), *html_extras(rec, images)]  # type: ignore[attr-defined]
        setattr(report, REPORT_ATTR, slim(rec).to_dict())  # shipped to the xdist controller

    def _write_artifacts(
        self, item: Any, rec: TestRecord, session: Any, take: Any, images: dict[str, bytes], failed: bool
    ) -> None:
        from pytest_simtwin.results.recording import rerun_command, safe_dirname, write_bundle

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
            write_bundle(folder, rec, take=take, images=images, rerun=rerun, sim_log=sim_log)

    def _update_baseline(self, rec: TestRecord) -> None:
        from pytest_simtwin.errors import BaselineError

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

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from pytest_simtwin.results.baselines import describe_verdict

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


def _html_enabled(config: Any) -> bool:
    return bool(getattr(config.option, "htmlpath", None))
