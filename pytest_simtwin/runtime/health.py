"""Health checks of a running simulator: alive, its clock advances, its sensors publish (before each test).

:class:`HealthChecks` is the part of :class:`~pytest_simtwin.runtime.session.SimSession` that decides
whether the simulator can run the next test; an unhealthy one is stopped (the next test restarts it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.backends.base import Backend, SimConfig
from pytest_simtwin.control import protocol
from pytest_simtwin.control.client import ControlClient
from pytest_simtwin.errors import ControlError, SimulatorDiedError, SimulatorError, WaitTimeout
from pytest_simtwin.ros.msgtypes import resolve_msg_type
from pytest_simtwin.ros.session import RosSession

if TYPE_CHECKING:
    from pytest_simtwin.runtime.settings import Settings

#: Seconds the health check waits for the clock and the ready topic (capped by the start timeout).
HEALTH_TIMEOUT = 10.0


class HealthChecks:
    """Mixed into SimSession, which provides the state and calls declared below."""

    backend: Backend | None
    config: SimConfig | None
    settings: Settings
    domain_id: int

    @property
    def alive(self) -> bool:
        raise NotImplementedError

    def death_reason(self) -> str | None:
        raise NotImplementedError

    def died_error(self, during: str) -> SimulatorDiedError:
        raise NotImplementedError

    def _require_ros(self) -> RosSession:
        raise NotImplementedError

    def control_or_none(self) -> ControlClient | None:
        raise NotImplementedError

    def _call_retrying(
        self, name: str, total: float, abort: Callable[[], str | None] | None = None, **payload: Any
    ) -> dict[str, Any]:
        raise NotImplementedError

    def log_tail(self, lines: int = 30) -> list[str]:
        raise NotImplementedError

    def stop_simulator(self, grace: float | None = None) -> None:
        raise NotImplementedError

    def check_health(
        self, timeout: float | None = None, since: float | None = None, advanced_from: float | None = None
    ) -> None:
        """Raise :class:`SimulatorError` unless the simulator is alive, its clock advances and it publishes.

        ``since`` (monotonic): ready-topic messages received from then on count (default: now).
        ``advanced_from``: a simulation time it reported earlier (the test's reset): a clock already past
        it has advanced, with no wait for its next step (up to a paced chunk, ~15 ms at rtf 1).
        """
        backend, ros = self.backend, self._require_ros()
        if backend is None:
            raise SimulatorError("no simulator is running (SimSession.ensure was not called)")
        if not backend.is_alive():
            raise self.died_error("before the test started")
        limit = min(timeout if timeout is not None else HEALTH_TIMEOUT, self.settings.timeout)
        client = self.control_or_none()
        if client is not None:
            try:
                state = self._call_retrying("get_simulation_state", limit)
            except SimulatorDiedError:
                raise
            except ControlError as exc:
                if not backend.is_alive():
                    raise self.died_error("before the test started") from None
                raise self._unhealthy(f"it does not answer its control services ({exc})") from None
            if state.get("state") == "paused":
                return  # a paused simulator publishes nothing by design; it answered, that is healthy
        since = time.monotonic() if since is None else since
        # the backend's config: it may wait on another ready topic than the one asked (embedded: ground truth)
        config = self.backend.config if self.backend is not None else (self.config or SimConfig())
        if client is not None and "sim_time" in state:
            # Its own clock, asked: a /clock subscription here would stay for the whole session and
            # make the simulator serialise, and this process deserialise, every clock message
            # (~80 per sim second) while tests step it.
            now = float(state["sim_time"])
            if advanced_from is None or now <= advanced_from:
                self._wait_state_advances(limit, now if advanced_from is None else advanced_from)
        elif ros.count_publishers(protocol.CLOCK) > 0:
            self._wait_clock_advances(limit, since)
        try:
            ros.wait_for_message(config.ready_topic, resolve_msg_type(config.ready_type), timeout=limit, since=since)
        except WaitTimeout as exc:
            if not self.alive:
                raise self.died_error("before the test started") from None
            raise self._unhealthy(f"its sensors publish nothing: {exc}") from None

    def _wait_state_advances(self, limit: float, first: float) -> None:
        last = [first]

        def advanced() -> bool:
            last[0] = float(self._call_retrying("get_simulation_state", limit).get("sim_time", first))
            return last[0] > first

        self._health_wait(
            advanced,
            limit,
            what=f"the simulation time to advance on domain {self.domain_id}",
            describe=lambda: f"sim_time stayed at {last[0]:.3f} s (get_simulation_state)",
            failure="its clock does not advance",
            max_interval=0.01,
        )

    def _wait_clock_advances(self, limit: float, since: float) -> None:
        from rosgraph_msgs.msg import Clock

        ros = self._require_ros()
        buf = ros.subscribe(protocol.CLOCK, Clock)

        def advanced() -> bool:
            # Compare the latest two: a message from before a reset may still arrive after ``since``.
            times = [r.msg.clock.sec + r.msg.clock.nanosec * 1e-9 for r in buf.since(since)[-2:]]
            return len(times) == 2 and times[1] > times[0]

        self._health_wait(
            advanced,
            limit,
            what=f"{protocol.CLOCK} to advance on domain {self.domain_id}",
            describe=lambda: f"{len(buf.since(since))} clock message(s) arrived, latest {buf.latest()!r:.120}",
            failure="its clock does not advance",
        )

    def _health_wait(
        self,
        probe: Callable[[], bool],
        limit: float,
        *,
        what: str,
        describe: Callable[[], str],
        failure: str,
        max_interval: float = 0.05,
    ) -> None:
        """wait_until for a health condition: SimulatorDiedError if it died, else an unhealthy error."""
        try:
            wait_until(probe, limit, what=what, describe=describe, abort=self.death_reason, max_interval=max_interval)
        except SimulatorDiedError:
            raise
        except (WaitTimeout, ControlError) as exc:
            if not self.alive:
                raise self.died_error("before the test started") from None
            reason = failure if isinstance(exc, WaitTimeout) else "it stopped answering"
            raise self._unhealthy(f"{reason}: {exc}") from None

    def _unhealthy(self, what: str) -> SimulatorError:
        backend = self.backend
        name = backend.describe() if backend is not None else "simulator"
        err = SimulatorError(
            f"the {name} is unhealthy, {what}. Expected a running simulator whose clock advances and whose "
            f"sensors publish; it will be restarted for the next test.",
            log_tail=self.log_tail(),
        )
        self.stop_simulator(grace=0.5)
        return err
