"""SimPool: N isolated, ready simulators on one machine, for batch runs, sweeps and training.

It reuses what the plugin gives each xdist worker, not a second copy of it: every member is a
:class:`~pytest_simtwin.runtime.session.SimSession` (a leased ROS_DOMAIN_ID + GZ_PARTITION, the shared ROS
environment, a private RosSession, a backend, a control client). All simulators are launched
first and then awaited together, so N starts overlap instead of adding up; readiness is the first
message on the ready topic, never a sleep. Leaving the ``with`` block stops everything, on every
path; a SIGKILLed pool leaves leases whose children the next pool (or pytest session) reaps.

    with SimPool(n=8, world="worlds/arena.sdf") as pool:
        for sim in pool:
            sim.control.set_entity_state(...)

``spawn_name`` / ``spawn_pose`` name and place the robot file's robot in every member, as
``--simtwin-spawn-name`` / ``--simtwin-spawn-pose`` do in a test run (``ros_gz_sim create``'s -name and
-x -y -z [-R -P] -Y), checked by the same functions (:mod:`pytest_simtwin.runtime.spawn`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pytest

from pytest_simtwin.backends.base import SimConfig, backend_class
from pytest_simtwin.errors import ConfigError, SimTwinError
from pytest_simtwin.helpers.robot import Robot
from pytest_simtwin.ros.domains import DEFAULT_DOMAIN_RANGE, parse_domain_range, reap_leftovers
from pytest_simtwin.runtime.session import SimSession
from pytest_simtwin.runtime.settings import Settings, check_spawn
from pytest_simtwin.runtime.spawn import check_spawn_name, parse_spawn_pose
from pytest_simtwin.runtime.workers import WorkerInfo

if TYPE_CHECKING:
    from pytest_simtwin.control.client import ControlClient
    from pytest_simtwin.helpers.robot import Robot
    from pytest_simtwin.ros.session import RosSession
    from pytest_simtwin.runtime.session import SimSession


@dataclass
class PoolMember:
    """One simulator of a pool: where it runs and how to talk to it."""

    index: int
    session: SimSession
    ready_after: float = 0.0  # seconds from pool start to its first ready message
    _robot: Robot | None = field(default=None, repr=False)

    @property
    def domain_id(self) -> int:
        return self.session.domain_id

    @property
    def partition(self) -> str:
        return self.session.partition

    @property
    def env(self) -> dict[str, str]:
        """Environment for your own processes that should talk to this simulator."""
        return dict(self.session.env)

    @property
    def ros(self) -> RosSession:
        return self.session.ros_session

    @property
    def control(self) -> ControlClient:
        return self.session.control

    @property
    def pid(self) -> int | None:
        backend = self.session.backend
        return getattr(backend, "pid", None) if backend is not None else None

    @property
    def alive(self) -> bool:
        return self.session.alive

    def log_path(self) -> Path | None:
        backend = self.session.backend
        return backend.log_path() if backend is not None else None

    def log_tail(self, lines: int = 30) -> list[str]:
        return self.session.log_tail(lines)

    def robot(self) -> Robot:
        """A robot helper bound to this simulator (created once)."""
        if self._robot is None:

            session = self.session
            self._robot = Robot(
                session.ros_session,
                session.control_or_none(),
                session.topics(),
                log_tail=session.log_tail,
                abort=session.death_reason,
            )
        return self._robot

    def describe(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "domain_id": self.domain_id,
            "partition": self.partition,
            "pid": self.pid,
            "ready_after_s": round(self.ready_after, 3),
            "log": str(self.log_path()) if self.log_path() else None,
        }


@contextlib.contextmanager
def _as_config_error() -> Iterator[None]:
    """The option checks raise :class:`pytest.UsageError` (a usage error of pytest); a pool is no pytest run."""
    try:
        yield
    except pytest.UsageError as exc:
        raise ConfigError(str(exc)) from None


class SimPool:
    """``with SimPool(n=8, world=..., backend="embedded") as pool:`` gives N ready, isolated simulators."""

    def __init__(
        self,
        n: int,
        *,
        world: str | Path | None = None,
        robot: str | Path | None = None,
        spawn_name: str | None = None,
        spawn_pose: str | Sequence[float] | None = None,
        backend: str = "embedded",
        rtf: float = 1.0,  # like `simtwin pool` and the plugin; 0 runs each as fast as it can
        seed: int = 0,
        lockstep: bool = False,
        paused: bool = False,
        domain_range: str = DEFAULT_DOMAIN_RANGE,
        timeout: float = 60.0,
        artifacts: str | Path | None = None,
        image: str | None = None,
        command: str | None = None,
        extra_args: Sequence[str] = (),
        on_ready: Callable[[PoolMember, int], None] | None = None,
    ) -> None:
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"SimPool: n must be a positive integer, found {n!r}")
        if rtf < 0:
            raise ConfigError(f"SimPool: rtf must be >= 0 (0 = as fast as possible), found {rtf}")
        if not backend_class(backend).owns_simulator:
            raise ConfigError(f"SimPool: the {backend} backend has no lifecycle; a pool needs embedded, process or docker")
        ids = parse_domain_range(domain_range)
        if len(ids) < n:
            raise ConfigError(
                f"SimPool: {n} simulators need {n} ROS domains but the range {domain_range!r} has {len(ids)}; "
                "widen domain_range or use fewer simulators"
            )
        world_path = Path(world).resolve() if world is not None else None
        robot_path = Path(robot).resolve() if robot is not None else None
        for what, path in (("world", world_path), ("robot", robot_path)):
            if path is not None and not path.is_file():
                raise ConfigError(f"SimPool: the {what} file {path} does not exist; expected an SDF/URDF file")
        with _as_config_error():  # the plugin's checks, raised as what a library caller catches
            name = None if spawn_name is None else check_spawn_name(spawn_name, "SimPool(spawn_name=...)")
            pose = None if spawn_pose is None else parse_spawn_pose(spawn_pose, "SimPool(spawn_pose=...)")
        self.n = n
        self.backend = backend
        self.timeout = timeout
        self.on_ready = on_ready
        self.config = SimConfig(
            world=world_path,
            robot=robot_path,
            spawn_name=name,
            spawn_pose=pose,
            rtf=rtf,
            seed=seed,
            paused=paused,
            lockstep=lockstep,
            start_timeout=timeout,
            extra_args=tuple(extra_args),
            command=command,
            image=image,
        )
        with _as_config_error():
            check_spawn(backend, self.config, "SimPool", robot_from="robot=...")
        self._domain_ids = tuple(ids)
        self._artifacts = Path(artifacts) if artifacts is not None else Path.cwd() / "simtwin-artifacts" / "pool"
        self._stack: contextlib.ExitStack | None = None
        self.members: list[PoolMember] = []
        self.ready_after = 0.0

    def _settings(self) -> Any:

        return Settings(
            backend=self.backend,
            sim=self.config,
            domain_ids=self._domain_ids,
            reset="never",
            timeout=self.timeout,
            artifacts=self._artifacts,
        )

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> SimPool:
        """Lease N domains, launch N simulators, wait until every one published its first message."""

        if self._stack is not None:
            return self
        t0 = time.monotonic()
        reap_leftovers()  # leftovers of a killed pool or test run
        stack = contextlib.ExitStack()
        self._stack = stack
        try:
            settings = self._settings()
            sessions: list[SimSession] = []
            for i in range(self.n):
                session = SimSession(settings, WorkerInfo(f"pool{i}", i, self.n))
                stack.enter_context(session)
                sessions.append(session)
            # Launch everything before waiting for anything: starts overlap on all cores. Members
            # that should run start paused and all play once every one is ready: N free-running
            # simulators on fewer cores would otherwise starve the ones still starting.
            hold = self._hold_until_all_ready()
            for i, session in enumerate(sessions):
                config = self.config.with_(seed=self.config.seed + i)
                session.launch(config.with_(paused=True) if hold else config)
                self.members.append(PoolMember(i, session))
            self._await_all(t0)
            if hold:
                self._play_all()
        except BaseException:
            self.close()
            raise
        self.ready_after = time.monotonic() - t0
        return self

    def _hold_until_all_ready(self) -> bool:
        held = backend_class(self.backend).can_start_held
        return self.n > 1 and held and not (self.config.paused or self.config.lockstep)

    def _play_all(self) -> None:
        """Release every held member at once: a request sent after some members already run free
        would wait behind them for CPU. Re-sent until answered (playing is idempotent)."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(self.n, 16)) as ex:
            calls = [
                ex.submit(m.control.call, "set_simulation_state", state="playing", resend=0.2) for m in self.members
            ]
            for call in calls:
                call.result()

    def _await_all(self, t0: float) -> None:
        # Waiting only reads subscriptions, so threads are safe here (processes were forked above,
        # from this thread: PR_SET_PDEATHSIG would fire if their forking thread exited).
        errors: list[str] = []
        ready = 0
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(self.n, 16)) as ex:
            futures = {ex.submit(m.session.await_ready): m for m in self.members}
            for fut in concurrent.futures.as_completed(futures):
                member = futures[fut]
                try:
                    fut.result()
                except SimTwinError as exc:
                    errors.append(f"simulator {member.index} (domain {member.domain_id}): {exc}")
                    continue
                member.ready_after = time.monotonic() - t0
                ready += 1
                if self.on_ready is not None:
                    self.on_ready(member, ready)
        if errors:
            raise SimTwinError(f"{len(errors)} of {self.n} simulators did not become ready:\n" + "\n".join(errors))

    def close(self) -> None:
        """Stop every simulator, close the ROS sessions and release the domains (idempotent)."""
        stack, self._stack = self._stack, None
        if stack is not None:
            for member in self.members:
                if member._robot is not None:
                    with contextlib.suppress(Exception):
                        member._robot.close()
            stack.close()
        self.members = []

    def __enter__(self) -> SimPool:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- access ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[PoolMember]:
        return iter(self.members)

    def __getitem__(self, index: int) -> PoolMember:
        return self.members[index]

    def describe(self) -> list[dict[str, Any]]:
        return [m.describe() for m in self.members]

    def check(self) -> list[str]:
        """Names of members whose simulator died (empty when all run)."""
        return [f"simulator {m.index} (domain {m.domain_id})" for m in self.members if not m.alive]
