"""HTML blocks, pytest-html integration, merged metrics file and JUnit properties (under xdist)."""

from __future__ import annotations

import base64
import json
import math
import shutil
import subprocess
import textwrap
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pytest_simtwin.results import html as report
from pytest_simtwin.results import plots
from pytest_simtwin.results.metrics import MetricRecord
from pytest_simtwin.results.records import ResultsCollector, TestRecord, combine_outcome, downsample, load_metrics_file

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Collect(HTMLParser):
    """Images (decoded PNG data URIs) and tables (by class) of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[tuple[str, bytes]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img" and (a.get("src") or "").startswith("data:image/png;base64,"):
            self.images.append((a.get("alt") or "", base64.b64decode((a["src"] or "").split(",", 1)[1])))
        elif tag == "table":
            self._table = a.get("class") or ""
            self.tables.setdefault(self._table, [])
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None


def parse(html_text: str) -> Collect:
    c = Collect()
    c.feed(html_text)
    return c


def drive_record(nodeid: str = "t.py::test_a", speed: float = 0.5) -> TestRecord:
    rec = TestRecord(nodeid, outcome="passed", wall_duration=1.5, sim_duration=3.0)
    t = [i * 0.02 for i in range(151)]
    rec.trajectory = {
        "t": t,
        "x": [speed * min(v, 2.0) for v in t],
        "y": [0.02 * math.sin(v) for v in t],
        "yaw": [0.0] * len(t),
        "vx": [speed if v < 2.0 else 0.0 for v in t],
        "wz": [0.0] * len(t),
        "gt_x": [speed * min(v, 2.0) * 0.999 for v in t],
        "gt_y": [0.0] * len(t),
        "cmd_t": [0.0, 2.0],
        "cmd_vx": [speed, 0.0],
        "cmd_wz": [0.0, 0.0],
    }
    rec.obstacles = [{"name": "wall", "shape": "box", "size": [0.1, 1.0, 0.3], "x": 1.5, "y": 0.0, "yaw": 0.0}]
    rec.add_metric(MetricRecord("distance", speed * 2, "m", 0.8, "higher"))
    rec.add_metric(MetricRecord("position_error", 0.02, "m", 0.01))
    return rec


def test_block_has_plots_metrics_and_baseline_tables() -> None:
    rec = drive_record()
    rec.baseline = [
        {
            "name": "distance",
            "verdict": "regression",
            "baseline": 1.1,
            "current": 1.0,
            "delta": -0.1,
            "band": 0.05,
            "unit": "m",
        },
        {
            "name": "position_error",
            "verdict": "unchanged",
            "baseline": 0.02,
            "current": 0.02,
            "delta": 0.0,
            "band": 0.001,
            "unit": "m",
        },
    ]
    rec.baseline_verdict = "regression"
    rec.baseline_trajectory = {"x": [0.0, 1.1], "y": [0.0, 0.0]}
    assert parse(report.test_block(rec)).images == []  # a passing test: inline SVG plots only
    block = report.test_block(rec, png=True)
    assert block.count('<svg class="st-plot"') == 3  # trajectory, linear and angular velocity
    doc = parse(block)
    assert [name for name, _ in doc.images] == ["trajectory", "velocity"]
    assert all(png.startswith(PNG_MAGIC) and len(png) > 5000 for _, png in doc.images)
    metrics = doc.tables["simtwin-metrics"]
    assert metrics[0] == ["metric", "value", "tolerance", "unit", "pass"]
    assert metrics[1] == ["distance", "1", "≥ 0.8", "m", "pass"]
    assert metrics[2] == ["position_error", "0.02", "≤ 0.01", "m", "FAIL"]
    base = doc.tables["simtwin-baseline"]
    assert base[0] == ["metric", "baseline", "current", "delta", "unit", "verdict"]
    assert base[1] == ["distance", "1.1", "1", "-0.1 (-9.1 %)", "m", "regression"]


def test_png_artifacts_are_shown_inline(tmp_path: Path) -> None:
    """A figure a test wrote itself (the twin validation PNG) appears in the block; a vanished one does not."""
    rec = TestRecord("t.py::test_twin", trajectory={"t": [0.0, 1.0], "x": [0.0, 1.0], "y": [0.0, 0.0]})
    png = plots.figures(rec)["trajectory"]
    (tmp_path / "validation_report.png").write_bytes(png)
    rec.artifacts = {
        "twin_validation_png": str(tmp_path / "validation_report.png"),
        "gone_png": str(tmp_path / "missing.png"),
        "simulator_log": str(tmp_path / "sim.log"),
    }
    doc = parse(report.test_block(rec))
    names = [name for name, _ in doc.images]
    assert "twin_validation_png" in names and "gone_png" not in names
    assert dict(doc.images)["twin_validation_png"] == png


def test_plots_render_without_data_gracefully() -> None:
    assert plots.figures(TestRecord("t.py::test_empty")) == {}
    only_cmd = TestRecord("t.py::x", trajectory={"cmd_t": [0.0, 1.0], "cmd_vx": [0.2, 0.0], "cmd_wz": [0.0, 0.0]})
    assert set(plots.figures(only_cmd)) == {"velocity"}


def test_standalone_report_is_self_contained() -> None:
    passed = drive_record("t.py::test_ok")
    failed = drive_record("t.py::test_bad", speed=0.2)
    failed.outcome, failed.message = "failed", "AssertionError: too slow"
    text = report.standalone([passed, failed], source="m.json")
    doc = parse(text)
    assert [n for n, _ in doc.images] == ["trajectory", "velocity"]  # PNGs of the failing test only
    # the dashboard's timings table lists the failing test first
    assert [row[0] for row in doc.tables["st-timings st-sort"][1:]] == ["t.py::test_bad", "t.py::test_ok"]
    assert "AssertionError: too slow" in text
    # self-contained: no network at view time, one inline script
    assert 'src="http' not in text and "<link" not in text and text.count("<script") == 1
    assert "<script src" not in text and "fetch(" not in text


def test_downsample_keeps_ends_and_alignment() -> None:
    traj = {"t": [float(i) for i in range(10_000)], "x": [float(2 * i) for i in range(10_000)], "cmd_t": [0.0, 1.0]}
    small = downsample(traj, 100)
    assert len(small["t"]) == len(small["x"]) == 100
    assert small["t"][0] == 0.0 and small["t"][-1] == 9999.0
    assert all(x == 2 * t for t, x in zip(small["t"], small["x"], strict=True))
    assert small["cmd_t"] == [0.0, 1.0]


def test_combine_outcome() -> None:
    assert combine_outcome({"setup": "passed", "call": "passed", "teardown": "passed"}) == "passed"
    assert combine_outcome({"setup": "failed", "teardown": "passed"}) == "error"
    assert combine_outcome({"setup": "passed", "call": "failed", "teardown": "failed"}) == "failed"
    assert combine_outcome({"setup": "passed", "call": "passed", "teardown": "failed"}) == "error"
    assert combine_outcome({"setup": "skipped", "teardown": "passed"}) == "skipped"
    assert combine_outcome({"???": "failed"}) == "failed"  # a crashed xdist worker


def test_crashed_worker_test_is_in_the_metrics_file_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_c="import os\n\ndef test_crash():\n    os._exit(3)\n\ndef test_ok():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--simtwin-metrics-json=m.json")
    result.assert_outcomes(passed=1, failed=1)
    tests = json.loads((pytester.path / "m.json").read_text())["tests"]
    assert [(t["nodeid"], t["outcome"]) for t in tests] == [
        ("test_c.py::test_crash", "failed"),
        ("test_c.py::test_ok", "passed"),
    ]
    assert "crashed" in tests[0]["message"]


SUITE = """
    import math
    import pytest
    from pytest_simtwin.results.records import record_for

    def fill(request, speed):
        rec = record_for(request.node)
        t = [i * 0.05 for i in range(60)]
        rec.trajectory = {"t": t, "x": [speed * v for v in t], "y": [0.0] * 60, "vx": [speed] * 60,
                          "wz": [0.0] * 60, "cmd_t": [0.0, 3.0], "cmd_vx": [speed, 0.0], "cmd_wz": [0.0, 0.0]}
        rec.obstacles = [{"name": "box", "shape": "box", "size": [0.2, 0.2, 0.2], "x": 2.0, "y": 0.0, "yaw": 0.0}]
        rec.sim_duration = 3.0

    @pytest.mark.parametrize("i", range(12))
    def test_drive(request, record_metric, i):
        fill(request, 0.5)
        record_metric("distance", 1.5, "m", tolerance=1.0, direction="higher")

    def test_too_slow(request, record_metric):
        fill(request, 0.1)
        m = record_metric("distance", 0.3, "m", tolerance=1.0, direction="higher")
        assert m.passed, "robot too slow"

    def test_plain():
        pass

    def test_skipped():
        pytest.skip("nothing to do")

    @pytest.mark.xfail(reason="known")
    def test_xfail():
        assert False

    @pytest.fixture
    def broken_teardown():
        yield
        raise RuntimeError("teardown broke")

    def test_teardown_error(broken_teardown, record_metric):
        record_metric("nan_metric", math.nan, "m", tolerance=1.0)

    @pytest.fixture
    def broken_setup():
        raise RuntimeError("setup broke")

    def test_setup_error(broken_setup):
        pass
"""

EXPECTED = {
    **{f"test_suite.py::test_drive[{i}]": "passed" for i in range(12)},
    "test_suite.py::test_too_slow": "failed",
    "test_suite.py::test_plain": "passed",
    "test_suite.py::test_skipped": "skipped",
    "test_suite.py::test_xfail": "xfailed",
    "test_suite.py::test_teardown_error": "error",
    "test_suite.py::test_setup_error": "error",
}


def test_xdist_metrics_file_html_and_junit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=textwrap.dedent(SUITE))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "4", "--simtwin-metrics-json=out/metrics.json",
        "--html=out/report.html", "--self-contained-html", "--junitxml=out/junit.xml",
    )  # fmt: skip
    result.assert_outcomes(passed=14, failed=1, skipped=1, xfailed=1, errors=2)
    # metrics file: every test exactly once, from all four workers
    data = json.loads((pytester.path / "out/metrics.json").read_text())
    ids = [t["nodeid"] for t in data["tests"]]
    assert len(ids) == len(set(ids)) == len(EXPECTED)
    assert {t["nodeid"]: t["outcome"] for t in data["tests"]} == EXPECTED
    assert data["summary"]["tests"] == len(EXPECTED)
    assert len({t["worker"] for t in data["tests"]}) >= 2
    by_id = {t["nodeid"]: t for t in data["tests"]}
    slow = by_id["test_suite.py::test_too_slow"]
    assert slow["metrics"][0]["value"] == 0.3 and slow["metrics"][0]["passed"] is False
    assert "robot too slow" in slow["message"]
    assert slow["sim_duration"] == 3.0 and slow["wall_duration"] > 0
    assert by_id["test_suite.py::test_teardown_error"]["metrics"][0]["value"] == "nan"
    assert len(by_id["test_suite.py::test_drive[3]"]["trajectory"]["x"]) == 60
    assert load_metrics_file(pytester.path / "out/metrics.json")[0].nodeid == sorted(EXPECTED)[0]

    # HTML: plots and tables for the passing and the failing simulation tests
    html_text = (pytester.path / "out/report.html").read_text()
    blob = _pytest_html_data(html_text)
    for nodeid in ("test_suite.py::test_drive[0]", "test_suite.py::test_too_slow"):
        extras = [e for t in blob["tests"][nodeid] for e in t.get("extras", []) if e["format_type"] == "html"]
        assert len(extras) == 1, nodeid
        doc = parse(extras[0]["content"])
        # PNGs (the static fallback, also in the failure bundle) for the failing test; SVG plots for both
        assert [n for n, _ in doc.images] == ([] if nodeid.endswith("[0]") else ["trajectory", "velocity"])
        assert all(png.startswith(PNG_MAGIC) for _, png in doc.images)
        assert extras[0]["content"].count('<svg class="st-plot"') == 3
        assert doc.tables["simtwin-metrics"][1][0] == "distance"
    assert not [e for t in blob["tests"]["test_suite.py::test_plain"] for e in t.get("extras", [])]

    # JUnit XML: metrics as properties
    root = ET.parse(pytester.path / "out/junit.xml").getroot()
    props = {
        (case.get("name"), p.get("name")): p.get("value")
        for case in root.iter("testcase")
        for p in case.iter("property")
    }
    assert props[("test_too_slow", "simtwin:metric:distance")] == "0.3"
    assert props[("test_drive[5]", "simtwin:metric:distance")] == "1.5"
    assert props[("test_drive[5]", "simtwin:baseline")] == "new"


def _pytest_html_data(html_text: str) -> dict:  # type: ignore[type-arg]
    import html as _html
    import re

    match = re.search(r'data-jsonblob="([^"]*)"', html_text)
    assert match, "pytest-html data blob not found"
    return json.loads(_html.unescape(match.group(1)))  # type: ignore[no-any-return]


def test_without_pytest_html_nothing_breaks(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_suite=textwrap.dedent(SUITE))
    # only the plugins this run needs: pytest-metadata and pytest-html would import the shadowed package
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    # as if pytest-html were not installed: its import fails (and its plugin is not loaded)
    pytester.mkpydir("pytest_html").joinpath("__init__.py").write_text("raise ImportError('not installed')\n")
    pytester.makepyfile(
        test_no_html="def test_import():\n    import pytest\n    with pytest.raises(ImportError):\n        import pytest_html\n"
    )
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "xdist",
        "-p",
        "pytest_simtwin.plugin.hooks",
        "-n",
        "2",
        "--simtwin-metrics-json=m.json",
    )
    result.assert_outcomes(passed=15, failed=1, skipped=1, xfailed=1, errors=2)
    assert len(json.loads((pytester.path / "m.json").read_text())["tests"]) == len(EXPECTED) + 1


def test_collector_counts_reruns_once() -> None:
    class Rep:
        def __init__(self, when: str, outcome: str) -> None:
            self.nodeid, self.when, self.outcome, self.duration, self.longrepr = "t.py::x", when, outcome, 0.1, None
            self.failed = outcome == "failed"

    c = ResultsCollector()
    for when, outcome in [
        ("setup", "passed"),
        ("call", "rerun"),
        ("setup", "passed"),
        ("call", "passed"),
        ("teardown", "passed"),
    ]:
        c.add_report(Rep(when, outcome))  # type: ignore[arg-type]
    assert [r.outcome for r in c.ordered()] == ["passed"]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    passed = drive_record("t.py::test_ok")
    failed = drive_record("t.py::test_bad", speed=0.2)
    failed.outcome = "failed"
    page = tmp_path / "r.html"
    page.write_text(report.standalone([passed, failed]))
    shot = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri()],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    assert shot.read_bytes().startswith(PNG_MAGIC) and shot.stat().st_size > 20_000


SIM_SUITE = """
    import pytest

    @pytest.mark.parametrize("speed", [0.3, 0.5])
    def test_reaches_goal(sim, robot, record_metric, speed):
        sim.spawn_obstacle("crate", "box", (0.2, 0.2, 0.2), x=1.5, y=0.4)
        robot.send_velocity(speed, 0.2, 2.0)
        record_metric("distance", robot.displacement, "m", tolerance=0.4, direction="higher")

    @pytest.mark.parametrize("turn", [0.5, 1.0])
    def test_too_slow(sim, robot, record_metric, turn):
        robot.send_velocity(0.2, turn, 1.0)
        m = record_metric("distance", robot.displacement, "m", tolerance=0.5, direction="higher")
        assert m.passed, "the robot did not get far enough"
"""


def test_real_simulator_report_under_xdist(pytester: pytest.Pytester) -> None:
    """Passing and failing simulation tests on four workers: every test once in the metrics
    file, and in the HTML report a trajectory with the obstacle, a velocity plot and the metrics."""
    pytester.makepyfile(test_sim=textwrap.dedent(SIM_SUITE))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "4", "--simtwin-metrics-json=m.json", "--html=report.html",
        "--self-contained-html",
    )  # fmt: skip
    result.assert_outcomes(passed=2, failed=2)
    data = json.loads((pytester.path / "m.json").read_text())
    outcomes = {t["nodeid"]: t["outcome"] for t in data["tests"]}
    assert outcomes == {
        "test_sim.py::test_reaches_goal[0.3]": "passed",
        "test_sim.py::test_reaches_goal[0.5]": "passed",
        "test_sim.py::test_too_slow[0.5]": "failed",
        "test_sim.py::test_too_slow[1.0]": "failed",
    }
    assert len(data["tests"]) == 4
    for t in data["tests"]:
        assert t["sim_duration"] > 0.9 and len(t["trajectory"]["x"]) > 20
        # sim.spawn_obstacle records what the trajectory plot draws
        expected = [{"name": "crate", "shape": "box", "size": [0.2, 0.2, 0.2], "x": 1.5, "y": 0.4, "yaw": 0.0}]
        assert t["obstacles"] == (expected if "reaches_goal" in t["nodeid"] else [])
        assert t["provenance"]["simulator"] == "simtwin-sim"
        assert t["provenance"]["world"] == "builtin" and len(t["provenance"]["world_sha256"]) == 64
    blob = _pytest_html_data((pytester.path / "report.html").read_text())
    for nodeid in outcomes:
        (extra,) = [e for t in blob["tests"][nodeid] for e in t.get("extras", []) if e["format_type"] == "html"]
        doc = parse(extra["content"])
        failing = "too_slow" in nodeid
        assert [n for n, _ in doc.images] == (["trajectory", "velocity"] if failing else []), nodeid
        assert '<svg class="st-plot"' in extra["content"] and "<rect" in extra["content"]
        assert doc.tables["simtwin-metrics"][1][0] == "distance"
    # standalone report from the same file
    from pytest_simtwin.cli import main

    assert main(["report", str(pytester.path / "m.json"), "-o", str(pytester.path / "standalone.html")]) == 0
    doc = parse((pytester.path / "standalone.html").read_text())
    assert len(doc.images) == 4  # the two failing tests' PNGs
