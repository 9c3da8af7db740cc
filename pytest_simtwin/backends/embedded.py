"""The ``embedded`` backend (default): our MuJoCo simulator as a child process.

It runs ``sys.executable -m pytest_simtwin.sim`` (no re-exec through a venv wrapper) with the
worker's ROS environment and ``--parent-pid`` so it also exits on its own when the worker dies.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import ClassVar

from ._process import SubprocessBackend


class EmbeddedBackend(SubprocessBackend):
    name: ClassVar[str] = "embedded"
    supports_control: ClassVar[bool] = True

    def command(self) -> tuple[Sequence[str] | str, bool]:
        cfg = self.config
        argv = [
            sys.executable,
            "-m",
            "pytest_simtwin.sim",
            "--parent-pid",
            str(os.getpid()),
            "--seed",
            str(cfg.seed),
            "--rtf",
            f"{cfg.rtf:g}",
            "--cmd-vel-type",
            cfg.cmd_vel_type,
        ]
        if cfg.world is not None:
            argv.append(str(cfg.world))
        if cfg.robot is not None:
            argv += ["--robot", str(cfg.robot)]
        if cfg.lockstep:
            argv.append("--lockstep")
        if cfg.paused:
            argv.append("--paused")
        argv += list(cfg.extra_args)
        return argv, False
