"""The ``embedded`` backend (default): our MuJoCo simulator as a child process.

It runs ``sys.executable -m pytest_simtwin.sim`` (no re-exec through a venv wrapper) with the
worker's ROS environment and ``--parent-pid`` so it also exits on its own when the worker dies.
By default the process is forked from the machine's warm fork server (:mod:`.forkclient`), which
has already imported MuJoCo and rclpy; ``fork_server=False`` in the config's options (the plugin's
``--simtwin-fork-server off``) or ``SIMTWIN_FORK_SERVER=0`` starts a plain process instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_simtwin.backends import forkclient
from pytest_simtwin.backends.base import SimConfig
from pytest_simtwin.backends.processes import SubprocessBackend
from pytest_simtwin.control import protocol

if TYPE_CHECKING:
    from pytest_simtwin.backends.forkclient import ForkedProcess
    from pytest_simtwin.backends.processes import Spawner


class EmbeddedBackend(SubprocessBackend):
    name: ClassVar[str] = "embedded"
    supports_control: ClassVar[bool] = True
    control_guaranteed: ClassVar[bool] = True  # always our simulator: silent control services are a fault

    @classmethod
    def wants_fork_server(cls, config: SimConfig) -> bool:
        return uses_fork_server(config)

    def __init__(self, config: SimConfig, **kwargs: Any) -> None:
        if config.ready_topic == SimConfig.ready_topic:
            # The default /odom is the robot's odometry only when its DiffDrive says so (gz-sim's default is
            # /model/<name>/odometry); the simulator's ground truth of its first robot always has this name.
            config = config.with_(ready_topic=protocol.GROUND_TRUTH)
        super().__init__(config, **kwargs)

    def command(self) -> tuple[Sequence[str] | str, bool]:
        return [
            sys.executable,
            "-m",
            "pytest_simtwin.sim",
            *simulator_arguments(self.config, parent_pid=os.getpid()),
        ], False

    def spawner(self) -> Spawner | None:

        if not uses_fork_server(self.config):
            return None
        server = forkclient.shared_server()
        if server is None:
            return None
        args = simulator_arguments(self.config, parent_pid=os.getpid())

        def spawn(env: Mapping[str, str], log_path: Path, cwd: Path | None) -> ForkedProcess:
            try:
                return server.spawn(args, env=env, log_path=log_path, cwd=cwd)
            except (OSError, ValueError):
                forkclient.forget(server)  # gone (killed?): this start runs plainly, the next finds a new one
                raise

        return spawn


def uses_fork_server(cfg: SimConfig) -> bool:
    """Whether embedded simulators for ``cfg`` come from the fork server (``fork_server`` option, default on)."""
    return bool(cfg.options.get("fork_server", True))


def simulator_arguments(cfg: SimConfig, *, parent_pid: int | None) -> list[str]:
    """``simtwin-sim`` arguments for ``cfg`` (``--parent-pid``: exit when that process is gone)."""
    argv = [] if parent_pid is None else ["--parent-pid", str(parent_pid)]
    argv += ["--seed", str(cfg.seed), "--rtf", f"{cfg.rtf:g}"]
    if cfg.cmd_vel_type is not None:  # unset: Twist and TwistStamped both
        argv += ["--cmd-vel-type", cfg.cmd_vel_type]
    if cfg.world is not None:
        argv.append(str(cfg.world))
    if cfg.robot is not None:
        argv += ["--robot", str(cfg.robot)]
    if cfg.lockstep:
        argv.append("--lockstep")
    if cfg.paused:
        argv.append("--paused")
    for name in cfg.sensors_off:
        argv += ["--no-sensor", name]
    argv += list(cfg.extra_args)
    return argv
