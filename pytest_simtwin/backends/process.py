"""The ``process`` backend: any simulator started by a user command template.

Example (native Gazebo plus a bridge; shell syntax makes it run through ``sh -c``)::

    --simtwin-command "gz sim -s -r --headless-rendering {world} & ros2 run ros_gz_bridge parameter_bridge \
        --ros-args -p config_file:=bridge.yaml; wait"

Placeholders: {world} {robot} {domain_id} {partition} {seed} {rtf}. The command runs with the worker's
ROS environment (ROS_DOMAIN_ID, GZ_PARTITION, fast discovery), in its own process group, and is
ready when the first message arrives on the ready topic. Control calls work only when the simulator
answers the ``/simtwin`` services (e.g. our ``simtwin-sim``); otherwise they raise ControlError.
"""

from __future__ import annotations

import shlex
import string
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pytest_simtwin.backends.processes import SubprocessBackend
from pytest_simtwin.errors import BackendError, ConfigError

PLACEHOLDERS = ("world", "robot", "domain_id", "partition", "seed", "rtf")
_SHELL_CHARS = set("|&;<>()$`\n*?")


def template_fields(template: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ConfigError(f"invalid command template {template!r}: {exc} (write literal braces as {{{{ }}}})") from None


def check_template(template: str) -> None:
    """Reject unknown or positional placeholders before anything starts."""
    for name in template_fields(template):
        if name not in PLACEHOLDERS:
            raise ConfigError(
                f"unknown placeholder {{{name}}} in command template {template!r}; expected only "
                f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
            )


def needs_shell(template: str) -> bool:
    return any(c in _SHELL_CHARS for c in template)


class ProcessBackend(SubprocessBackend):
    name: ClassVar[str] = "process"
    #: Decided per simulator by the session (it probes the /simtwin services once on first use).
    supports_control: ClassVar[bool] = True
    can_start_held: ClassVar[bool] = False  # a foreign simulator may have no control to hold it with

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        command = options.get("command")
        if not command or not str(command).strip():
            raise ConfigError(
                "--simtwin-backend process needs --simtwin-command (or ini simtwin_command): a command template "
                "such as 'gz sim -s -r --headless-rendering {world}' ({world} {robot} {domain_id} {partition} "
                "{seed} {rtf} are filled in); none was given"
            )
        try:
            check_template(command)
        except ConfigError as exc:
            raise ConfigError(f"--simtwin-command: {exc}") from None

    def values(self) -> dict[str, str]:
        cfg = self.config
        return {
            "world": str(cfg.world) if cfg.world is not None else "",
            "robot": str(cfg.robot) if cfg.robot is not None else "",
            "domain_id": str(self.domain_id),
            "partition": self.env.get("GZ_PARTITION", ""),
            "seed": str(cfg.seed),
            "rtf": f"{cfg.rtf:g}",
        }

    def command(self) -> tuple[Sequence[str] | str, bool]:
        template = self.config.command
        if not template:
            raise BackendError("the process backend needs a command template (--simtwin-command); none was given")
        check_template(template)
        values = self.values()
        for name in template_fields(template):
            if name in ("world", "robot") and not values[name]:
                raise BackendError(
                    f"the command template {template!r} uses {{{name}}} but no {name} file is configured; "
                    f"give --simtwin-{name} or @pytest.mark.simtwin({name}=...)"
                )
        if needs_shell(template):
            return template.format(**{k: shlex.quote(v) for k, v in values.items()}), True
        return [part.format(**values) for part in shlex.split(template)], False
