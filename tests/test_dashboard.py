"""The run dashboard: pytest-html summary and ``simtwin report`` first page, history, job summary.

The end-to-end tests run a real suite under xdist on the real simulator (one test failing on a
metric, one whose simulator is SIGKILLed mid-test, one regressing against its baseline) and open
the reports in headless Chromium: DOM after the page's scripts ran, a scripted click on a sort
header, and a screenshot.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pytest_simtwin.cli import main
from pytest_simtwin.errors import DomainError, SimulatorDiedError, SimulatorStartError
from pytest_simtwin.plugin.reporting import infra_reason
from pytest_simtwin.results import dashboard, history
from pytest_simtwin.results.html import standalone
from pytest_simtwin.results.metrics import MetricRecord
from pytest_simtwin.results.records import ResultsCollector, TestRecord

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium; .ci/run installs it)"
)
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


class Dash(HTMLParser):
    """What the dashboard shows, by the classes and attributes results/dashboard.py writes."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.counts: dict[str, int] = {}
        self.cards: list[dict[str, str]] = []  # {"nodeid", "kind", "text"}
        self.links: list[str] = []  # bundle hrefs
        self.gallery: list[str] = []
        self.anchors: list[str] = []  # every in-page link to a test
        self.tables: dict[str, list[list[str]]] = {}
        self.data_v = 0
        self.in_dashboard = False
        self._stack: list[tuple[str, str]] = []  # (tag, class) of open elements
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._table: str | None = None
        self._count: str | None = None

    def _inside(self, cls: str) -> bool:
        return any(cls in c.split() for _, c in self._stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        cls = a.get("class", "")
        if a.get("id"):
            self.ids.add(a["id"])
            self.in_dashboard = self.in_dashboard or a["id"] == "simtwin-dashboard"
        if tag in ("br", "img", "input", "meta", "link"):
            return
        if "st-fail" in cls.split():
            self.cards.append({"nodeid": a.get("data-nodeid", ""), "kind": "infra" if "st-infra" in cls else "fail", "text": ""})
        if tag == "span" and a.get("data-kind") and self._inside("st-counts"):
            self._count = a["data-kind"]
        if tag == "a" and self._inside("st-links"):
            self.links.append(a.get("href", ""))
        if tag == "a" and a.get("href", "").startswith("#t-"):
            self.anchors.append(a["href"])
        if tag == "a" and self._inside("st-gallery"):
            self.gallery.append(a.get("href", ""))
        if tag == "table" and self._inside("st-dash"):
            self._table = cls.split()[0]
            self.tables[self._table] = []
        if tag == "tr" and self._table:
            self._row = []
            self.tables[self._table].append(self._row)
        if tag in ("td", "th") and self._row is not None:
            self._cell = []
            self.data_v += "data-v" in a
        self._stack.append((tag, cls))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("br", "img", "input", "meta", "link"):
            return
        while self._stack:
            open_tag, _ = self._stack.pop()
            if open_tag == tag:
                break
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None
            self._row = None
        elif tag == "span":
            self._count = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._count:
            self.counts[self._count] = int(data.split()[0])
        if self.cards and self._inside("st-fail"):
            self.cards[-1]["text"] += data

    def summary(self) -> dict[str, object]:
        """What must be equal between a merged-shards report and an unsharded one (values vary run to run)."""
        return {
            "counts": self.counts,
            "cards": sorted((c["kind"], c["nodeid"]) for c in self.cards),
            "regressions": sorted((r[0], r[1]) for r in self.tables.get("st-regressions", [])[1:]),
            "metrics": sorted((r[0], r[1]) for r in self.tables.get("st-metrics", [])[1:]),
            "timings": sorted((r[0], r[1]) for r in self.tables.get("st-timings", [])[1:]),
            "gallery": sorted(self.gallery),
        }


def dash(text: str) -> Dash:
    d = Dash()
    d.feed(text)
    return d


def record(nodeid: str, outcome: str = "passed", value: float = 1.0, tol: float = 0.5, **kw: object) -> TestRecord:
    rec = TestRecord(nodeid, outcome=outcome, wall_duration=2.0, sim_duration=3.0, **kw)  # type: ignore[arg-type]
    rec.trajectory = {"t": [0.0, 1.0, 2.0], "x": [0.0, 0.5, 1.0], "y": [0.0, 0.1, 0.1], "yaw": [0.0] * 3}
    rec.add_metric(MetricRecord("distance", value, "m", tol, "higher"))
    return rec


# -- units ------------------------------------------------------------------------------------------
def test_margin_reason_and_infra_counts() -> None:
    assert dashboard.margin(MetricRecord("e", 0.008, "m", 0.01, "lower")) == pytest.approx(0.2)
    assert dashboard.margin(MetricRecord("d", 0.4, "m", 0.5, "higher")) == pytest.approx(-0.2)
    assert dashboard.margin(MetricRecord("s", -0.03, "m", 0.02, "two-sided")) == pytest.approx(-0.5)
    assert dashboard.margin(MetricRecord("n", 1.0, "m")) is None
    assert dashboard.margin(MetricRecord("nan", math.nan, "m", 1.0)) == -math.inf
    bad = record("t.py::test_bad", "failed", value=0.3)
    bad.message = "AssertionError: too slow"
    assert dashboard.reason(bad) == "distance = 0.3 m, expected ≥ 0.5 m"
    died = record("t.py::test_died", "error", infra="simulator died during the test (exited with code -9)")
    assert dashboard.reason(died).startswith("infrastructure: simulator died")
    other = TestRecord("t.py::test_msg", outcome="failed", message="\nValueError: boom\nmore")
    assert dashboard.reason(other) == "ValueError: boom"
    recs = [record("t.py::test_ok"), bad, died]
    assert dashboard.counts(recs) == {"failed": 1, "infra": 1, "passed": 1}
    d = dash(dashboard.summary_html(recs, None))
    assert d.counts == {"failed": 1, "infra": 1, "passed": 1}
    assert [(c["kind"], c["nodeid"]) for c in d.cards] == [("fail", "t.py::test_bad"), ("infra", "t.py::test_died")]
    plain = dashboard.summary_html([*recs, TestRecord("t.py::test_plain", outcome="passed")], None)
    assert "t.py::test_plain" in plain and 'href="#t-t-py--test-plain"' not in plain  # no block: no dead link
    # sorted by margin: the failing metric first
    assert d.tables["st-metrics"][1][0] == "t.py::test_bad"


def test_bundle_links_are_relative_to_the_report(tmp_path: Path) -> None:
    bundle = tmp_path / "simtwin-artifacts" / "failures" / "t.py--test_bad"
    (bundle / "bag").mkdir(parents=True)
    for name in ("bag/bag_0.mcap", "simulator.log", "node-planner.log", "rerun.sh", "trajectory.png"):
        (bundle / name).write_text("x")
    rec = record("t.py::test_bad", "failed", value=0.1)
    rec.artifacts = {"bundle": str(bundle), "rerun": "cd /p && python -m pytest t.py::test_bad"}
    (tmp_path / "reports").mkdir()
    links = dict(dashboard.bundle_links(rec, tmp_path / "reports"))
    assert links["MCAP bag_0.mcap"] == "../simtwin-artifacts/failures/t.py--test_bad/bag/bag_0.mcap"
    assert links["simulator log"].endswith("/simulator.log") and links["log node-planner.log"]
    for href in links.values():
        assert (tmp_path / "reports" / href).exists(), href
    # a metrics file downloaded from CI names the runner's paths: the bundle beside the file is used
    moved = record("t.py::test_bad", "failed")
    moved.artifacts = {"bundle": "/home/runner/work/p/p/simtwin-artifacts/failures/t.py--test_bad"}
    dashboard.relocate_artifacts([moved], tmp_path / "metrics.json")
    assert moved.artifacts["bundle"] == str(bundle)
    card = dashboard.failure_card(rec, tmp_path / "reports")
    assert "ros2 bag play ../simtwin-artifacts/failures/t.py--test_bad/bag" in card
    assert "cd /p &amp;&amp; python -m pytest t.py::test_bad" in card


def test_step_summary_markdown(tmp_path: Path) -> None:
    rec = record("t.py::test_slow", "passed", value=0.6)
    rec.baseline = [{"name": "distance", "verdict": "regression", "baseline": 0.9, "current": 0.6, "delta": -0.3, "band": 0.045}]
    bad = record("t.py::test_bad", "failed", value=0.1)
    out = tmp_path / "summary.md"
    out.write_text("earlier step\n")
    assert dashboard.write_step_summary([rec, bad], {"GITHUB_STEP_SUMMARY": str(out)}) == out
    text = out.read_text()
    assert text.startswith("earlier step\n## pytest-simtwin: 2 tests")
    assert "| `t.py::test_slow` | distance | 0.9 | 0.6 | -0.3 | ±0.045 |" in text
    assert "- `t.py::test_bad`: distance = 0.1 m, expected ≥ 0.5 m" in text
    assert "repro: `python -m pytest 't.py::test_bad'`" in text
    assert dashboard.write_step_summary([rec], {}) is None


def _run_file(path: Path, created: str, commit: str, recs: list[TestRecord]) -> None:
    c = ResultsCollector()
    c.records = {r.nodeid: r for r in recs}
    c.commit = commit
    doc = c.to_dict()
    doc["created"] = created
    path.write_text(json.dumps(doc))


def test_history_trends_and_outcome_changes(tmp_path: Path) -> None:
    hist = tmp_path / "history"
    hist.mkdir()
    (hist / "a_baseline.json").write_text('{"format": "simtwin-baseline"}')  # not a metrics file: ignored
    F = "failed"
    _run_file(hist / "r1.json", "2026-01-01T00:00:01", "aaa", [record("t.py::a", value=1.0), record("t.py::b"), record("t.py::f")])
    _run_file(hist / "r2.json", "2026-01-02T00:00:01", "bbb", [record("t.py::a", value=0.9), record("t.py::b", F), record("t.py::f", F)])
    _run_file(hist / "r3.json", "2026-01-03T00:00:01", "bbb", [record("t.py::a", value=0.8), record("t.py::b", F), record("t.py::f")])
    current = tmp_path / "current.json"
    _run_file(current, "2026-01-04T00:00:01", "ccc", [record("t.py::a", F, value=0.2), record("t.py::b"), record("t.py::f")])
    runs, warnings = history.load_runs(hist, last=10)
    assert [r.path.name for r in runs] == ["r1.json", "r2.json", "r3.json"] and not warnings
    changes = history.outcome_changes([*runs, history.read_run(current)])
    # f failed and passed on commit bbb: flaky; b failed on bbb only
    assert changes == {"new failures": ["t.py::a"], "fixed": ["t.py::b"], "flaky": ["t.py::f"]}
    assert history.outcome_changes(runs)["fixed"] == ["t.py::f"]
    assert history.trends(runs)[("t.py::a", "distance")] == [1.0, 0.9, 0.8]
    out = tmp_path / "report.html"
    assert main(["report", str(current), "--history", str(hist), "--last", "3", "-o", str(out)]) == 0
    text = out.read_text()
    assert "Outcome changes over 3 runs" in text  # two of the history and the current one
    d = dash(text)
    trend_rows = d.tables["st-trends"][1:]
    assert [r[:2] for r in trend_rows] == [["t.py::a", "distance"], ["t.py::b", "distance"], ["t.py::f", "distance"]]
    assert trend_rows[0][3:] == ["0.2", "-77.8 %", "3/3"]  # 0.9 (r2; r1 dropped: --last 3) ... 0.2 now
    assert '<li class="st-change" data-kind="new failures"><b>new failures</b> (1)' in text
    assert 'data-kind="flaky"><b>flaky</b> (1): <a href="#t-t-py--f">' in text


class _Report:
    def __init__(self, when: str, infra: bool = False) -> None:
        self.when, self.failed = when, True
        if infra:
            self.simtwin_infra = True


class _ExcInfo:
    def __init__(self, exc: BaseException) -> None:
        self.value = exc


def test_infra_reason_tells_infrastructure_from_test_failures() -> None:
    start = SimulatorStartError("waited 30.0 s for /odom. Expected the simulator to publish /odom within 30.0 s")
    assert infra_reason(_Report("setup"), _ExcInfo(start), None).startswith("simulator timed out starting: waited")  # type: ignore[arg-type]
    never = SimulatorStartError("the simulator exited before it published anything")
    assert infra_reason(_Report("setup"), _ExcInfo(never), None).startswith("simulator never became ready")  # type: ignore[arg-type]
    died = SimulatorDiedError("the embedded simulator exited with code -9 before the test started")
    assert infra_reason(_Report("setup"), _ExcInfo(died), None).startswith("simulator died before the test")  # type: ignore[arg-type]
    assert infra_reason(_Report("setup"), _ExcInfo(DomainError("no free ROS_DOMAIN_ID")), None).startswith("DomainError")  # type: ignore[arg-type]
    assert infra_reason(_Report("call", infra=True), None, None) == "simulator died during the test"  # type: ignore[arg-type]
    # the test's own failures are not infrastructure
    assert infra_reason(_Report("call"), _ExcInfo(AssertionError("too slow")), None) == ""  # type: ignore[arg-type]
    assert infra_reason(_Report("setup"), _ExcInfo(RuntimeError("fixture broke")), None) == ""  # type: ignore[arg-type]


# -- real runs --------------------------------------------------------------------------------------
SUITE = """
    import os, signal

    from pytest_simtwin.backends.processes import partition_members

    SPEED = float(os.environ.get("DASH_SPEED", "0.3"))

    def test_drives(sim, robot, record_metric):
        robot.send_velocity(SPEED, 0.0, 1.5)
        record_metric("distance", robot.displacement, "m", tolerance=0.1, direction="higher")

    def test_too_slow(sim, robot, record_metric):
        robot.send_velocity(0.1, 0.3, 1.0)
        m = record_metric("distance", robot.displacement, "m", tolerance=0.5, direction="higher")
        assert m.passed, "the robot did not get far enough"

    def test_simulator_killed(sim, robot):
        for pid in partition_members(sim.partition):
            if "pytest_simtwin.sim" in open(f"/proc/{pid}/cmdline").read():
                os.kill(pid, signal.SIGKILL)
        robot.send_velocity(0.2, 0.0, 1.0)
"""


def _project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_robot=textwrap.dedent(SUITE))
    # the reference run: test_drives at 0.3 m/s becomes the baseline
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "test_drives", "--simtwin-update-baseline").assert_outcomes(passed=1)
    monkeypatch.setenv("DASH_SPEED", "0.2")  # from now on it drives a third less far: a regression


def _cli(*args: str, cwd: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest_simtwin.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def _chromium(*args: str) -> str:
    assert CHROMIUM is not None
    out = subprocess.run([CHROMIUM, *_FLAGS, *args], capture_output=True, text=True, timeout=120, check=True)
    return out.stdout


def _check_dashboard(d: Dash, report_dir: Path) -> None:
    assert d.in_dashboard
    assert d.counts == {"failed": 1, "infra": 1, "passed": 1}, d.counts
    cards = {c["nodeid"]: c for c in d.cards}
    assert set(cards) == {"test_robot.py::test_too_slow", "test_robot.py::test_simulator_killed"}
    slow, killed = cards["test_robot.py::test_too_slow"], cards["test_robot.py::test_simulator_killed"]
    assert slow["kind"] == "fail" and "distance = " in slow["text"] and "expected ≥ 0.5 m" in slow["text"]
    assert "repro: " in slow["text"] and "-m pytest test_robot.py::test_too_slow" in slow["text"]
    assert killed["kind"] == "infra" and "infrastructure: simulator died during the test" in killed["text"]
    (reg,) = d.tables["st-regressions"][1:]
    assert reg[0] == "test_robot.py::test_drives" and reg[1] == "distance" and reg[-1] == "regression"
    assert reg[4].endswith("%)") and "-3" in reg[4]  # about -33 %
    assert {r[0] for r in d.tables["st-metrics"][1:]} == {"test_robot.py::test_drives", "test_robot.py::test_too_slow"}
    assert d.data_v > 10  # the sort keys
    timings = {r[0]: r for r in d.tables["st-timings"][1:]}
    assert timings["test_robot.py::test_drives"][4].endswith("×")
    assert any(r[5] != "-" for r in timings.values())  # some test started its simulator
    assert d.gallery and all(h.startswith("#t-") and h[1:] in d.ids for h in d.gallery), (d.gallery, d.ids)
    assert all(h[1:] in d.ids for h in d.anchors), (d.anchors, d.ids)  # every link to a test lands on its block
    assert any(h.endswith(".mcap") for h in d.links), d.links
    for href in d.links:
        assert not href.startswith("/") and (report_dir / href).exists(), href
    assert any(h.endswith("simulator.log") for h in d.links) and any(h.endswith("rerun.sh") for h in d.links)


@needs_chromium
def test_pytest_html_dashboard_in_chromium(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(pytester, monkeypatch)
    summary_md = pytester.path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_md))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--simtwin-record=failed", "--simtwin-metrics-json=out/m.json",
        "--html=out/report.html", "--self-contained-html",
    )  # fmt: skip
    result.assert_outcomes(passed=1, failed=1, errors=1)
    page = pytester.path / "out" / "report.html"
    # the DOM after pytest-html's and our scripts ran: extras (and the anchors in them) are rendered
    dom = _chromium("--dump-dom", page.as_uri())
    d = dash(dom)
    _check_dashboard(d, page.parent)
    workers = {r[6] for r in d.tables["st-timings"][1:]}
    assert workers <= {"gw0", "gw1"} and {r[7] for r in d.tables["st-timings"][1:]} != {"-"}  # worker, ROS domain
    # the summary comes before pytest-html's results table, outside any collapsed row
    assert dom.index('id="simtwin-dashboard"') < dom.index('id="results-table"')
    assert "table.st-sort" in dom and "<details" not in dom.split('id="results-table"')[0]
    md = summary_md.read_text()
    assert "**1** failed · **1** infrastructure error(s) · **1** passed" in md
    assert "### Regressions" in md and "`test_robot.py::test_drives` | distance" in md
    # visible without a click: the outcome badges' colours are in the first screen
    from PIL import Image

    shot = pytester.path / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri())
    img = Image.open(shot).convert("RGB")
    colours = {c for _, c in img.getcolors(maxcolors=1 << 20) or []}
    assert (0xC6, 0x28, 0x28) in colours and (0x6A, 0x1B, 0x9A) in colours  # failed, infrastructure badges


@needs_chromium
def test_merged_shards_show_the_same_summary(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(pytester, monkeypatch)
    base = ["-p", "no:cacheprovider", "--simtwin-record=failed"]
    pytester.runpytest_subprocess(*base, "--simtwin-metrics-json=all.json")
    for k in (1, 2):
        pytester.runpytest_subprocess(*base, f"--simtwin-shard={k}/2", f"--simtwin-metrics-json=s{k}.json")
    # the CLI in a subprocess: in this process pytester would unload the numpy it imports (plots)
    _cli("report", "all.json", "-o", "all.html", cwd=pytester.path)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "merge_summary.md"))
    _cli("merge", "-o", "merged.html", "s1.json", "s2.json", cwd=pytester.path)
    assert "**1** failed · **1** infrastructure error(s) · **1** passed" in (pytester.path / "merge_summary.md").read_text()
    merged_page = pytester.path / "merged.html"
    whole, merged = dash((pytester.path / "all.html").read_text()), dash(merged_page.read_text())
    _check_dashboard(merged, pytester.path)
    assert merged.summary() == whole.summary()
    # sorting really happens in the browser: click the "value" header twice (descending), read the rows back
    before = [float(r[2]) for r in merged.tables["st-metrics"][1:]]
    assert before == sorted(before) and len(before) == 2  # by margin: the failing, shorter distance first
    clicked = pytester.path / "clicked.html"
    click = "document.querySelector('table.st-metrics th:nth-child(3)').click();"
    clicked.write_text(merged_page.read_text().replace("</body>", f"<script>{click}{click}</script></body>"))
    after = dash(_chromium("--dump-dom", clicked.as_uri())).tables["st-metrics"][1:]
    assert [float(r[2]) for r in after] == sorted(before, reverse=True)


def test_report_cli_without_metrics_needs_history(tmp_path: Path) -> None:
    code = subprocess.run(
        [sys.executable, "-m", "pytest_simtwin.cli", "report", "-o", str(tmp_path / "x.html")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert code.returncode != 0 and "nothing to report" in code.stderr


@needs_chromium
def test_plot_hover_and_zoom_in_chromium(tmp_path: Path) -> None:
    """The inline script answers a mouse move over a plot with the values there, and the wheel zooms."""
    rec = record("t.py::test_a")
    rec.trajectory.update(cmd_t=[0.0, 1.5], cmd_vx=[0.5, 0.0], cmd_wz=[0.0, 0.0], vx=[0.5, 0.5, 0.0], wz=[0.0] * 3)
    page = tmp_path / "r.html"
    script = """<script>
    var svgs = document.querySelectorAll('.simtwin svg.st-plot');  // the test block's: trajectory, vx, wz
    function at(svg, fx, fy, type, extra) {
      var r = svg.querySelector('.st-area').getBoundingClientRect();
      var init = Object.assign({clientX: r.left + r.width * fx, clientY: r.top + r.height * fy, bubbles: true,
                                cancelable: true}, extra || {});
      svg.dispatchEvent(type === 'wheel' ? new WheelEvent(type, init) : new MouseEvent(type, init));
    }
    at(svgs[0], 0.5, 0.5, 'mousemove');
    at(svgs[1], 0.9, 0.5, 'mousemove');
    at(svgs[0], 0.5, 0.5, 'wheel', {deltaY: -100});
    </script></body>"""
    page.write_text(standalone([rec]).replace("</body>", script))
    dom = _chromium("--dump-dom", page.as_uri())
    hovers = [h.split("</text>")[0] for h in dom.split('class="st-hover" x="4" y="12">')[1:]]
    assert hovers[0].startswith("t ") and " yaw " in hovers[0] and "cmd 0.50 m/s" in hovers[0], hovers
    assert hovers[1].startswith("t 2.00 s  measured 0.000  commanded 0.000 m/s"), hovers
    original = dom.split('data-vb="')[1].split('"')[0]
    zoomed = dom.split('class="st-area"')[1].split('viewBox="')[1].split('"')[0]
    assert float(zoomed.split()[2]) == pytest.approx(0.8 * float(original.split()[2]), rel=1e-3)
