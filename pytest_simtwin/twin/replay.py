"""Replay a real run's ``/cmd_vel`` sequence in the simulator and record its response (open loop).

It goes through the same :class:`~pytest_simtwin.runtime.session.SimSession` and backends as the tests,
and uses the robot helper's deterministic technique: with the simulator paused, publish a command,
wait until the simulator's ``cmd_count`` shows it arrived, then step exactly to the next command's
time. The simulated run therefore keeps the real timing in sim time and is the same at any
real-time factor and CPU load. Repeated identical commands are merged into one longer step.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin._internal.waiting import wait_until as _wait
from pytest_simtwin.errors import ControlError, DataError, SimulatorError
from pytest_simtwin.ros.messages import twist_type, yaw_from_quaternion
from pytest_simtwin.twin.data import Trajectory, as_array, matrix

if TYPE_CHECKING:
    from pytest_simtwin.backends.base import SimConfig
    from pytest_simtwin.runtime.session import SimSession

#: Longest single step (sim s). The simulator's publishers keep the last 10 messages: a longer
#: burst (31 Hz poses) loses some under CPU load. After each step we wait for its last pose.
MAX_STEP = 0.25


def command_plan(real: Trajectory, merge: bool = True) -> list[tuple[float, float, float]]:
    """(duration, vx, wz) segments: a lead-in at rest, then each command held until the next one."""
    if not real.has_commands:
        raise DataError(
            f"{real.source}: replay needs the real /cmd_vel sequence, found no commands in the recording"
            + (f" (topics present: {real.meta['bag_topics']})" if real.meta.get("bag_topics") else "")
            + "; pass the command topic with --cmd-vel-topic, record /cmd_vel too (`simtwin record` does by "
            "default) or pass a simulated run to compare"
        )
    t_end = float(real.t[-1])
    times = np.append(real.cmd_t, max(t_end, float(real.cmd_t[-1])))
    plan: list[tuple[float, float, float]] = []
    lead = float(real.cmd_t[0] - real.t[0])
    if lead > 0:
        plan.append((lead, 0.0, 0.0))
    for i in range(real.cmd_t.size):
        dur = float(times[i + 1] - times[i])
        vx, wz = float(real.cmd_vx[i]), float(real.cmd_vtheta[i])
        if dur <= 0:
            continue
        if merge and plan and plan[-1][1] == vx and plan[-1][2] == wz:
            plan[-1] = (plan[-1][0] + dur, vx, wz)
        else:
            plan.append((dur, vx, wz))
    return plan


def _stamp(msg: Any) -> float:
    return float(msg.header.stamp.sec) + float(msg.header.stamp.nanosec) * 1e-9


def _await_stamp(buf: Any, sim_t: float, timeout: float = 1.0) -> None:
    """Wait (bounded, no error: a lost message is tolerated) until a pose stamped >= ``sim_t`` arrived."""

    def arrived() -> bool:
        latest = buf.latest()
        return latest is not None and _stamp(latest) >= sim_t

    with contextlib.suppress(Exception):
        wait_until(
            arrived, timeout, what=f"a pose stamped at sim time {sim_t:.3f} s", interval=0.0005, max_interval=0.002
        )


def _in_time_order(msgs: Any) -> list[Any]:
    """Poses sorted by stamp, one per stamp (the last received): a paused simulator re-sends its last
    pose for late subscribers, and a copy arriving after newer poses must not fold the trajectory back."""
    by_stamp: dict[float, Any] = {}
    for m in msgs:
        by_stamp[round(_stamp(m), 9)] = m
    return [by_stamp[k] for k in sorted(by_stamp)]


def replay(
    real: Trajectory,
    session: SimSession,
    config: SimConfig | None = None,
    *,
    progress: Callable[[float], None] | None = None,
    source: str = "simulator replay",
    pose: str = "ground_truth",
    joints: bool = False,
) -> Trajectory:
    """Drive the session's simulator with ``real``'s commands; returns the simulated run.

    ``pose``: ``ground_truth`` (the simulator's true base motion, body-frame speeds; what an
    external tracker would see on the real robot) or ``odom`` (the simulated wheel odometry,
    which, like the real one, cannot see a wrong wheel radius). ``joints`` also records
    /joint_states (off by default: every message costs a Python callback and scoring ignores
    them). Timestamps are sim time shifted so the plan starts where the real run does.
    """
    if pose not in ("ground_truth", "odom"):
        raise ValueError(f"replay pose must be 'ground_truth' or 'odom', found {pose!r}")
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import JointState


    plan = command_plan(real)
    if config is not None:
        session.ensure(config)
    if session.backend is None:
        raise SimulatorError("replay: no simulator is running in this session (pass a SimConfig)")
    control = session.control  # replay needs stepping: ControlError names the backend otherwise
    ros = session.ros
    assert ros is not None
    features = control.features()
    topics = dict(features.get("topics") or {})
    cmd_topic = str(topics.get("cmd_vel") or "/cmd_vel")
    cmd_type = str(topics.get("cmd_vel_type") or (session.config.cmd_vel_type if session.config else "twist"))
    pose_topic = str(topics.get(pose) or ("/odom" if pose == "odom" else "/simtwin/ground_truth"))
    odom_buf = ros.subscribe(pose_topic, Odometry)
    joint_buf = ros.subscribe(str(topics.get("joint_states") or "/joint_states"), JointState) if joints else None
    msg_cls = twist_type(cmd_type)
    pub = ros.publisher(cmd_topic, msg_cls)

    def command(vx: float, wz: float) -> Any:
        msg = msg_cls()
        tw = msg.twist if cmd_type == "twist_stamped" else msg
        tw.linear.x, tw.angular.z = vx, wz
        return msg

    control.pause()
    control.reset("all")
    state = control.pause()
    sim_start = float(state["sim_time"])
    count = int(state["cmd_count"])
    wall0 = time.monotonic()
    odom_buf.clear()
    if joint_buf is not None:
        joint_buf.clear()
    total = sum(d for d, _, _ in plan)
    done = 0.0
    t_cmd: list[float] = []
    applied: list[tuple[float, float]] = []
    step_size = float(state.get("step_size") or 0.001)
    max_steps = max(int(MAX_STEP / step_size), 1)
    sim_t = seg_end = sim_start
    touched: dict[str, dict[str, Any]] = {}
    try:
        for duration, vx, wz in plan:
            msg = command(vx, wz)
            st = control.confirm_command(
                functools.partial(pub.publish, msg),
                count,
                # resend only until the first command arrived: after that the (reliable) topic loses
                # nothing, and a resent copy arriving late would count as the next command and overwrite it
                resend=not t_cmd,
                what=f"the simulator to receive ({vx:g}, {wz:g}) on {cmd_topic}",
                abort=session.death_reason,
            )
            count = int(st["cmd_count"])
            t_cmd.append(sim_t)
            applied.append((vx, wz))
            # Step whole physics steps towards the planned end of this segment: a duration that is
            # not a multiple of the step size would be rounded by the simulator on every call and drift.
            seg_end += duration
            while seg_end - sim_t > step_size / 2:
                n = min(max(round((seg_end - sim_t) / step_size), 1), max_steps)
                st = control.step(steps=n, listened=ros.take_fresh())
                sim_t = float(st["sim_time"])
                for entity in st.get("contacts") or ():
                    # anything but the ground: the replayed robot is not free (sampled after each step)
                    if entity not in touched:
                        touched[entity] = {"t": sim_t - sim_start, "entity": entity, "x": None, "y": None}
                        latest = odom_buf.latest()
                        if latest is not None:
                            touched[entity]["x"] = float(latest.pose.pose.position.x)
                            touched[entity]["y"] = float(latest.pose.pose.position.y)
                _await_stamp(odom_buf, sim_t - 0.05)
            done += duration
            if progress is not None:
                progress(done / total)
        # stop the robot, as a recording ends
        pub.publish(command(0.0, 0.0))
        end_t = sim_t

        def complete() -> bool:
            latest = odom_buf.latest()
            return latest is not None and _stamp(latest) >= end_t - 0.1


        with contextlib.suppress(Exception):
            _wait(complete, 2.0, what="the last odometry of the replay")
    except ControlError as exc:
        # Attach the simulator's log: a CI failure must be readable without a re-run.
        if not session.alive:
            raise session.died_error(f"during the replay of {real.source}") from None
        raise ControlError(
            f"replay of {real.source} at sim time {sim_t - sim_start:.2f} s of {total:.2f} s: {exc.message}",
            log_tail=session.log_tail(),
        ) from None
    finally:
        with contextlib.suppress(Exception):
            control.pause()
    odom = _in_time_order(odom_buf.messages())
    odom = [m for m in odom if sim_start - 1e-6 <= _stamp(m) <= sim_t + 1e-6]
    if len(odom) < 3:
        raise SimulatorError(
            f"replay: the simulator published {len(odom)} odometry messages during {sim_t - sim_start:.2f} s of sim "
            "time; expected its odometry rate times the duration",
            log_tail=session.log_tail(),
        )
    # sim time -> real clock: the first planned segment starts at real.t[0] (lead-in) or the first command
    shift = float(real.t[0] if real.cmd_t[0] > real.t[0] else real.cmd_t[0]) - sim_start
    t = np.array([_stamp(m) for m in odom]) + shift
    theta = np.unwrap([yaw_from_quaternion(*(getattr(m.pose.pose.orientation, k) for k in "xyzw")) for m in odom])
    lin = [m.twist.twist.linear for m in odom]
    if pose == "ground_truth":  # world-frame twist -> forward speed
        speeds = [v.x * math.cos(th) + v.y * math.sin(th) for v, th in zip(lin, theta, strict=True)]
    else:
        speeds = [v.x for v in lin]
    js = [m for m in joint_buf.messages() if sim_start - 1e-6 <= _stamp(m) <= sim_t + 1e-6] if joint_buf else []
    names = list(js[0].name) if js else []
    js = [j for j in js if list(j.name) == names and len(j.velocity) == len(names)]
    traj = Trajectory(
        source=source,
        t=as_array(t),
        x=as_array([m.pose.pose.position.x for m in odom]),
        y=as_array([m.pose.pose.position.y for m in odom]),
        theta=as_array(theta),
        vx=as_array(speeds),
        vtheta=as_array([m.twist.twist.angular.z for m in odom]),
        cmd_t=as_array(np.array(t_cmd) + shift),
        cmd_vx=as_array([a[0] for a in applied]),
        cmd_vtheta=as_array([a[1] for a in applied]),
        joint_t=as_array(np.array([_stamp(j) for j in js]) + shift),
        joint_names=names,
        joint_position=matrix([list(j.position) for j in js]),
        joint_velocity=matrix([list(j.velocity) for j in js]),
        meta={
            "replay_wall_s": time.monotonic() - wall0,
            "sim_duration_s": sim_t - sim_start,
            "segments": len(plan),
            "pose": pose_topic,
            "contacts": list(touched.values()),
        },
    )
    expected = (sim_t - sim_start) * traj.rate
    if expected > 0 and len(traj) < 0.9 * expected:
        traj.meta["warning"] = f"received {len(traj)} of ~{expected:.0f} odometry messages (best-effort losses)"
    return traj
