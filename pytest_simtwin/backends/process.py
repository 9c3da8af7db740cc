"""The ``process`` backend: any simulator started by a user command template.

Example (native Gazebo plus a bridge; shell syntax makes it run through ``sh -c``)::

    --simtwin-command "gz sim -s -r --headless-rendering {world} & ros2 run ros_gz_bridge parameter_bridge \
        --ros-args -p config_file:=bridge.yaml; wait"

Placeholders: {world} {robot} {domain_id} {partition} {seed} {rtf}, and for ``--simtwin-spawn-name`` /
``--simtwin-spawn-pose`` {spawn_name} {x} {y} {z} {roll} {pitch} {yaw} (e.g. ``ros_gz_sim create -name
{spawn_name} -x {x} -y {y} -z {z} -Y {yaw}``): a template that uses none of them cannot place the robot,
so giving those options is then a usage error. The command runs with the worker's
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

SPAWN_PLACEHOLDERS = ("spawn_name", "x", "y", "z", "roll", "pitch", "yaw")
PLACEHOLDERS = ("world", "robot", "domain_id", "partition", "seed", "rtf", *SPAWN_PLACEHOLDERS)
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


def check_spawn(template: str, name: str | None, pose: object) -> None:
    """A spawn name / pose needs the template's spawn placeholders: the command places the robot itself."""
    used = set(template_fields(template))
    for option, value, fields in (("spawn-name", name, {"spawn_name"}), ("spawn-pose", pose, set(SPAWN_PLACEHOLDERS[1:]))):
        if value is not None and not used & fields:
            raise ConfigError(
                f"--simtwin-{option}: the process backend runs --simtwin-command as given, and the template "
                f"{template!r} uses none of {', '.join('{' + f + '}' for f in sorted(fields))}; expected e.g. "
                "'ros_gz_sim create -name {spawn_name} -x {x} -y {y} -z {z} -Y {yaw} ...' in the command, or "
                f"drop --simtwin-{option}"
            )


def needs_shell(template: str) -> bool:
    return any(c in _SHELL_CHARS for c in template)


class ProcessBackend(SubprocessBackend):
    name: ClassVar[str] = "process"
    #: Decided per simulator by the session (it probes the /simtwin services once on first use).
    supports_control: ClassVar[bool] = True
    can_start_held: ClassVar[bool] = False  # a foreign simulator may have no control to hold it with
    spawns_robot: ClassVar[bool] = True  # through the template's spawn placeholders (check_spawn)

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
        check_spawn(command, options.get("spawn-name"), options.get("spawn-pose"))

    def values(self) -> dict[str, str]:
        cfg = self.config
        return {
            "world": str(cfg.world) if cfg.world is not None else "",
            "robot": str(cfg.robot) if cfg.robot is not None else "",
            "domain_id": str(self.domain_id),
            "partition": self.env.get("GZ_PARTITION", ""),
            "seed": str(cfg.seed),
            "rtf": f"{cfg.rtf:g}",
            "spawn_name": cfg.spawn_name or "",
            **dict(zip(SPAWN_PLACEHOLDERS[1:], (repr(float(v)) for v in cfg.spawn_pose or (0.0,) * 6), strict=True)),
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
            if name == "spawn_name" and not values[name]:  # the pose placeholders default to create's 0
                raise BackendError(
                    f"the command template {template!r} uses {{spawn_name}} but no spawn name is configured; "
                    "give --simtwin-spawn-name or @pytest.mark.simtwin(spawn_name=...)"
                )
        if needs_shell(template):
            return template.format(**{k: shlex.quote(v) for k, v in values.items()}), True
        return [part.format(**values) for part in shlex.split(template)], False
