"""``simtwin record``: record a robot's (or simulator's) odometry, joint states and commands to MCAP.

It uses the per-test recorder of :mod:`pytest_simtwin.results.recording` (raw CDR subscriptions, one MCAP
writer for the whole project) on a private :class:`~pytest_simtwin.ros.session.RosSession` of the given
domain, with the fast-discovery environment every process of a domain must share.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.errors import ConfigError, DataError, WaitTimeout
from pytest_simtwin.results.recording import TopicSpec, recorder_for
from pytest_simtwin.ros.environment import ros_environment
from pytest_simtwin.ros.session import RosSession
from pytest_simtwin.twin.loaders import Topics

CMD_TYPES = ("geometry_msgs/msg/Twist", "geometry_msgs/msg/TwistStamped")


def _domain(domain: int | None) -> int:
    if domain is not None:
        value = domain
    else:
        raw = os.environ.get("ROS_DOMAIN_ID", "0") or "0"
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"ROS_DOMAIN_ID={raw!r} is not an integer; pass --domain N") from None
    if not 0 <= value <= 232:
        raise ConfigError(f"ROS domain id must be in 0-232, found {value}")
    return value


def _graph_with(graph: dict[str, list[str]], topic: str) -> dict[str, list[str]] | None:
    return graph if topic in graph else None


def _graph_with_all(graph: dict[str, list[str]], topics: list[str]) -> dict[str, list[str]] | None:
    return graph if all(t in graph for t in topics) else None


def record(
    output: Path,
    *,
    domain: int | None = None,
    topics: Topics | None = None,
    duration: float | None = None,
    cmd_vel: bool = True,
    scan_topic: str | None = None,
    wait: float = 10.0,
    stop_event: threading.Event | None = None,
    quiet: bool = False,
) -> Path:
    """Record until ``duration`` seconds passed, Ctrl-C or ``stop_event``; returns the bag folder."""

    tp = topics or Topics()
    domain_id = _domain(domain)
    env = ros_environment(domain_id, os.environ.get("GZ_PARTITION", f"simtwin_record_{domain_id}"))
    stop = stop_event or threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        with RosSession(domain_id, env, name="simtwin_record") as ros:
            try:
                graph: dict[str, list[str]] = wait_until(
                    lambda: _graph_with(ros.topic_types(), tp.odom),
                    wait,
                    what=f"a publisher of {tp.odom} on ROS_DOMAIN_ID {domain_id}",
                    describe=lambda: f"topics seen: {', '.join(sorted(ros.topic_types())) or 'none'}",
                )
            except WaitTimeout as exc:
                raise DataError(
                    f"{exc}. Expected a robot or simulator publishing odometry on this domain; check "
                    "ROS_DOMAIN_ID/--domain and --odom-topic"
                ) from None
            specs = [TopicSpec(tp.odom, "nav_msgs/msg/Odometry")]
            optional: list[tuple[str, tuple[str, ...]]] = [(tp.joint_states, ("sensor_msgs/msg/JointState",))]
            if cmd_vel:
                optional.append((tp.cmd_vel, CMD_TYPES))
            if scan_topic:
                optional.append((scan_topic, ("sensor_msgs/msg/LaserScan",)))
            # Discovery is incremental: give the optional topics a moment to show up (bounded, no error).
            with contextlib.suppress(WaitTimeout):
                graph = wait_until(
                    lambda: _graph_with_all(ros.topic_types(), [t for t, _ in optional if t != tp.cmd_vel]),
                    min(wait, 2.0),
                    what="the optional topics",
                )
            for topic, types in optional:
                found = [t for t in graph.get(topic, []) if t in types]
                # A command topic may have no publisher yet: record the usual type anyway.
                type_name = found[0] if found else (types[0] if topic == tp.cmd_vel else None)
                if type_name:
                    specs.append(TopicSpec(topic, type_name))
                elif not quiet:
                    print(f"simtwin record: {topic} not on the domain yet, not recorded", file=sys.stderr)
            rec = recorder_for(ros, specs)
            rec.start()
            t0 = time.monotonic()
            if not quiet:
                names = ", ".join(s.topic for s in specs)
                until = f"for {duration:g} s" if duration else "until Ctrl-C"
                print(f"recording {names} on ROS_DOMAIN_ID {domain_id} {until}", file=sys.stderr)
            announced: set[str] = set()
            while not stop.is_set():
                left = None if duration is None else duration - (time.monotonic() - t0)
                if left is not None and left <= 0:
                    break
                stop.wait(0.2 if left is None else min(0.2, left))
                if not quiet:
                    # A topic seen in the graph is not yet a matched one: say when data really flows.
                    for topic in sorted(rec.seen_topics() - announced):
                        announced.add(topic)
                        print(
                            f"simtwin record: first message on {topic} after {time.monotonic() - t0:.1f} s",
                            file=sys.stderr,
                        )
            take = rec.stop()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    counts = take.counts()
    if not counts.get(tp.odom):
        raise DataError(
            f"no message arrived on {tp.odom} during the recording ({time.monotonic() - t0:.1f} s); "
            f"counts: {counts}. The publisher was seen: check its QoS and that it is still running"
        )
    path = take.write(Path(output))
    if not quiet:
        print(f"wrote {path}: " + ", ".join(f"{t} {n}" for t, n in counts.items()), file=sys.stderr)
    return path
