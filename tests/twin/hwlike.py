"""Hardware-like TurtleBot3 recordings: what a real robot's bag looks like, made without our simulator.

Not our simulator and not our twin model (the "inverse crime" of scoring a model on data it made):
a per-wheel plant at 1 kHz following the TurtleBot3 firmware, read from ROBOTIS' sources:

* OpenCR ``turtlebot3_core_config.h`` (ROS 1, ROBOTIS-GIT/OpenCR, ``libraries/turtlebot3/examples/
  turtlebot3_burger/turtlebot3_core``): motor control and odometry at 30 Hz
  (``CONTROL_MOTOR_SPEED_PERIOD``, ``DRIVE_INFORMATION_PUBLISH_PERIOD``), command clamp 0.22 m/s /
  2.84 rad/s (burger; waffle 0.25 / 1.82), 4096 ticks per wheel turn (``TICK2RAD``), r 0.033 m,
  separation 0.160 m (waffle 0.287 m); the ROS 1 odometry takes its heading from the IMU.
* ``turtlebot3_motor_driver.cpp`` (``control_motors``): wheel speeds v -+ w s/2, converted to
  Dynamixel goal-velocity units (x 1263.63, 0.229 rpm each), truncated to integers and clamped to
  +-337; profile acceleration 0 (``motors.profile_acceleration`` of turtlebot3_bringup): a step
  goal, so the wheel response is the servo's own (a lag and a torque-limited acceleration).
* ROS 2 ``turtlebot3.cpp`` (OpenCR ``turtlebot3_ros2``): the command crosses the serial link as
  an int32 x 100 (0.01 m/s, 0.01 rad/s steps), motor loop at 50 Hz (``INTERVAL_MS_TO_CONTROL_MOTOR``).
* ROBOTIS-GIT/turtlebot3 ``turtlebot3_node/src/odometry.cpp``: v = r (dl + dr) / 2 / dt and
  w = r (dr - dl) / s / dt from successive encoder positions and message stamps (backward differences).

On top: a 3 % wheel-speed ripple (velocity loop, gears, floor), teleop commands at ~10 Hz in 0.01 m/s / 0.1 rad/s key steps with pauses and stops, command
transport delay with jitter, the motors' no-load speed (61 rpm: the burger cannot reach 0.22 m/s),
an effective wheel radius and separation that differ from the configured ones (tyre, scrub), stamp
jitter, bag receive times after the stamps, a few duplicated and late messages, an odometry that
does not start at the origin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .bagtools import write_events

MODELS = {
    # radius, separation, cmd clamp lin/ang, motor rpm (no load), ticks/rev
    "burger": (0.033, 0.160, 0.22, 2.84, 61.0),
    "waffle": (0.033, 0.287, 0.26, 1.82, 77.0),
}
GOAL_UNITS_PER_MPS = 1263.632956882  # turtlebot3_motor_driver.cpp: Goal_Velocity = V * 1263.63
GOAL_LIMIT = 337  # LIMIT_X_MAX_VELOCITY
TICKS = 4096


@dataclass(frozen=True)
class Hardware:
    model: str = "burger"
    firmware: str = "ros1"  # ros1: 30 Hz loops, IMU heading; ros2: 50 Hz motor loop, 0.01 command steps, wheel heading
    radius_scale: float = 0.985  # effective / configured wheel radius (tyre compression)
    separation_scale: float = 1.06  # effective / configured separation (contact patches scrub)
    radius_asymmetry: float = 0.005  # the left wheel's effective radius is this much smaller (wear): a slow drift
    transport_delay: float = 0.035  # s, teleop PC -> OpenCR
    transport_jitter: float = 0.008  # s, exponential extra delay
    motor_tau: float = 0.07  # s, Dynamixel velocity loop + wheel inertia (first order)
    motor_accel: float = 1.2  # m/s^2 at the wheel rim (torque limit)
    load_factor: float = 0.96  # loaded top speed / no-load speed
    speed_ripple: float = 0.03  # relative wheel-speed ripple (velocity loop, gears, floor): OU noise, 0.15 s
    odom_rate: float = 30.0
    stamp_jitter: float = 0.002  # s, odometry sample-time jitter (loop timing)
    read_skew: float = 0.002  # s, the encoders are read up to this long after the stamp is taken (sync read)
    receive_delay: float = 0.012  # s, odometry stamp -> bag receive time (rosserial + DDS)
    receive_jitter: float = 0.006
    gyro_bias: float = 0.002  # rad/s
    gyro_noise: float = 0.01  # rad/s per sample
    duplicates: int = 4  # odometry messages recorded twice
    late: int = 4  # odometry messages received out of order
    clock_offset: float = 0.0  # s, robot clock minus recorder clock (an unsynchronised robot)
    twist_frame: str = "child"  # child (REP 105, base_footprint) or odom: a driver that fills world-frame velocities
    start_pose: tuple[float, float, float] = (1.27, -0.43, 0.8)
    epoch: float = 1_733_000_000.0
    seed: int = 0


@dataclass
class Recording:
    """The messages of one recording: (stamp, receive time, payload) per topic."""

    odom: list[tuple[float, float, tuple[float, float, float, float, float, float]]]  # x, y, yaw, vx, vy, w
    cmd: list[tuple[float, float, tuple[float, float]]]  # stamp = publish time, receive = bag time
    truth: dict[str, np.ndarray]  # the plant's own time series (1 kHz), for diagnostics
    hardware: Hardware
    duration: float


def teleop(
    duration: float, rng: np.random.Generator, vmax: float, wmax: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keyboard/joystick teleop: publish times at ~10 Hz and the (v, w) published."""
    t = [0.0]
    while t[-1] < duration:
        t.append(t[-1] + 0.1 + rng.normal(0.0, 0.006))
    tt = np.asarray(t[:-1])
    v, w = np.zeros(tt.size), np.zeros(tt.size)
    goal_v = goal_w = 0.0
    cur_v = cur_w = 0.0
    next_change = 1.5
    mode = "keys"
    for i, ti in enumerate(tt):
        if ti >= next_change:
            r = rng.random()
            if r < 0.15:
                goal_v, goal_w = 0.0, 0.0  # a pause
                next_change = ti + rng.uniform(1.0, 3.0)
            else:
                goal_v = float(rng.choice([0.05, 0.08, 0.1, 0.12, 0.15, 0.18, 0.2, 0.22, -0.08]))
                goal_w = float(rng.choice([0.0, 0.0, 0.3, -0.3, 0.6, -0.6, 1.0, -1.2]))
                if rng.random() < 0.15:
                    goal_v, goal_w = 0.0, float(rng.choice([1.5, -1.5, 2.5]))  # turn on the spot
                next_change = ti + rng.uniform(2.0, 5.0)
            mode = "joy" if rng.random() < 0.35 else "keys"
            if rng.random() < 0.1:
                cur_v = cur_w = 0.0  # the stop key: everything to zero at once
        if mode == "joy":
            cur_v, cur_w = goal_v, goal_w  # a joystick jumps
        else:  # turtlebot3_teleop_key: +-0.01 m/s and +-0.1 rad/s per key press, ~2 presses per message
            cur_v += float(np.clip(goal_v - cur_v, -0.02, 0.02))
            cur_w += float(np.clip(goal_w - cur_w, -0.2, 0.2))
        v[i] = min(max(cur_v, -vmax), vmax)
        w[i] = min(max(cur_w, -wmax), wmax)
    return tt, np.round(v, 4), np.round(w, 4)


def generate(duration: float, hw: Hardware | None = None) -> Recording:
    """Drive the plant for ``duration`` seconds of teleop; the messages a bag would hold."""
    hw = hw or Hardware()
    rng = np.random.default_rng(hw.seed)
    r0, s0, vmax, wmax, rpm = MODELS[hw.model]
    cmd_t, cmd_v, cmd_w = teleop(duration, rng, vmax, wmax)
    arrive = cmd_t + hw.transport_delay + rng.exponential(hw.transport_jitter, cmd_t.size)
    arrive = np.maximum.accumulate(arrive)  # one serial link: in order
    dt = 0.001
    n = int(duration / dt) + 1
    tt = np.arange(n) * dt
    loop = 1.0 / (30.0 if hw.firmware == "ros1" else 50.0)
    wheel_max = r0 * 2 * math.pi * rpm / 60.0 * hw.load_factor  # m/s at the rim (configured radius)
    goal = [0.0, 0.0]
    vel = [0.0, 0.0]  # wheel rim speeds (configured radius), m/s
    ang = [0.0, 0.0]  # wheel angles, rad
    x, y, th = 0.0, 0.0, 0.0
    cols: dict[str, list[float]] = {k: [0.0] * n for k in ("v", "w", "x", "y", "theta", "al", "ar")}
    next_loop = 0.0
    k = 0
    s_eff = s0 * hw.separation_scale
    # Ornstein-Uhlenbeck ripple per wheel (relative), correlation time 0.15 s
    a_ou = math.exp(-dt / 0.15)
    kicks = rng.normal(0.0, hw.speed_ripple * math.sqrt(1 - a_ou**2), (n, 2)).tolist()
    ripple = [0.0, 0.0]
    for i in range(n):
        t = i * dt
        if t >= next_loop:  # firmware motor loop: latest command -> integer goal velocities
            next_loop += loop
            while k < arrive.size and arrive[k] <= t:
                k += 1
            v_c = float(cmd_v[k - 1]) if k else 0.0
            w_c = float(cmd_w[k - 1]) if k else 0.0
            if hw.firmware == "ros2":
                v_c, w_c = math.trunc(v_c * 100) / 100, math.trunc(w_c * 100) / 100
            v_c, w_c = min(max(v_c, -vmax), vmax), min(max(w_c, -wmax), wmax)
            for j, wheel in enumerate((v_c - w_c * s0 / 2, v_c + w_c * s0 / 2)):
                units = max(min(math.trunc(wheel * GOAL_UNITS_PER_MPS), GOAL_LIMIT), -GOAL_LIMIT)
                goal[j] = units / GOAL_UNITS_PER_MPS
        for j in (0, 1):  # servo: first-order response, torque-limited acceleration, motor top speed
            target = min(max(goal[j], -wheel_max), wheel_max)
            acc = min(max((target - vel[j]) / hw.motor_tau, -hw.motor_accel), hw.motor_accel)
            vel[j] += acc * dt
            ripple[j] = a_ou * ripple[j] + kicks[i][j]
            ang[j] += vel[j] * (1.0 + ripple[j]) / r0 * dt
        # ground: the effective radius and separation move the body
        vl = vel[0] * (1.0 + ripple[0]) * hw.radius_scale * (1.0 - hw.radius_asymmetry)
        vr = vel[1] * (1.0 + ripple[1]) * hw.radius_scale
        v_b = 0.5 * (vl + vr)
        w_b = (vr - vl) / s_eff
        th_mid = th + 0.5 * w_b * dt
        x += v_b * math.cos(th_mid) * dt
        y += v_b * math.sin(th_mid) * dt
        th += w_b * dt
        for key, val in (("v", v_b), ("w", w_b), ("x", x), ("y", y), ("theta", th), ("al", ang[0]), ("ar", ang[1])):
            cols[key][i] = val
    out = {key: np.asarray(val) for key, val in cols.items()}
    odom = _odometry(tt, out, hw, rng, r0, s0)
    cmd = [
        (hw.epoch + float(a), hw.epoch + float(a) + 0.0008, (float(b), float(c)))
        for a, b, c in zip(cmd_t, cmd_v, cmd_w, strict=True)
    ]
    return Recording(odom=odom, cmd=cmd, truth={"t": tt + hw.epoch, **out}, hardware=hw, duration=duration)


def _odometry(
    tt: np.ndarray, p: dict[str, np.ndarray], hw: Hardware, rng: np.random.Generator, r0: float, s0: float
) -> list[tuple[float, float, tuple[float, float, float, float, float, float]]]:
    """Odometry as the robot computes it: encoder ticks (and the IMU heading on ROS 1) at ~30 Hz."""
    period = 1.0 / hw.odom_rate
    base = np.arange(period, tt[-1], period)
    samples = base + rng.normal(0.0, hw.stamp_jitter, base.size)
    samples = np.clip(np.sort(samples), 0.0, tt[-1])
    idx = np.clip(np.searchsorted(tt, samples), 0, tt.size - 1)
    read = np.clip(np.searchsorted(tt, samples + rng.uniform(0.0, hw.read_skew, samples.size)), 0, tt.size - 1)
    ticks_l = np.floor(p["al"][read] / (2 * math.pi / TICKS))
    ticks_r = np.floor(p["ar"][read] / (2 * math.pi / TICKS))
    stamp_ms = np.round(tt[idx] * 1000.0) / 1000.0  # millis() resolution
    gyro_heading = (
        p["theta"][idx] + hw.gyro_bias * tt[idx] + np.cumsum(rng.normal(0.0, hw.gyro_noise * period, idx.size))
    )
    x0, y0, th0 = hw.start_pose
    x, y, th = x0, y0, th0
    last_heading = gyro_heading[0]
    rows = []
    for k in range(1, idx.size):
        dl = (ticks_l[k] - ticks_l[k - 1]) * 2 * math.pi / TICKS
        dr = (ticks_r[k] - ticks_r[k - 1]) * 2 * math.pi / TICKS
        step = float(stamp_ms[k] - stamp_ms[k - 1])
        if step <= 0:
            continue
        ds = r0 * (dl + dr) / 2.0
        if hw.firmware == "ros1":
            dth = float(gyro_heading[k] - last_heading)
            last_heading = float(gyro_heading[k])
        else:
            dth = r0 * (dr - dl) / s0
        x += ds * math.cos(th + dth / 2)
        y += ds * math.sin(th + dth / 2)
        th += dth
        stamp = hw.epoch + float(stamp_ms[k])
        receive = stamp + hw.receive_delay + float(rng.exponential(hw.receive_jitter))
        v, w = ds / step, dth / step
        vx, vy = (v * math.cos(th), v * math.sin(th)) if hw.twist_frame == "odom" else (v, 0.0)
        rows.append((stamp + hw.clock_offset, receive, (x, y, math.remainder(th, math.tau), vx, vy, w)))
    for j in rng.choice(np.arange(10, len(rows) - 10), hw.duplicates, replace=False):
        stamp, receive, payload = rows[j]
        rows.insert(int(j) + 1, (stamp, receive + 0.0005, payload))  # the same message recorded twice
    for j in rng.choice(np.arange(10, len(rows) - 10), hw.late, replace=False):
        stamp, _, payload = rows[j]
        rows[j] = (stamp, stamp - hw.clock_offset + 0.12, payload)  # delivered after the next ones (a stalled link)
    return rows


def write(rec: Recording, path: Path, kind: str, *, stamped_cmd: bool = False, cmd_topic: str = "/cmd_vel") -> Path:
    """Write ``rec`` as 'ros1' (.bag), 'mcap' or 'sqlite3' (rosbag2 folder); bag time = receive time."""
    from rosbags.typesys import Stores, get_typestore

    ros1 = kind == "ros1"
    store = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_KILTED)
    T = store.types

    def header(t: float, frame: str) -> Any:
        stamp = T["builtin_interfaces/msg/Time"](sec=int(t), nanosec=round((t - int(t)) * 1e9) % 1_000_000_000)
        if ros1:
            return T["std_msgs/msg/Header"](seq=0, stamp=stamp, frame_id=frame)
        return T["std_msgs/msg/Header"](stamp=stamp, frame_id=frame)

    def vec(x: float = 0.0, z: float = 0.0, y: float = 0.0) -> Any:
        return T["geometry_msgs/msg/Vector3"](x=x, y=y, z=z)

    def odom(stamp: float, payload: tuple[float, float, float, float, float, float]) -> Any:
        x, y, yaw, vx, vy, w = payload
        pose = T["geometry_msgs/msg/Pose"](
            position=T["geometry_msgs/msg/Point"](x=x, y=y, z=0.0),
            orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2)),
        )
        cov = np.zeros(36)
        return T["nav_msgs/msg/Odometry"](
            header=header(stamp, "odom"),
            child_frame_id="base_footprint",
            pose=T["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=cov),
            twist=T["geometry_msgs/msg/TwistWithCovariance"](
                twist=T["geometry_msgs/msg/Twist"](linear=vec(vx, y=vy), angular=vec(z=w)), covariance=cov
            ),
        )

    def cmd(stamp: float, payload: tuple[float, float]) -> Any:
        tw = T["geometry_msgs/msg/Twist"](linear=vec(payload[0]), angular=vec(z=payload[1]))
        if stamped_cmd:
            return T["geometry_msgs/msg/TwistStamped"](header=header(stamp, "base_footprint"), twist=tw)
        return tw

    cmd_type = "geometry_msgs/msg/TwistStamped" if stamped_cmd else "geometry_msgs/msg/Twist"
    events = [(round(rcv * 1e9), "/odom", odom(st, pl), "nav_msgs/msg/Odometry") for st, rcv, pl in rec.odom]
    events += [(round(rcv * 1e9), cmd_topic, cmd(st, pl), cmd_type) for st, rcv, pl in rec.cmd]
    return write_events(path, events, kind=kind, ros1=ros1, store=store)
