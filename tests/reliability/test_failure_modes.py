"""Failure modes not covered elsewhere: real pytest runs with the plugin, killed or starved on purpose.

Already covered (not repeated here): SIGKILL of a worker / of the whole run with simulators only
(tests/test_isolation.py), a simulator SIGKILLed mid-test in a plain run
(tests/test_plugin_pytester.py), a hanging node stopped by NodeLauncher directly (tests/test_nodes.py),
a SIGKILL during a baseline update (tests/test_baseline.py), docker containers after a killed run
(tests/docker/test_docker_kill_run.py). Here: the same through the plugin under xdist, with nodes
under test, the metrics file, and a used-up domain range.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.backends.processes import partition_members
from pytest_simtwin.ros import domains

RUN = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]


def _pytest(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> tuple[int, str]:
    res = subprocess.run(
        [*RUN, *args], cwd=cwd, env=env or dict(os.environ), capture_output=True, text=True, timeout=timeout
    )
    return res.returncode, res.stdout + res.stderr


# -- domain range used up ------------------------------------------------------------------------
TWO_WORKERS = """
import time

def test_a(sim):
    time.sleep(1.0)  # both workers are inside their session before either finishes

def test_b(sim):
    time.sleep(1.0)
"""


def test_domain_range_used_up_errors_the_second_worker(tmp_path: Path) -> None:
    ids = domains.parse_domain_range(domains.DEFAULT_DOMAIN_RANGE)
    # Hold a real lease on the host so nobody else uses the id, and give the run a private lease
    # folder in which that one id is its whole range: one worker gets it, the other finds none.
    with domains.acquire_domain(ids, owner="test_domain_range_used_up", prefer=ids[len(ids) * 2 // 3]) as lease:
        (tmp_path / "test_two.py").write_text(TWO_WORKERS)
        (tmp_path / "pytest.ini").write_text("[pytest]\n")
        env = dict(os.environ, SIMTWIN_STATE_DIR=str(tmp_path / "state"))
        n = lease.domain_id
        code, out = _pytest(tmp_path, "-n", "2", "--dist", "load", "--simtwin-domain-range", f"{n}-{n}", env=env)
    assert code == 1, out
    assert re.search(r"\b1 passed\b", out) and re.search(r"\b1 error\b", out), out
    assert "DomainError: no free ROS_DOMAIN_ID: all 1 domains of the configured range are leased" in out, out
    assert "Use fewer xdist workers (-n), widen --simtwin-domain-range" in out, out
    assert "INTERNALERROR" not in out


# -- a simulator crashing mid-test, under xdist ---------------------------------------------------
CRASH = """
import os, signal

from pytest_simtwin.backends.processes import partition_members

def test_a_sim_dies(sim, robot):
    for pid in partition_members(sim.partition):
        if "pytest_simtwin.sim" in open(f"/proc/{pid}/cmdline").read():
            os.kill(pid, signal.SIGKILL)
    robot.send_velocity(0.2, 0.0, 1.0)

def test_b_next_gets_a_fresh_simulator(sim, robot):
    robot.send_velocity(0.2, 0.0, 0.5)
    assert sim.alive and robot.distance_travelled > 0.05
"""


def test_simulator_crash_mid_test_is_an_error_under_xdist(tmp_path: Path) -> None:
    (tmp_path / "test_crash.py").write_text(CRASH)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    metrics = tmp_path / "metrics.json"
    code, out = _pytest(tmp_path, "-n", "1", "--simtwin-metrics-json", str(metrics), "-rA")
    assert code == 1, out
    assert re.search(r"\b1 passed\b", out) and re.search(r"\b1 error\b", out) and "failed" not in out.split("===")[-1]
    assert "SimulatorDiedError" in out and "exited with code -9 during the test" in out, out
    assert "lines of simulator log" in out
    doc = json.loads(metrics.read_text())
    outcomes = {t["nodeid"].split("::")[-1]: t["outcome"] for t in doc["tests"]}
    assert outcomes == {"test_a_sim_dies": "error", "test_b_next_gets_a_fresh_simulator": "passed"}, outcomes


# -- a node under test that ignores SIGINT and SIGTERM --------------------------------------------
STUCK = """
import json, os, sys, time

STUCK_NODE = (
    "import signal, time\\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
    "print('SIGNALS' + ' IGNORED', flush=True)\\n"  # split: the log's first line echoes the command
    "time.sleep(600)\\n"
)

def test_with_a_stuck_node(sim, launch_node):
    node = launch_node([sys.executable, "-c", STUCK_NODE], name="stuck")
    deadline = time.monotonic() + 30
    while "SIGNALS IGNORED" not in node.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)  # its handlers are installed once it printed
    assert node.alive
    with open(os.environ["NODE_INFO"], "w") as fh:
        json.dump({"pid": node.pid, "log": str(node.log_path)}, fh)
"""


def test_hanging_node_is_killed_at_teardown_within_the_bound(tmp_path: Path) -> None:
    from pytest_simtwin.helpers import nodes

    (tmp_path / "test_stuck.py").write_text(STUCK)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    info_path, metrics = tmp_path / "node.json", tmp_path / "metrics.json"
    env = dict(os.environ, NODE_INFO=str(info_path))
    code, out = _pytest(tmp_path, "--durations=0", "-vv", "--simtwin-metrics-json", str(metrics), env=env)
    assert code == 0, out
    info = json.loads(info_path.read_text())
    assert not domains.process_alive(info["pid"]), f"node {info['pid']} survived the test"
    teardown = re.search(r"([\d.]+)s teardown\s+test_stuck.py::test_with_a_stuck_node", out)
    assert teardown, out
    bound = nodes.SIGINT_GRACE + nodes.TERM_GRACE + 5.0  # the grace periods plus slack for a loaded host
    assert float(teardown.group(1)) < bound, f"teardown took {teardown.group(1)} s, bound {bound} s"
    # The run reports the kill under the test (warnings summary) ...
    assert "test_stuck.py::test_with_a_stuck_node" in out.split("warnings summary")[-1], out
    assert f"node stuck (pid {info['pid']}) ignored SIGINT and SIGTERM and was killed with SIGKILL" in out, out
    # ... and keeps the node's log (the metrics file, the HTML report and failure bundles link it).
    record = json.loads(metrics.read_text())["tests"][0]
    assert record["artifacts"].get("node:stuck") == info["log"], record["artifacts"]


# -- SIGKILL of the whole run while a node under test runs -----------------------------------------
NODE_RUNNING = """
import json, os, sys, time

def test_node_runs(sim, launch_node, simtwin_session):
    node = launch_node([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"], name="sleeper")
    info = {"worker_pid": os.getpid(), "partition": sim.partition, "lease": str(simtwin_session.lease.path),
            "node": node.pid, "members": [int(p) for p in __import__(
                "pytest_simtwin.backends.processes", fromlist=["x"]).partition_members(sim.partition)]}
    out = os.path.join(os.environ["INFO_DIR"], f"{os.getpid()}.json")
    with open(out + ".tmp", "w") as fh:
        json.dump(info, fh)
    os.replace(out + ".tmp", out)
    time.sleep(600)
"""


def _lease_free_of(lease_path: str, pid: int) -> bool:
    fd = domains._try_lock(Path(lease_path))
    if fd is not None:
        os.close(fd)
        return True
    try:
        return json.loads(Path(lease_path).read_text() or "{}").get("owner_pid") != pid
    except (OSError, ValueError):
        return True


def test_sigkill_of_the_run_with_nodes_under_test_leaves_nothing(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "test_node.py").write_text(NODE_RUNNING)
    (project / "pytest.ini").write_text("[pytest]\n")
    info_dir = tmp_path / "info"
    info_dir.mkdir()
    env = dict(os.environ, INFO_DIR=str(info_dir))
    proc = subprocess.Popen(
        [*RUN, "-n", "2", "--max-worker-restart=0", "-k", "test_node_runs"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: any(info_dir.glob("*.json")), 180, what="the test to start its node")
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # the controller only: workers, simulators and nodes must follow
        proc.wait()
    infos: list[dict[str, Any]] = [json.loads(p.read_text()) for p in info_dir.glob("*.json")]
    assert infos and all(info["node"] in info["members"] for info in infos), infos
    (project / "test_next.py").write_text("def test_next():\n    pass\n")
    code, out = _pytest(project, "test_next.py", timeout=120)  # the next start reaps what is left
    assert code == 0, out
    for info in infos:
        wait_until(
            lambda info=info: not partition_members(info["partition"]),
            15,
            what=f"every process of {info['partition']} (simulator and node) to be gone",
            describe=lambda info=info: f"still running: {partition_members(info['partition'])}",
        )
        for pid in info["members"]:
            assert not domains.process_alive(pid), pid
        assert _lease_free_of(info["lease"], info["worker_pid"])


# -- SIGKILL while the metrics file is written ------------------------------------------------------
BIG_RECORDS = """
import pytest
from pytest_simtwin.results.records import record_for

@pytest.mark.parametrize("i", range(150))
def test_many(request, record_metric, i):
    record_metric("value", float(i), unit="m", tolerance=1e9)
    rec = record_for(request.node)
    rec.trajectory = {k: [j * 0.001 + i for j in range(600)] for k in ("t", "x", "y", "yaw", "vx", "wz")}
"""


def _watch_and_kill(proc: subprocess.Popen[bytes], folder: Path, target: Path, timeout: float) -> bool:
    """SIGKILL ``proc`` the moment it starts writing ``target`` (a temp file appears or target changes).

    Returns True if the kill landed while a write was in progress.
    """
    before = target.stat() if target.exists() else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        names = os.listdir(folder)
        changed = target.exists() and (before is None or target.stat().st_mtime_ns != before.st_mtime_ns)
        if changed or any(n.startswith(f".{target.name}.") for n in names):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.0005)
    proc.kill()
    proc.wait()
    return False


def test_sigkill_while_writing_the_metrics_file_leaves_old_or_complete(tmp_path: Path) -> None:
    (tmp_path / "test_big.py").write_text(BIG_RECORDS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    metrics = out_dir / "metrics.json"
    old = json.dumps({"format": "simtwin-metrics", "version": 1, "old": True, "tests": []})
    metrics.write_text(old)
    hits = 0
    for _ in range(3):
        proc = subprocess.Popen(
            [*RUN, "-q", "test_big.py", "--simtwin-metrics-json", str(metrics)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        hits += _watch_and_kill(proc, out_dir, metrics, timeout=240)
        doc = json.loads(metrics.read_text())  # never torn: parses every time
        assert doc.get("old") is True or len(doc["tests"]) == 150, list(doc)
        if doc.get("old") is not True:
            metrics.write_text(old)
    assert hits >= 1, "no kill landed while the metrics file was being written"
