"""Helpers for the embedded simulator's process tests: start ``simtwin-sim`` on a leased domain.

``start_sim(tmp_path, *args)`` leases a ROS domain, starts the real command as a subprocess with the
shared ROS environment, opens a private RosSession on that domain, waits for the first /odom (never
a fixed sleep) and always kills the process and releases the lease.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.control.client import ControlClient
from pytest_simtwin.ros.domains import DEFAULT_DOMAIN_RANGE, DomainLease, acquire_domain, parse_domain_range
from pytest_simtwin.ros.environment import ros_environment
from pytest_simtwin.ros.session import RosSession

SIM_COMMAND = str(Path(sys.executable).with_name("simtwin-sim"))


@dataclass
class SimProcess:
    """A running simulator process with its domain, ROS session and control client."""

    proc: subprocess.Popen[bytes]
    lease: DomainLease
    env: dict[str, str]
    ros: RosSession
    control: ControlClient
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_exit(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=5)


def launch(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [SIM_COMMAND, *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


@contextlib.contextmanager
def start_sim(
    tmp_path: Path,
    *args: str,
    wait_topic: str | None = "/odom",
    timeout: float = 20.0,
    name: str = "sim",
    extra_env: dict[str, str] | None = None,
) -> Iterator[SimProcess]:
    with acquire_domain(parse_domain_range(DEFAULT_DOMAIN_RANGE), owner=f"tests/sim {name}") as lease:
        env = {**ros_environment(lease.domain_id, lease.partition), **(extra_env or {})}
        log_path = tmp_path / f"{name}.log"
        with RosSession(lease.domain_id, env, name="simtwin_sim_test") as ros:
            from nav_msgs.msg import Odometry

            buf = ros.subscribe(wait_topic, Odometry) if wait_topic else None
            proc = launch(list(args), env, log_path)
            lease.add_child(proc.pid, "simtwin-sim")
            sim = SimProcess(proc, lease, env, ros, ControlClient(ros, timeout=15.0), log_path)
            try:
                if buf is not None:
                    wait_until(
                        lambda: buf.count > 0,
                        timeout,
                        what=f"the first Odometry on {wait_topic}",
                        abort=lambda: None if proc.poll() is None else f"simtwin-sim exited: {sim.log()[-3000:]}",
                        describe=lambda: sim.log()[-3000:],
                    )
                yield sim
            finally:
                sim.kill()
                lease.remove_child(proc.pid)


def wait_log(sim: SimProcess, text: str, timeout: float = 5.0) -> str:
    """Wait until the simulator's log contains ``text``; returns the log."""
    return wait_until(
        lambda: sim.log() if text in sim.log() else None,
        timeout,
        what=f"{text!r} in the simulator log",
        describe=lambda: sim.log()[-2000:],
    )
