"""Faults on the report's plots, as a person sees them: a real ``-n 2`` run with faults, its
pytest-html report opened in headless Chromium (the DOM after the page's scripts ran)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_simtwin.results.faultmarks import position_at, spans

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium; .ci/run installs it)"
)

SUITE = '''
import time

import pytest
from pytest_simtwin import faults

pytestmark = pytest.mark.simtwin(paused=True)


@pytest.mark.simtwin(faults=[faults.wheel_slip("wheel_left_joint", friction=0.2)])
def test_slippery_wheel(robot):
    robot.send_velocity(0.3, 0.0, 2.0)


def test_node_killed_mid_drive(robot, launch_node, tmp_path):
    script = tmp_path / "sleeper.py"
    script.write_text("import itertools, time\\nfor i in itertools.count(): print('tick', i, flush=True); time.sleep(0.05)\\n")
    node = launch_node(script)
    deadline = time.monotonic() + 20
    while "tick 2" not in node.log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)  # wall time: the node's own output, not the simulation
    robot.send_velocity(0.2, 0.0, 0.5, stop=False)
    node.kill()
    robot.send_velocity(0.2, 0.0, 0.5)


def test_blind_lidar_for_a_while(robot, sim):
    t0 = sim.state()["sim_time"]
    sim.inject(faults.lidar_sector(-15, 15, at=t0 + 0.5, duration=1.0))
    push = sim.inject(faults.push(fy=30.0, at=t0 + 1.8, duration=None))
    robot.send_velocity(0.3, 0.0, 2.0, stop=False)
    push.clear()
    robot.send_velocity(0.0, 0.0, 0.5)
    raise AssertionError("failed on purpose: the PNG figures are drawn for failures")
'''


def _faults(dom: str) -> list[dict[str, str]]:
    """Every fault marker in the DOM: its attributes and hover text."""
    out = []
    for m in re.finditer(r'<g class="st-fault" ([^>]*)><title>([^<]*)</title>', dom):
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', m.group(1)))
        out.append({**attrs, "hover": m.group(2)})
    return out


def _report_run(pytester: pytest.Pytester) -> pytest.RunResult:
    """The suite under -n 2 with a metrics file and a self-contained pytest-html report in out/."""
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--simtwin-metrics-json=m.json", "--html=out/report.html",
        "--self-contained-html",
    )  # fmt: skip


@needs_chromium
def test_faults_are_marked_on_the_plots_in_the_browser(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_f=SUITE)
    result = _report_run(pytester)
    result.assert_outcomes(passed=2, failed=1)
    page = pytester.path / "out" / "report.html"
    assert CHROMIUM is not None
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout  # fmt: skip
    starts = [(m.start(), m.group(1)) for m in re.finditer(r'<div class="simtwin" id="(t-[^"]+)"', dom)]
    blocks = {name: dom[at : (starts[i + 1][0] if i + 1 < len(starts) else len(dom))] for i, (at, name) in enumerate(starts)}
    assert len(blocks) == 3, blocks.keys()
    records = {r["nodeid"]: r for r in json.loads((pytester.path / "m.json").read_text())["tests"]}
    marks = _faults(blocks["t-test-f-py--test-blind-lidar-for-a-while"])
    # each fault on the trajectory and on both velocity plots (linear, angular)
    assert sorted(m["data-kind"] for m in marks) == ["lidar_sector"] * 3 + ["push"] * 3, marks
    slip_marks = _faults(blocks["t-test-f-py--test-slippery-wheel"])
    assert [m["data-kind"] for m in slip_marks] == ["wheel_friction"] * 3, slip_marks
    (killed,) = _faults(blocks["t-test-f-py--test-node-killed-mid-drive"])[:1]  # a node fault: an instant
    node_fault = records["test_f.py::test_node_killed_mid_drive"]["faults"][0]
    assert killed["data-kind"] == "node_kill" and killed["data-start"] == killed["data-end"]
    assert float(killed["data-start"]) == pytest.approx(node_fault["at"], abs=1e-3)
    assert "fault node_kill on sleeper: at " in killed["hover"]
    # the node's log around the kill: its last lines, then the fault's line
    (log,) = re.findall(r'<details class="simtwin-node-log"[^>]*>(.*?)</details>', blocks["t-test-f-py--test-node-killed-mid-drive"], re.S)
    assert "log of node sleeper around its node_kill at t=" in log
    before, marker = log.split("-----")[0], log.split("-----")[1]
    assert "tick 2" in before and "node_kill of node sleeper" in marker
    assert node_fault["log_before"].splitlines()[-1].startswith("tick ")
    # the dashboard's card of the failing test shows the same plots, markers included (its gallery: below)
    dashboard = dom.split('class="simtwin" id=')[0]
    assert len(_faults(dashboard.split('class="st-gallery"')[0])) == 6
    assert len(_faults(dashboard.split('class="st-gallery"')[1])) == 4  # one per fault, on each thumbnail
    blind = records["test_f.py::test_blind_lidar_for_a_while"]["faults"]
    sector, push = blind
    lidar = [m for m in marks if m["data-kind"] == "lidar_sector"]
    assert all(float(m["data-start"]) == pytest.approx(sector["at"], abs=1e-3) for m in lidar)
    assert all(float(m["data-end"]) == pytest.approx(sector["at"] + 1.0, abs=1e-3) for m in lidar)
    assert "fault lidar_sector on /scan" in lidar[0]["hover"] and "min_deg=-15" in lidar[0]["hover"]
    pushed = next(m for m in marks if m["data-kind"] == "push")
    assert float(pushed["data-end"]) == pytest.approx(push["cleared_at"], abs=1e-3)  # ended where it was cleared
    # the labels, in screen space next to the markers
    labels = re.findall(r'<text class="st-fault-label"[^>]*>([^<]*)<title>', "".join(blocks.values()))
    assert labels.count("lidar_sector /scan") == 3 and labels.count("wheel_friction wheel_left_joint") == 3, labels
    # the trajectory of the slipping test shows odometry and ground truth, and the legend says so
    trajectory = blocks["t-test-f-py--test-slippery-wheel"].split('class="st-plot"')[1]
    assert ">odometry</text>" in trajectory and ">ground truth</text>" in trajectory
    assert "stroke-dasharray" in trajectory  # the dashed ground-truth path
    # the block lists the faults, and the failing test's PNG figures are there as a fallback
    assert "fault wheel_friction on wheel_left_joint" in blocks["t-test-f-py--test-slippery-wheel"].split('class="simtwin-faults"')[1]
    assert 'alt="trajectory"' in dom and 'alt="velocity"' in dom


GALLERY_SUITE = '''
import pytest
from pytest_simtwin import faults

pytestmark = pytest.mark.simtwin(paused=True)


def test_pushed_sideways(robot, sim):
    t0 = sim.state()["sim_time"]
    sim.inject(faults.push(fy=30.0, at=t0 + 0.5, duration=0.8))
    robot.send_velocity(0.3, 0.0, 2.0)


def test_plain_drive(robot):
    robot.send_velocity(0.3, 0.0, 2.0)
'''

_PURPLE = (0x94, 0x67, 0xBD)  # faultmarks.FAULT_COLOUR, drawn opaque in the start marker and the label


def _purple_pixels(chromium: str, svg: str, folder: Path) -> int:
    """How many pixels of one thumbnail, as Chromium paints it, are the fault colour."""
    from PIL import Image

    page, shot = folder / "thumb.html", folder / "thumb.png"
    page.write_text(f'<!doctype html><body style="margin:0;background:#fff">{svg}</body>')
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--disable-background-networking"]
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=160,120", page.as_uri()],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20) or []
    return sum(n for n, c in colours if max(abs(a - b) for a, b in zip(c, _PURPLE, strict=True)) < 24)


@needs_chromium
def test_the_gallery_thumbnail_of_a_faulted_test_shows_its_fault(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_g=GALLERY_SUITE)
    result = _report_run(pytester)
    result.assert_outcomes(passed=2)
    assert CHROMIUM is not None
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", (pytester.path / "out" / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout  # fmt: skip
    (gallery,) = re.findall(r'<div class="st-gallery">(.*?)</div>', dom, re.S)
    thumbs = {m.group(1).split(" (")[0]: (m.group(1), m.group(2)) for m in
              re.finditer(r'<a [^>]*title="([^"]*)">(<svg.*?</svg>)', gallery, re.S)}  # fmt: skip
    assert set(thumbs) == {"test_g.py::test_pushed_sideways", "test_g.py::test_plain_drive"}, thumbs.keys()
    records = {r["nodeid"]: r for r in json.loads((pytester.path / "m.json").read_text())["tests"]}
    (push,) = records["test_g.py::test_pushed_sideways"]["faults"]
    title, svg = thumbs["test_g.py::test_pushed_sideways"]
    (mark,) = _faults(svg)  # the same marker group as the report's trajectory plot
    assert mark["data-kind"] == "push"
    assert float(mark["data-start"]) == pytest.approx(push["at"], abs=1e-3)
    assert float(mark["data-end"]) == pytest.approx(push["at"] + 0.8, abs=1e-3)
    assert mark["hover"].startswith("fault push: ") and "fy=30" in mark["hover"]
    group = svg.split('class="st-fault"')[1].split("</g>")[0]
    assert "<polyline" in group and "<polygon" in group  # the stretch driven under the fault, the start diamond
    assert re.search(r'<text class="st-fault-label"[^>]*>push<title>fault push: ', svg)  # its name, hover: details
    assert "faults: push" in title  # the link's tooltip names it too
    plain_title, plain = thumbs["test_g.py::test_plain_drive"]
    assert "st-fault" not in plain and "faults:" not in plain_title and "<polyline" in plain
    # as a person sees it: the fault colour painted in the faulted thumbnail only
    assert _purple_pixels(CHROMIUM, svg, pytester.path) > 20
    assert _purple_pixels(CHROMIUM, plain, pytester.path) == 0


def test_fault_spans_end_at_their_duration_their_clearing_or_the_recording() -> None:
    faults = [
        {"kind": "blackout", "target": "/scan", "at": 1.0, "duration": 0.5, "cleared_at": 3.0},
        {"kind": "push", "target": "", "at": 2.0, "duration": None, "cleared_at": 2.4, "params": {"fy": 30.0}},
        {"kind": "payload", "target": "", "at": 2.5, "duration": None},  # on until the recording ends
        {"kind": "node_kill", "target": "planner", "at": 3.5, "duration": 0.0},  # an instant
        {"kind": "node_pause", "target": "planner", "wall_time": 1e9},  # no sim time: listed, not drawn
    ]
    got = spans(faults, t_end=4.0)
    assert [(s.kind, s.start, s.end) for s in got] == [
        ("blackout", 1.0, 1.5), ("push", 2.0, 2.4), ("payload", 2.5, 4.0), ("node_kill", 3.5, 3.5),
    ]  # fmt: skip
    assert got[1].label == "push" and got[1].hover == "fault push: 2.00–2.40 s (fy=30)"
    assert got[3].hover == "fault node_kill on planner: at 3.50 s"
    assert position_at([0.0, 1.0, 2.0], [0.0, 1.0, 2.0], [0.0, 0.0, 2.0], 1.5) == (1.5, 1.0)
    assert position_at([0.0, 1.0], [0.0, 1.0], [0.0, 0.0], 9.0) == (1.0, 0.0)
