"""The small protocol every simulator backend implements (embedded, process, attach, docker).

A backend is a context manager: ``with backend: ...`` starts the simulator, waits until it is
ready (the first message on ``config.ready_topic`` arrived, never a fixed sleep) and stops it on
every exit path. ``tests/test_backend_conformance.py`` runs the same checks against each backend.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.errors import ConfigError, SimulatorStartError, WaitTimeout
from pytest_simtwin.ros.msgtypes import resolve_msg_type

if TYPE_CHECKING:
    from pytest_simtwin.ros.domains import DomainLease
    from pytest_simtwin.ros.session import RosSession


@dataclass(frozen=True)
class SimConfig:
    """What to simulate and how; the same for every backend (a backend ignores what it cannot do)."""

    world: Path | None = None  # None: the built-in arena
    robot: Path | None = None  # None: the built-in robot (or the robot the world includes)
    rtf: float = 1.0  # real-time factor; 0 = as fast as possible
    seed: int = 0
    paused: bool = False
    lockstep: bool = False
    cmd_vel_type: str | None = None  # "twist" | "twist_stamped"; None: the simulator takes both
    start_timeout: float = 30.0
    ready_topic: str = "/odom"
    ready_type: str = "nav_msgs/msg/Odometry"
    extra_args: tuple[str, ...] = ()
    #: embedded backend: sensors turned off (names or kinds: imu, camera, depth, rgbd, navsat; "all")
    sensors_off: tuple[str, ...] = ()
    # process backend: a command template with {world}, {robot}, {domain_id}, {partition}, {seed}, {rtf}
    command: str | None = None
    # docker backend
    image: str | None = None
    cpus: float | None = None
    memory: str | None = None
    # attach backend: the domain the already running simulator uses
    attach_domain: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> SimConfig:
        return replace(self, **changes)


class Backend(abc.ABC):
    """One simulator instance on one leased domain."""

    name: ClassVar[str] = "abstract"
    # -- capabilities: what the rest of the package asks instead of checking a backend's name --
    #: True when the simulator answers the /simtwin control services (step, reset, spawn, ...).
    supports_control: ClassVar[bool] = True
    #: True when it is always our simulator, so control services that do not answer are an error.
    control_guaranteed: ClassVar[bool] = False
    #: False when the simulator runs already (attach): no domain lease, no restart, shared by workers.
    owns_simulator: ClassVar[bool] = True
    #: True when a pool can start members paused and release them together (needs control at start).
    can_start_held: ClassVar[bool] = True

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Validate this backend's options (``--simtwin-*`` names as keys) before anything starts.

        Raises :class:`ConfigError` naming the option; the default accepts everything.
        """
        return None  # an optional hook: most backends take no options of their own

    @classmethod
    def wants_fork_server(cls, config: SimConfig) -> bool:
        """Whether simulators of this config start from the warm fork server (so it is worth prewarming)."""
        return False

    @classmethod
    def session_start(cls, controller: bool) -> None:
        """Once per pytest process at configure time (``controller``: the xdist controller or a plain run)."""
        return None  # an optional hook

    def __init__(
        self,
        config: SimConfig,
        *,
        lease: DomainLease | None,
        ros: RosSession,
        env: Mapping[str, str],
        workdir: Path,
    ) -> None:
        self.config = config
        self.lease = lease
        self.ros = ros
        self.env = dict(env)
        self.workdir = workdir
        self._ready_count: int | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def domain_id(self) -> int:
        return self.ros.domain_id

    # -- to implement ----------------------------------------------------------------------------
    @abc.abstractmethod
    def start(self) -> None:
        """Launch the simulator without waiting for it."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop it and everything it started; idempotent, never raises."""

    @abc.abstractmethod
    def is_alive(self) -> bool:
        """False once the simulator exited (attach: once it stopped publishing is not checked here)."""

    @abc.abstractmethod
    def returncode(self) -> int | None:
        """Exit code once it exited, else None."""

    @abc.abstractmethod
    def log_tail(self, lines: int = 30) -> list[str]:
        """The last lines of the simulator's log (stdout and stderr)."""

    def log_path(self) -> Path | None:
        """A file holding the whole log, when there is one (attached to reports and bundles)."""
        return None

    def describe(self) -> str:
        """One line naming the simulator for error messages."""
        return f"{self.name} simulator on ROS_DOMAIN_ID {self.domain_id}"

    # -- shared behaviour ------------------------------------------------------------------------
    def death_reason(self) -> str | None:
        if self.is_alive():
            return None
        return f"the {self.describe()} exited with code {self.returncode()}"

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait for the first ``ready_topic`` message; fail early if the simulator exits."""

        limit = self.config.start_timeout if timeout is None else timeout
        msg_type = resolve_msg_type(self.config.ready_type)
        buf = self.ros.subscribe(self.config.ready_topic, msg_type)
        start_count = self._ready_count if self._ready_count is not None else buf.count
        try:
            wait_until(
                # Only a message that arrived after start() counts: the buffer may still hold the
                # previous simulator's messages after a restart.
                lambda: buf.count > start_count,
                limit,
                what=f"the first {self.config.ready_type} on {self.config.ready_topic} from the {self.describe()}",
                abort=self.death_reason,
                describe=lambda: (
                    f"publishers on {self.config.ready_topic}: {self.ros.count_publishers(self.config.ready_topic)}"
                ),
            )
        except WaitTimeout as exc:
            raise SimulatorStartError(
                f"{exc}. Expected the simulator to publish {self.config.ready_topic} within {limit:.1f} s; "
                f"check the world/robot files and the log below, or raise --simtwin-timeout.",
                log_tail=self.log_tail(),
            ) from None

    def __enter__(self) -> Backend:
        try:
            # Count ready messages from before start(): anything newer comes from this simulator.
            self._ready_count = self.ros.subscribe(
                self.config.ready_topic, resolve_msg_type(self.config.ready_type)
            ).count
            self.start()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


#: Entry-point group under which other packages register backends: ``name = "module:Class"``.
ENTRY_POINT_GROUP = "pytest_simtwin.backends"

#: name -> "module:Class", imported only when chosen (docker pulls in the docker SDK).
BACKENDS: dict[str, str] = {
    "embedded": "pytest_simtwin.backends.embedded:EmbeddedBackend",
    "process": "pytest_simtwin.backends.process:ProcessBackend",
    "attach": "pytest_simtwin.backends.attach:AttachBackend",
    "docker": "pytest_simtwin.backends.containers.docker:DockerBackend",
}


def available_backends() -> dict[str, str]:
    """The built-in backends plus those registered under :data:`ENTRY_POINT_GROUP` by installed packages."""
    found = dict(BACKENDS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def backend_class(name: str) -> type[Backend]:
    """The backend class registered as ``name``; a :class:`ConfigError` lists the known names."""
    known = BACKENDS if name in BACKENDS else available_backends()
    try:
        target = known[name]
    except KeyError:
        raise ConfigError(f"unknown simulator backend {name!r}: expected one of {', '.join(sorted(known))}") from None
    module_name, _, cls_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"simulator backend {name!r} is registered as {target!r}, which cannot be loaded ({exc}); "
            "reinstall the package that provides it"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigError(f"simulator backend {name!r} ({target}) is not a pytest_simtwin Backend subclass")
    return cls
