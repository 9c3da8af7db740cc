"""Load a recorded run: rosbag2 (MCAP or sqlite3, directory or single file), ROS 1 ``.bag``, or JSON.

Bags are read with ``rosbags.highlevel.AnyReader`` (pure Python, no ROS install needed); types
come from the bag's own definitions, falling back to the ROS 2 Kilted / ROS 1 Noetic type stores.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pytest_simtwin.errors import DataError
from pytest_simtwin.ros.messages import yaw_from_quaternion
from pytest_simtwin.twin.data import Trajectory, as_array, fill_missing_velocities, from_json_dict, matrix

ODOM_TYPES = ("nav_msgs/msg/Odometry",)
CMD_TYPES = ("geometry_msgs/msg/Twist", "geometry_msgs/msg/TwistStamped")
JOINT_TYPES = ("sensor_msgs/msg/JointState",)
BAG_SUFFIXES = (".bag", ".mcap", ".db3")

#: progress(done_fraction) callback for long files
Progress = Callable[[float], None]


@dataclass(frozen=True)
class Topics:
    """Topic names to read; ``cmd_vel``/``joint_states`` may be absent from a recording."""

    odom: str = "/odom"
    cmd_vel: str = "/cmd_vel"
    joint_states: str = "/joint_states"


def load_trajectory(
    path: str | Path,
    *,
    topics: Topics | None = None,
    time_source: str = "auto",
    source: str | None = None,
    progress: Progress | None = None,
) -> Trajectory:
    """Load odometry (+ commands and joint states when present) from ``path``.

    ``time_source``: ``header`` (message stamps), ``log`` (bag receive time) or ``auto``: each
    topic's header stamps when all its messages carry one, receive times for a topic without
    (a plain Twist), on one clock (see :func:`_clocks`; ``meta["time_source"]`` says ``header``,
    ``log`` or ``mixed``). Messages recorded twice (same stamp) are read once.
    """
    p = Path(path)
    if time_source not in ("auto", "header", "log"):
        raise DataError(f"time_source must be auto, header or log, found {time_source!r}")
    if not p.exists():
        raise DataError(f"{p}: no such file or directory; expected a rosbag2 directory, .mcap, .db3, .bag or .json")
    if p.is_file() and p.suffix.lower() in (".json", ".jsonl"):
        traj = load_json(p, source=source)
        if progress is not None:
            progress(1.0)
        return traj
    if p.is_dir() or p.suffix.lower() in BAG_SUFFIXES:
        return load_bag(p, topics=topics or Topics(), time_source=time_source, source=source, progress=progress)
    raise DataError(
        f"{p}: unknown recording format {p.suffix!r}; expected a rosbag2 directory, .mcap, .db3, .bag (ROS 1) "
        "or .json (simtwin-trajectory/1)"
    )


def load_json(path: Path, source: str | None = None) -> Trajectory:
    text = path.read_text()
    try:
        if path.suffix.lower() == ".jsonl":
            data: Any = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "expected the simtwin-trajectory/1 format (see `simtwin record --help`)"
        ) from None
    traj = from_json_dict(data, str(path), source=source)
    traj.meta.setdefault("path", str(path))
    return traj


def _stamp(msg: Any) -> float | None:
    header = getattr(msg, "header", None)
    if header is None:
        return None
    st = header.stamp
    value = float(st.sec) + float(getattr(st, "nanosec", getattr(st, "nsec", 0))) * 1e-9
    return value if value > 0 else None


def _default_typestore(path: Path) -> Any:
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS1_NOETIC if path.suffix == ".bag" else Stores.ROS2_KILTED)


def _bag_error(path: Path, exc: BaseException) -> DataError:
    return DataError(
        f"{path}: cannot read this recording ({type(exc).__name__}: {exc}). Expected a readable rosbag2 "
        "(MCAP or sqlite3) or ROS 1 bag; it may be truncated or still being written (a recorder killed "
        "before closing the bag leaves no index: re-index it with `ros2 bag reindex`)."
    )


def discover(
    present: dict[str, str], name: str, types: tuple[str, ...], what: str, option: str, path: Path
) -> str | None:
    """The topic to read: ``name`` when the bag has it, else the one topic of ``types`` (None when there is none).

    Several candidates: the one whose last name component matches (``/robot1/odom`` for ``/odom``),
    else a clear error listing them.
    """
    if name in present:
        return name
    candidates = sorted(t for t, ty in present.items() if ty in types)
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    leaf = name.rstrip("/").rsplit("/", 1)[-1]
    same = [t for t in candidates if t.rstrip("/").rsplit("/", 1)[-1] == leaf]
    if len(same) == 1:
        return same[0]
    raise DataError(
        f"{path}: no {what} topic {name!r}, and several of type {' or '.join(types)}: {', '.join(candidates)}; "
        f"pass the one to use ({option})"
    )


#: the receive times of a stamped topic within this of its stamps: the recorder's and the robot's clocks agree
CLOCKS_AGREE = 1.0


def _clocks(rows: dict[str, list[tuple[float, float | None, Any]]], time_source: str) -> dict[str, float | None]:
    """Per topic: the shift added to its header stamps, or None to use its bag receive times.

    ``auto``: every topic whose messages all carry a stamp uses it (a real robot's receive times
    jitter by milliseconds and a stalled link delivers late, out of order), and a topic without
    stamps (a plain Twist) uses receive times. Stamps may come from two clocks (the robot's and the
    teleop computer's): a stamped topic whose receive times lag its stamps by more than
    ``CLOCKS_AGREE`` (median) is shifted by that lag onto the recorder's clock when another topic
    uses receive times or lags differently; otherwise stamps are left as they are.
    """
    if time_source == "log":
        return dict.fromkeys(rows)
    if time_source == "header":
        return dict.fromkeys(rows, 0.0)
    stamped = {k: bool(r) and all(stamp is not None for _, stamp, _ in r) for k, r in rows.items()}
    lags = {
        k: float(np.median([log - float(stamp) for log, stamp, _ in r if stamp is not None]))
        for k, r in rows.items()
        if stamped[k]
    }
    unstamped = any(r and not stamped[k] for k, r in rows.items())
    if not unstamped and (not lags or max(lags.values()) - min(lags.values()) <= CLOCKS_AGREE):
        return dict.fromkeys(rows, 0.0)  # one clock for every topic (or all shifted alike: a re-recorded bag)
    return {k: (None if k not in lags else lags[k] if abs(lags[k]) > CLOCKS_AGREE else 0.0) for k in rows}


def _time_source_name(clock: dict[str, float | None], rows: dict[str, list[Any]]) -> str:
    used = [clock[k] for k, r in rows.items() if r]
    if all(c is None for c in used):
        return "log"
    if all(c == 0.0 for c in used):
        return "header"
    return "mixed"


def _body_speed(odom: list[Any], theta: Any) -> tuple[Any, str]:
    """Forward speed in the robot's frame, and the frame the odometry's twist was given in.

    REP 105 puts an Odometry twist in ``child_frame_id`` (the robot), where a differential drive
    has no sideways velocity; some drivers fill it in the odom frame instead. When the sideways
    part is a large share of the speed while moving, the twist is rotated into the robot frame.
    """
    vx = as_array([o.twist.twist.linear.x for o in odom])
    vy = as_array([o.twist.twist.linear.y for o in odom])
    speed = np.hypot(vx, vy)
    moving = np.isfinite(speed) & (speed > 0.02)
    if moving.sum() < 10 or float(np.median(np.abs(vy[moving]) / speed[moving])) < 0.2:
        return vx, "child"
    th = np.asarray(theta, dtype=float)
    return np.cos(th) * vx + np.sin(th) * vy, "odom (rotated into the robot frame)"


def _dedupe(rows: list[tuple[float, float | None, Any]]) -> list[tuple[float, float | None, Any]]:
    """Drop messages recorded twice (same stamp, a second copy): a duplicate carries no new sample."""
    out: list[tuple[float, float | None, Any]] = []
    seen: set[float] = set()
    for row in rows:
        stamp = row[1]
        if stamp is not None:
            if stamp in seen:
                continue
            seen.add(stamp)
        out.append(row)
    return out


def load_bag(
    path: Path,
    *,
    topics: Topics,
    time_source: str = "auto",
    source: str | None = None,
    progress: Progress | None = None,
) -> Trajectory:
    from rosbags.highlevel import AnyReader

    rows: dict[str, list[tuple[float, float | None, Any]]] = {"odom": [], "cmd": [], "joint": []}
    try:
        with AnyReader([path], default_typestore=_default_typestore(path)) as reader:
            present = {c.topic: c.msgtype for c in reader.connections}
            listing = ", ".join(f"{t} ({ty})" for t, ty in sorted(present.items())) or "none"
            odom_topic = discover(present, topics.odom, ODOM_TYPES, "odometry", "--odom-topic", path)
            if odom_topic is None:
                raise DataError(
                    f"{path}: no odometry topic {topics.odom!r} and no nav_msgs/msg/Odometry topic in the recording; "
                    f"topics present: {listing}. Record the odometry, or pass its name (--odom-topic / topics.odom)."
                )
            if present[odom_topic] not in ODOM_TYPES:
                raise DataError(
                    f"{path}: {odom_topic} has type {present[odom_topic]}, expected nav_msgs/msg/Odometry; "
                    f"topics present: {listing}"
                )
            cmd_topic = discover(present, topics.cmd_vel, CMD_TYPES, "velocity command", "--cmd-vel-topic", path)
            joint_topic = discover(
                present, topics.joint_states, JOINT_TYPES, "joint state", "--joint-states-topic", path
            )
            wanted = {odom_topic: "odom"}
            conns = [c for c in reader.connections if c.topic == odom_topic]
            for topic, key, types in ((cmd_topic, "cmd", CMD_TYPES), (joint_topic, "joint", JOINT_TYPES)):
                found = [c for c in reader.connections if c.topic == topic and c.msgtype in types]
                if found:
                    wanted[str(topic)] = key
                    conns += found
            total = max(sum(c.msgcount for c in conns), 1)
            for done, (conn, log_ns, raw) in enumerate(reader.messages(connections=conns), 1):
                msg = reader.deserialize(raw, conn.msgtype)
                rows[wanted[conn.topic]].append((log_ns * 1e-9, _stamp(msg), msg))
                if progress is not None and done % 2000 == 0:
                    progress(done / total)
    except DataError:
        raise
    except Exception as exc:  # rosbags raises many unrelated types for corrupt files
        raise _bag_error(path, exc) from exc
    if progress is not None:
        progress(1.0)
    if not rows["odom"]:
        raise DataError(f"{path}: the topic {topics.odom} holds no messages; expected odometry samples")
    used = [r for r in rows.values() if r]
    if time_source == "header" and any(stamp is None for r in used for _, stamp, _ in r):
        raise DataError(
            f"{path}: time_source=header but some messages have no header stamp (plain Twist?); use auto or log"
        )
    clock = _clocks(rows, time_source)
    for key in rows:
        rows[key] = _dedupe(rows[key])

    def times(key: str) -> list[float]:
        shift = clock.get(key)
        if shift is None:
            return [log for log, _, _ in rows[key]]
        return [log if stamp is None else stamp + shift for log, stamp, _ in rows[key]]

    odom = [m for _, _, m in rows["odom"]]
    theta = np.unwrap(
        [
            yaw_from_quaternion(
                o.pose.pose.orientation.x,
                o.pose.pose.orientation.y,
                o.pose.pose.orientation.z,
                o.pose.pose.orientation.w,
            )
            for o in odom
        ]
    )
    vx, twist_frame = _body_speed(odom, theta)
    cmds = [m.twist if hasattr(m, "twist") else m for _, _, m in rows["cmd"]]
    joints = [m for _, _, m in rows["joint"]]
    names = list(joints[0].name) if joints else []
    joints = [j for j in joints if list(j.name) == names]
    joint_t = [t for (t, (_, _, m)) in zip(times("joint"), rows["joint"], strict=False) if list(m.name) == names]
    traj = Trajectory(
        source=source or path.name,
        t=as_array(times("odom")),
        x=as_array([o.pose.pose.position.x for o in odom]),
        y=as_array([o.pose.pose.position.y for o in odom]),
        theta=as_array(theta),
        vx=vx,
        vtheta=as_array([o.twist.twist.angular.z for o in odom]),
        cmd_t=as_array(times("cmd")),
        cmd_vx=as_array([c.linear.x for c in cmds]),
        cmd_vtheta=as_array([c.angular.z for c in cmds]),
        joint_t=as_array(joint_t),
        joint_names=names,
        joint_position=matrix([list(j.position) for j in joints]),
        joint_velocity=matrix([list(j.velocity) for j in joints])
        if joints and all(len(j.velocity) == len(names) for j in joints)
        else np.zeros((0, 0)),
        meta={
            "path": str(path),
            "time_source": _time_source_name(clock, rows),
            "topics": {"odom": odom_topic, "cmd_vel": cmd_topic, "joint_states": joint_topic},
            "bag_topics": listing,
            "twist_frame": twist_frame,
            "clock_shift_s": {k: v for k, v in clock.items() if v},
        },
    )
    if not np.all(np.isfinite(traj.x)) or not np.all(np.isfinite(traj.y)):
        raise DataError(f"{path}: {topics.odom} contains non-finite positions (NaN/inf); expected finite poses")
    if np.isnan(traj.vx).all() and len(traj) > 1:
        traj.vx[:] = math.nan
        fill_missing_velocities(traj)
    return traj
