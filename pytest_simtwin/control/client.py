"""Python client of the simulator control services (pause, step, reset, entities), used by the plugin.

It speaks the JSON-over-``AddDiagnostics`` protocol of :mod:`pytest_simtwin.control.protocol` through a
:class:`~pytest_simtwin.ros.session.RosSession`, so it works against any simulator that serves those
services (the embedded one, or a wrapper around Gazebo). Refusals raise :class:`ControlError` with
the simulator's own message.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.control import protocol
from pytest_simtwin.errors import ControlError, WaitTimeout

if TYPE_CHECKING:
    from pytest_simtwin.ros.session import RosSession


#: Seconds between re-sends of a velocity command that the simulator has not counted yet.
COMMAND_RESEND = 0.25


class ControlClient:
    """``ControlClient(ros, namespace="/simtwin", timeout=10.0)``: one method per control service."""

    def __init__(
        self,
        ros: RosSession,
        namespace: str = protocol.NAMESPACE,
        timeout: float = 10.0,
        *,
        abort: Callable[[], str | None] | None = None,
        died: Callable[[str], Exception] | None = None,
        features: dict[str, Any] | None = None,
    ) -> None:
        """``features``: the simulator's get_simulator_features reply when the caller already has it."""
        self.ros = ros
        self.namespace = namespace
        self.timeout = timeout
        # abort() names why the simulator cannot answer any more (its process exited); died(during)
        # builds the error to raise then (with the simulator's log tail), instead of a bare timeout.
        self.abort = abort
        self.died = died
        self._features = features

    def call(
        self, name: str, /, timeout: float | None = None, resend: float | None = None, **payload: Any
    ) -> dict[str, Any]:
        """Call service ``name`` with a JSON payload; return the decoded reply or raise ControlError.

        ``name`` is positional-only so a payload may carry its own ``name`` (entity services).
        ``resend``: re-send every so many seconds until answered (idempotent services only).
        """
        from diagnostic_msgs.srv import AddDiagnostics

        service = protocol.service_name(name, self.namespace)
        request = AddDiagnostics.Request()
        request.load_namespace = protocol.encode({k: v for k, v in payload.items() if v is not None})
        try:
            response = self.ros.call(
                AddDiagnostics,
                service,
                request,
                timeout=self.timeout if timeout is None else timeout,
                abort=self.abort,
                resend=resend,
            )
        except ControlError:
            if self.died is not None and self.abort is not None and self.abort():
                raise self.died(f"while answering {name}") from None
            raise
        try:
            body = protocol.decode(response.message)
        except ValueError as exc:
            raise ControlError(
                f"{service} answered with a message that is not a JSON object ({exc}): {response.message!r:.200}; "
                "expected a simtwin-compatible simulator"
            ) from None
        if not response.success:
            raise ControlError(f"simulator refused {name}: {body.get('error', body)}")
        return body

    # -- simulation state ------------------------------------------------------------------------
    def features(self) -> protocol.Features:
        """The simulator's name, version, features and topics (asked once: they do not change)."""
        if self._features is None:
            self._features = self.call("get_simulator_features")
        return cast(protocol.Features, dict(self._features))

    def state(self) -> protocol.SimState:
        # Re-sent after 50 ms (doubling) until answered: it is idempotent, and a request or reply
        # can be late (a reply sent before the server matched our reader is lost; simulators on a
        # multi-threaded rclpy executor, as ours was, sometimes serve a request 0.15-0.75 s late).
        return cast(protocol.SimState, self.call("get_simulation_state", resend=0.05))

    def pause(self) -> protocol.SimState:
        return cast(protocol.SimState, self.call("set_simulation_state", state="paused"))

    def play(self, pause_at: float | None = None) -> protocol.SimState:
        """Play; with ``pause_at`` the simulator pauses itself exactly at that sim time."""
        return cast(protocol.SimState, self.call("set_simulation_state", state="playing", pause_at=pause_at))

    def quit(self) -> protocol.SimState:
        return cast(protocol.SimState, self.call("set_simulation_state", state="quitting"))

    def step(
        self,
        steps: int | None = None,
        duration: float | None = None,
        *,
        until_rest: protocol.UntilRest | None = None,
        listened: Sequence[str] = (),
    ) -> protocol.SimState:
        """Advance exactly ``steps`` physics steps or ``duration`` sim seconds (only while paused).

        ``until_rest`` (``{"name", "linear", "angular", "chunk"}``, feature "until_rest"): at most
        that long, stopping once the entity is at rest; the reply adds ``at_rest``. ``listened``
        (feature "listened"): topics we just subscribed to; the simulator first waits (bounded) until
        its publishers matched our subscriptions, so lazy sensors publish this step's messages to us.
        """
        if (steps is None) == (duration is None):
            raise ValueError("give exactly one of steps= or duration=")
        # The reply comes when the steps are done: allow for a slow (CPU-starved) simulator.
        timeout = self.timeout + (duration or 0.0) + (steps or 0) * 0.001 + (3.0 if listened else 0.0)
        reply = self.call("step_simulation", timeout=timeout, steps=steps, duration=duration, until_rest=until_rest,
                          listened=list(listened) or None)  # fmt: skip
        return cast(protocol.SimState, reply)

    def reset(self, scope: str = "all", seed: int | None = None) -> protocol.SimState:
        """Reset (scope all also re-seeds the sensor noise: with ``seed``, else the start seed)."""
        return cast(protocol.SimState, self.call("reset_simulation", scope=scope, seed=seed))

    def confirm_command(
        self,
        publish: Callable[[], None],
        before: int,
        *,
        what: str,
        timeout: float = 5.0,
        error: Callable[[str], Exception] | None = None,
        abort: Callable[[], str | None] | None = None,
        resend: bool = True,
    ) -> protocol.SimState:
        """Call ``publish()`` until the simulator's ``cmd_count`` passes ``before``; returns that state.

        The one way a velocity command is confirmed (robot helper, replay): a message sent before the
        simulator's reader matched ours is lost, so it is sent again every :data:`COMMAND_RESEND` s
        (``resend=False``: once, for a stream whose reader has matched already).
        """
        sent = -math.inf
        seen = before

        def arrived() -> protocol.SimState | None:
            nonlocal sent, seen
            now = time.monotonic()
            if sent == -math.inf or (resend and now - sent >= COMMAND_RESEND):
                publish()
                sent = now
            st = self.state()
            seen = int(st["cmd_count"])
            return st if seen > before else None

        return wait_until(
            arrived,
            timeout,
            what=what,
            describe=lambda: f"cmd_count stayed at {seen}",
            error=error or ControlError,
            abort=abort or self.abort,
        )

    def wait_for_commands(self, count: int, timeout: float = 5.0) -> protocol.SimState:
        """Wait until the simulator has received at least ``count`` velocity commands (state cmd_count).

        The deterministic-command recipe: pause, publish, ``wait_for_commands(before + 1)``, step.
        """
        last: protocol.SimState = {}

        def probe() -> protocol.SimState | None:
            last.update(self.state())
            return protocol.SimState(**last) if int(last.get("cmd_count", 0)) >= count else None

        try:
            return wait_until(
                probe,
                timeout,
                what=f"the simulator to receive velocity command #{count}",
                describe=lambda: f"cmd_count is {last.get('cmd_count')}; check the command topic and its message type",
            )
        except WaitTimeout as exc:
            raise ControlError(str(exc)) from None

    # -- faults ----------------------------------------------------------------------------------
    def inject_fault(self, spec: protocol.FaultSpec) -> protocol.FaultSpec:
        """Add a fault (validated by the simulator: unknown topic or wheel -> ControlError naming them)."""
        payload: dict[str, Any] = {k: v for k, v in spec.items() if k != "id"}
        return cast(protocol.FaultSpec, self.call("inject_fault", **payload))

    def clear_fault(self, fault_id: int | None = None) -> list[int]:
        """Remove one fault, or every fault; returns the ids removed."""
        return self.clear_fault_at(fault_id)[0]

    def clear_fault_at(self, fault_id: int | None = None) -> tuple[list[int], float | None]:
        """:meth:`clear_fault`, with the sim time it happened (None from a simulator that does not say)."""
        reply = self.call("clear_fault", id=fault_id)
        t = reply.get("t")
        return [int(i) for i in reply.get("cleared", [])], None if t is None else float(t)

    def faults(self) -> list[protocol.FaultSpec]:
        return cast(list[protocol.FaultSpec], self.call("get_faults").get("faults", []))

    # -- entities --------------------------------------------------------------------------------
    def entities(self) -> list[str]:
        return list(self.call("get_entities").get("entities", []))

    def get_entity_state(self, name: str) -> protocol.EntityState:
        return cast(protocol.EntityState, self.call("get_entity_state", name=name))

    def set_entity_state(
        self, name: str, pose: Mapping[str, float] | None = None, twist: Mapping[str, float] | None = None
    ) -> protocol.EntityState:
        reply = self.call(
            "set_entity_state",
            name=name,
            pose=dict(pose) if pose else None,
            twist=dict(twist) if twist is not None else None,
        )
        return cast(protocol.EntityState, reply)

    def spawn(
        self,
        name: str,
        shape: str = "box",
        size: tuple[float, ...] | list[float] = (0.2, 0.2, 0.2),
        pose: Mapping[str, float] | None = None,
        static: bool = True,
        mass: float | None = None,
        allow_renaming: bool = False,
    ) -> str:
        """Add a simple obstacle; returns its name (renamed when ``allow_renaming`` and taken)."""
        reply = self.call(
            "spawn_entity",
            name=name,
            shape=shape,
            size=[float(v) for v in size],
            pose=dict(pose or {}),
            static=static,
            mass=mass,
            allow_renaming=allow_renaming,
        )
        return str(reply.get("name", name))

    def delete(self, name: str) -> None:
        self.call("delete_entity", name=name)
