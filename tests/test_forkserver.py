"""The warm fork server: forked simulators behave like plain ``simtwin-sim`` processes, and nothing outlives its owner."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.backends import forkclient
from pytest_simtwin.backends.processes import partition_members
from pytest_simtwin.ros import domains
from pytest_simtwin.ros.domains import DEFAULT_DOMAIN_RANGE, acquire_domain, parse_domain_range
from pytest_simtwin.ros.environment import ros_environment
from pytest_simtwin.ros.session import RosSession


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[tuple[forkclient.ForkServer, subprocess.Popen[bytes]]]:
    """A server of our own (not the machine's shared one), so its lifetime can be asserted."""
    name = f"simtwin-fork-test-{uuid.uuid4().hex[:8]}"
    proc = forkclient._start_server(name, tmp_path / "server.log")
    try:
        conn, pid = forkclient._await_server(name, proc, tmp_path / "server.log")
        assert pid == proc.pid
        yield forkclient.ForkServer(name, conn, pid), proc
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def leased() -> Iterator[tuple[domains.DomainLease, dict[str, str]]]:
    """A leased domain and its ROS environment (never domain 0 or one another test holds)."""
    with acquire_domain(parse_domain_range(DEFAULT_DOMAIN_RANGE), owner="tests/forkserver") as lease:
        yield lease, ros_environment(lease.domain_id, lease.partition)


def _request(name: str, payload: bytes) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect("\0" + name)
        conn.sendall(payload)
        reply, _ = forkclient._read_line(conn, 10)
        return reply


def test_a_forked_simulator_publishes_is_findable_and_exits_cleanly(
    private_server: tuple[forkclient.ForkServer, subprocess.Popen[bytes]],
    leased: tuple[domains.DomainLease, dict[str, str]],
    tmp_path: Path,
) -> None:
    from nav_msgs.msg import Odometry

    server, _proc = private_server
    lease, env = leased
    with RosSession(lease.domain_id, env, name="forkserver_test") as ros:
        odom = ros.subscribe("/odom", Odometry)
        log = tmp_path / "sim.log"
        child = server.spawn(["--seed", "3", "--paused"], env=env, log_path=log)
        try:
            wait_until(
                lambda: odom.count > 0,
                20.0,
                what="the forked simulator's first /odom",
                describe=lambda: log.read_text(errors="replace")[-2000:],
            )
            # What reapers and `ps` see is the simulator, not the server it was forked from.
            assert child.pid in partition_members(lease.partition)
            cmdline = Path(f"/proc/{child.pid}/cmdline").read_bytes().split(b"\0")
            assert b"pytest_simtwin.sim" in cmdline and b"--paused" in cmdline
            assert os.getpgid(child.pid) == child.pid  # its own group, like a Popen child
            assert child.poll() is None
            os.kill(child.pid, signal.SIGTERM)
            assert child.wait(timeout=10) == 0
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
    text = log.read_text()
    assert f"ROS_DOMAIN_ID={lease.domain_id}" in text and "stopping: signal SIGTERM" in text


def test_a_killed_simulator_reports_its_signal(
    private_server: tuple[forkclient.ForkServer, subprocess.Popen[bytes]],
    leased: tuple[domains.DomainLease, dict[str, str]],
    tmp_path: Path,
) -> None:
    server, _proc = private_server
    child = server.spawn(["--paused"], env=leased[1], log_path=tmp_path / "sim.log")
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=10) == -signal.SIGKILL


def test_bad_requests_get_an_explanation(
    private_server: tuple[forkclient.ForkServer, subprocess.Popen[bytes]],
) -> None:
    server, _proc = private_server
    assert "expected a JSON object with 'op'" in str(_request(server.name, b"not json\n")["error"])
    assert "spawn request without ['args', 'env', 'log']" in str(_request(server.name, b'{"op": "spawn"}\n')["error"])
    assert "unknown op 'fly'" in str(_request(server.name, b'{"op": "fly"}\n')["error"])


CLIENT = """
import sys, time
from pathlib import Path
from pytest_simtwin.backends.forkclient import ForkServer, _hello
from pytest_simtwin.ros.environment import ros_environment
conn, pid = _hello(sys.argv[1], 10)
child = ForkServer(sys.argv[1], conn, pid).spawn(["--paused"], env=ros_environment(int(sys.argv[3]), sys.argv[4]),
                                                  log_path=Path(sys.argv[2]))
print(child.pid, flush=True)
time.sleep(120)
"""


def test_simulators_die_with_their_client_and_the_idle_server_exits(
    private_server: tuple[forkclient.ForkServer, subprocess.Popen[bytes]],
    leased: tuple[domains.DomainLease, dict[str, str]],
    tmp_path: Path,
) -> None:
    server, proc = private_server
    lease, _env = leased
    argv = [sys.executable, "-c", CLIENT, server.name, str(tmp_path / "sim.log"), str(lease.domain_id), lease.partition]
    client = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert client.stdout is not None
    sim_pid = int(client.stdout.readline())
    assert domains.process_alive(sim_pid)
    client.kill()  # SIGKILL: no cleanup code runs in the client
    client.wait()
    wait_until(lambda: not domains.process_alive(sim_pid), 5.0, what="the orphaned simulator to be killed")
    # Our own keep-alive is the last connection: closing it lets the server exit after its idle time.
    server._keepalive.close()
    t0 = time.monotonic()
    proc.wait(timeout=10)
    assert proc.returncode == 0 and time.monotonic() - t0 < 6.0


def test_the_fork_server_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_simtwin.backends.base import SimConfig
    from pytest_simtwin.backends.embedded import EmbeddedBackend

    backend = EmbeddedBackend(SimConfig(options={"fork_server": False}), lease=None, ros=None, env={}, workdir=tmp_path)
    assert backend.spawner() is None
    monkeypatch.setenv(forkclient.ENV_SWITCH, "0")
    assert forkclient.shared_server() is None
    assert EmbeddedBackend(SimConfig(), lease=None, ros=None, env={}, workdir=tmp_path).spawner() is None


def test_server_refuses_a_taken_name(
    private_server: tuple[forkclient.ForkServer, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    server, _proc = private_server
    out = subprocess.run(
        [sys.executable, "-m", "pytest_simtwin.sim.forkserver", "--name", server.name, "--bind-wait", "0.3"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0 and "already served by another process" in out.stdout
    assert json.loads(json.dumps(_request(server.name, b'{"op": "hello"}\n')))["pid"] == server.server_pid


def test_a_new_server_takes_the_name_once_the_old_one_is_gone(
    private_server: tuple[forkclient.ForkServer, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """A client starts a server when the old one stops answering (it is usually on its way out): the new
    one waits for the name instead of giving up, so the client gets a server, not a plain-process start."""
    server, proc = private_server
    with (tmp_path / "new.log").open("ab") as out:
        new = subprocess.Popen(
            [sys.executable, "-m", "pytest_simtwin.sim.forkserver", "--name", server.name, "--bind-wait", "30"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        time.sleep(0.5)  # the new one is waiting for the name now
        assert new.poll() is None
        proc.kill()
        proc.wait()

        def new_answers() -> bool:
            try:
                return _request(server.name, b'{"op": "hello"}\n')["pid"] == new.pid
            except OSError:
                return False

        wait_until(new_answers, 60.0, what="the new server's hello", describe=lambda: (tmp_path / "new.log").read_text())
    finally:
        new.kill()
        new.wait()


OTHER_USER = """
import socket, sys
conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
conn.settimeout(10)
conn.connect("\\0" + sys.argv[1])
try:
    conn.sendall(b'{"op": "hello"}\\n')
    print(repr(conn.recv(4096)))
except OSError:  # reset or broken pipe: refused
    print("reset")
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to act as another user"
)
def test_another_user_cannot_use_the_server(
    private_server: tuple[forkclient.ForkServer, subprocess.Popen[bytes]],
) -> None:
    server, _proc = private_server
    out = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", OTHER_USER, server.name],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in ("b''", "reset")  # closed without an answer
    assert _request(server.name, b'{"op": "hello"}\n')["pid"] == server.server_pid  # we still can


def test_a_dead_server_is_forgotten_and_the_start_falls_back(
    private_server: tuple[forkclient.ForkServer, subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from pytest_simtwin.backends.base import SimConfig
    from pytest_simtwin.backends.embedded import EmbeddedBackend

    server, proc = private_server
    monkeypatch.setattr(forkclient, "_server", server)  # as if it were this machine's shared one
    spawn = EmbeddedBackend(SimConfig(), lease=None, ros=None, env={}, workdir=tmp_path).spawner()  # type: ignore[arg-type]
    assert spawn is not None
    proc.kill()  # e.g. the OOM killer
    proc.wait()
    with pytest.raises(OSError):
        spawn({}, tmp_path / "sim.log", None)  # ManagedProcess then starts a plain process
    assert forkclient._server is None  # the next start looks for (or starts) a live server


def test_preload_skips_the_message_generator_but_keeps_every_message_working() -> None:
    # In a fresh interpreter, as the server starts: the generator (lark, empy) is not imported, the
    # type supports load, and the generator still imports on demand from the same package.
    code = (
        "import sys\n"
        "from pytest_simtwin.sim import forkserver as f\n"
        "missing = f.preload()\n"
        "assert not missing, missing\n"
        "assert 'lark' not in sys.modules and 'em' not in sys.modules\n"
        "from nav_msgs.msg import Odometry\n"
        "Odometry.__class__.__import_type_support__()\n"
        "assert Odometry.__class__._TYPE_SUPPORT is not None\n"
        "f.warm_world()\n"
        "import rosidl_generator_py.generate_py_impl as g\n"
        "assert callable(g.generate_py)\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stdout + res.stderr


def test_exit_status_reaches_every_thread_that_polls(
    private_server: tuple[forkclient.ForkServer, subprocess.Popen[bytes]],
    leased: tuple[domains.DomainLease, dict[str, str]],
    tmp_path: Path,
) -> None:
    # The session polls a starting simulator from two threads (the control probe and the wait for
    # the first message). A simulator that fails at once (a malformed world: exit 2) must be seen
    # as exited by both; neither may block on the status the other one read.
    import threading

    server, _proc = private_server
    _lease, env = leased
    bad = tmp_path / "bad.sdf"
    bad.write_text('<sdf version="1.9"><world name="w"><model name="m"><link name="l"></model></world></sdf>\n')
    for _attempt in range(10):
        child = server.spawn(["--world", str(bad)], env={**os.environ, **env}, log_path=tmp_path / "bad.log")
        seen: list[int] = []

        def watch(child: forkclient.ForkedProcess = child, seen: list[int] = seen) -> None:
            while (code := child.poll()) is None:
                pass  # as tight as it gets: the threads meet inside poll()
            seen.append(code)

        threads = [threading.Thread(target=watch, daemon=True) for _ in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=10)
        assert not any(th.is_alive() for th in threads), "a poll() blocked after the other thread read the exit"
        assert seen == [2] * 6
        child.close()


def test_a_fork_that_fails_before_the_simulator_runs_falls_back_to_a_fresh_start(
    private_server: tuple[forkclient.ForkServer, subprocess.Popen[bytes]],
    leased: tuple[domains.DomainLease, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A forked child that fails in its set-up exits with EXIT_FORK_FAILED (70): the backend says so and starts
    the same simulator as a fresh process, and the start succeeds."""
    from pytest_simtwin.backends.base import SimConfig
    from pytest_simtwin.backends.embedded import EmbeddedBackend
    from pytest_simtwin.backends.forkclient import ForkedProcess

    server, _proc = private_server
    lease, env = leased
    monkeypatch.setattr(forkclient, "_server", server)  # as if it were this machine's shared one
    removed = tmp_path / "removed"
    removed.mkdir()
    removed.rmdir()  # a working directory the fork cannot enter: its set-up fails before the simulator runs
    forked: list[ForkedProcess] = []

    class RemovedWorkingDirectory(EmbeddedBackend):
        def spawner(self):  # type: ignore[no-untyped-def]
            spawn = super().spawner()
            if spawn is None:
                return None

            def in_removed(env: dict[str, str], log_path: Path, cwd: Path | None) -> ForkedProcess:
                forked.append(spawn(env, log_path, removed))
                return forked[-1]

            return in_removed

    with RosSession(lease.domain_id, env, name="fork_fallback_test") as ros:
        backend = RemovedWorkingDirectory(SimConfig(start_timeout=60.0), lease=lease, ros=ros, env=env, workdir=tmp_path)
        with backend:
            assert backend.is_alive()
            assert backend._proc is not None and isinstance(backend._proc.proc, subprocess.Popen)  # the fresh one
        assert len(forked) == 1 and forked[0].returncode == 70
        log = backend.log_path()
        assert log is not None
        text = log.read_text()
    assert "failed before it could run" in text and "FileNotFoundError" in text  # the child's own account
    assert "exited with code 70 before it published" in text and "starting it as a fresh process" in text
    assert forkclient._server is None  # the next start asks for a server again
