"""Per-test rosbag2 MCAP recordings and failure bundles.

A :class:`Recorder` subscribes once per topic through the worker's :class:`~.ros.RosSession` node
(raw subscriptions: the CDR bytes arrive without a deserialise/serialise round trip) and stays for
the whole session; per test :meth:`Recorder.start` / :meth:`Recorder.stop` bracket what is kept.
The messages are held in memory during the test and written afterwards (only when the record
mode asks for it), so disk I/O never runs in the executor's callbacks.

Bags are rosbag2 folders (``metadata.yaml`` + ``*.mcap``, ros2msg schemas, cdr messages) written
with ``rosbags``: ``ros2 bag info``, Foxglove and the ``mcap`` reader open them.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_simtwin._internal.files import nodeid_filename
from pytest_simtwin.control import protocol
from pytest_simtwin.errors import ConfigError, DataError
from pytest_simtwin.results.cameras import file_name as camera_file
from pytest_simtwin.results.records import TestRecord, atomic_write_text
from pytest_simtwin.ros.msgtypes import resolve_msg_type
from pytest_simtwin.ros.session import latched_qos, sensor_qos

if TYPE_CHECKING:
    from pytest_simtwin.ros.session import RosSession



@dataclass(frozen=True)
class TopicSpec:
    topic: str
    type_name: str  # "nav_msgs/msg/Odometry"

    def msg_class(self) -> type:
        return import_type(self.type_name)


def import_type(type_name: str) -> type:
    """The rclpy message class of ``pkg/msg/Name``; :class:`ConfigError` if it is not installed."""
    if type_name.count("/") != 2 or type_name.split("/")[1] != "msg":
        raise ConfigError(f"bad message type {type_name!r}: expected 'package/msg/Name', e.g. 'nav_msgs/msg/Odometry'")
    return resolve_msg_type(type_name)


def type_name_of(msg_type: type) -> str:
    return f"{msg_type.__module__.split('.')[0]}/msg/{msg_type.__name__}"


def parse_topic_lines(lines: Iterable[str]) -> list[TopicSpec]:
    """ini ``simtwin_record_topics``: one ``/topic package/msg/Type`` per line."""
    out = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].startswith("/"):
            raise ConfigError(f"simtwin_record_topics: expected '/topic package/msg/Type' per line, found {line!r}")
        out.append(TopicSpec(parts[0], parts[1]))
    return out


def default_topics(topics: Mapping[str, Any]) -> list[TopicSpec]:
    """The robot's standard topics from the simulator's features ``topics`` payload (control/protocol.py)."""

    cmd_type = (
        "geometry_msgs/msg/TwistStamped" if topics.get("cmd_vel_type") == "twist_stamped" else "geometry_msgs/msg/Twist"
    )
    wanted = [
        (topics.get("odom", protocol.ODOM), "nav_msgs/msg/Odometry"),
        (topics.get("cmd_vel", protocol.CMD_VEL), cmd_type),
        (topics.get("scan", protocol.SCAN), "sensor_msgs/msg/LaserScan"),
        (topics.get("joint_states", protocol.JOINT_STATES), "sensor_msgs/msg/JointState"),
        (topics.get("clock", protocol.CLOCK), "rosgraph_msgs/msg/Clock"),
        (topics.get("ground_truth", protocol.GROUND_TRUTH), "nav_msgs/msg/Odometry"),
        (protocol.FAULTS_TOPIC, "std_msgs/msg/String"),  # injected faults: a timeline in Foxglove
    ]
    return [TopicSpec(str(t), ty) for t, ty in wanted if t]


@dataclass
class Take:
    """What one test recorded: (topic, receive time ns, CDR bytes) in arrival order."""

    specs: list[TopicSpec]
    messages: list[tuple[str, int, bytes]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {s.topic: 0 for s in self.specs}
        for topic, _, _ in self.messages:
            out[topic] = out.get(topic, 0) + 1
        return out

    def write(self, path: Path) -> Path:
        """Write a rosbag2 MCAP folder at ``path`` (replaced if it exists)."""
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore

        store = get_typestore(Stores.ROS2_KILTED)
        if path.exists():
            shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
            conns = {}
            for spec in self.specs:
                _register_type(store, spec.type_name)
                conns[spec.topic] = writer.add_connection(spec.topic, spec.type_name, typestore=store)
            for topic, stamp, data in self.messages:
                writer.write(conns[topic], stamp, data)
        return path


def _register_type(store: Any, type_name: str) -> None:
    """Teach the typestore a message it does not ship, from the installed ``share/<pkg>/msg/*.msg``."""
    if type_name in store.fielddefs:
        return
    from rosbags.typesys import get_types_from_msg

    pkg, _, name = type_name.split("/")
    for prefix in dict.fromkeys([sys.prefix, *sys.path]):
        candidate = Path(prefix) / "share" / pkg / "msg" / f"{name}.msg"
        if candidate.is_file():
            store.register(get_types_from_msg(candidate.read_text(), type_name))
            return
    raise DataError(f"cannot record {type_name}: no message definition found (looked for share/{pkg}/msg/{name}.msg)")


class Recorder:
    """One raw subscription per topic on the session's node; per test it keeps or ignores messages."""

    def __init__(self, ros: RosSession, specs: Sequence[TopicSpec] = ()) -> None:
        self._ros = ros
        self.specs: list[TopicSpec] = []
        self._subs: list[Any] = []
        self._lock = threading.Lock()
        self._active = False
        self._messages: list[tuple[str, int, bytes]] = []
        self._seen: set[str] = set()
        self.add_topics(specs)

    def add_topics(self, specs: Iterable[TopicSpec]) -> None:

        node = self._ros.node
        if node is None:
            raise RuntimeError("Recorder needs a started RosSession")
        known = {s.topic for s in self.specs}
        for spec in specs:
            if spec.topic in known:
                continue
            cls = spec.msg_class()
            # deep queue: lockstep stepping publishes in bursts (100 /clock messages per sim second); the
            # faults topic is latched: its first event goes out as its publisher appears
            qos = latched_qos(100) if spec.topic == protocol.FAULTS_TOPIC else sensor_qos(1000)
            sub = node.create_subscription(cls, spec.topic, self._callback_for(spec.topic), qos, raw=True)
            self._subs.append(sub)
            self.specs.append(spec)
            known.add(spec.topic)

    def _callback_for(self, topic: str) -> Any:
        def callback(data: bytes) -> None:
            stamp = time.time_ns()
            with self._lock:
                if self._active:
                    self._messages.append((topic, stamp, bytes(data)))
                    self._seen.add(topic)

        return callback

    def start(self) -> None:
        with self._lock:
            self._messages = []
            self._seen = set()
            self._active = True

    def stop(self) -> Take:
        with self._lock:
            self._active = False
            messages, self._messages = self._messages, []
        return Take(list(self.specs), messages)

    def seen_topics(self) -> set[str]:
        """Topics with at least one message kept since start() (polled while recording: no scan)."""
        with self._lock:
            return set(self._seen)

    @property
    def active(self) -> bool:
        return self._active


_RECORDERS: weakref.WeakKeyDictionary[Any, Recorder] = weakref.WeakKeyDictionary()


def recorder_for(ros: RosSession, specs: Iterable[TopicSpec]) -> Recorder:
    """The session's recorder (created on first use; topics added as they are asked for)."""
    rec = _RECORDERS.get(ros)
    if rec is None or rec._ros.node is not ros.node:  # a restarted session needs new subscriptions
        rec = Recorder(ros, list(specs))
        _RECORDERS[ros] = rec
    else:
        rec.add_topics(specs)
    return rec


def read_counts(bag: Path) -> dict[str, int]:
    """Message counts per topic of a rosbag2 MCAP folder or file, read with the ``mcap`` library."""
    from mcap.reader import make_reader

    files = sorted(bag.glob("*.mcap")) if bag.is_dir() else [bag]
    if not files:
        raise DataError(f"{bag} holds no .mcap file: expected a rosbag2 MCAP folder")
    counts: dict[str, int] = {}
    for f in files:
        with f.open("rb") as fh:
            reader = make_reader(fh)
            summary = reader.get_summary()
            if summary is not None:
                for ch in summary.channels.values():
                    counts.setdefault(ch.topic, 0)
            for _schema, channel, _msg in reader.iter_messages():
                counts[channel.topic] = counts.get(channel.topic, 0) + 1
    return counts


# -- failure bundles -------------------------------------------------------------------------------


def safe_dirname(nodeid: str) -> str:
    """The folder name of a test's bundle or bag (the same rule as every per-test file)."""
    return nodeid_filename(nodeid)


def rerun_command(nodeid: str, args: Sequence[str], rootdir: Path) -> str:
    """One shell line that re-runs one test with the session's -p and --simtwin options.

    xdist, report and baseline-update options are dropped: a re-run is for one test, locally.
    """
    flags = {"--simtwin-update-baseline", "--simtwin-fail-on-regression"}
    drop = {"--simtwin-update-baseline", "--simtwin-metrics-json", "--simtwin-shard"}
    keep: list[str] = []
    it = iter(args)
    for arg in it:
        if arg in ("-p", "-o", "--override-ini", "-c"):
            value = next(it, "")
            if (arg == "-p" and value not in ("xdist", "no:xdist")) or value.startswith("simtwin_") or arg == "-c":
                keep += [arg, value]
        elif arg.startswith("-p") and len(arg) > 2:
            keep.append(arg)
        elif arg.startswith("--simtwin-"):
            name = arg.split("=", 1)[0]
            takes_value = "=" not in arg and name not in flags
            optval = next(it, "") if takes_value else None
            if name not in drop:
                keep += [arg] if optval is None else [arg, optval]
    cmd = [sys.executable, "-m", "pytest", nodeid, *keep]
    return f"cd {shlex.quote(str(rootdir))} && {shlex.join(cmd)}"


def write_bundle(
    directory: Path,
    rec: TestRecord,
    *,
    take: Take | None,
    images: Mapping[str, bytes],
    rerun: str,
    sim_log: Path | None = None,
    camera_images: Mapping[str, bytes] | None = None,
) -> Path:
    """A folder with everything needed to look into a failed test without re-running it."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    if take is not None:
        take.write(directory / "bag")
    if sim_log is not None and Path(sim_log).is_file():
        shutil.copy2(sim_log, directory / "simulator.log")
    for key, value in rec.artifacts.items():
        src = Path(value)
        is_log = key != "simulator_log" and (key.startswith(("log", "node:")) or src.suffix == ".log")
        if is_log and src.is_file() and src.parent != directory:
            name = re.sub(r"[^A-Za-z0-9._-]+", "-", key)
            shutil.copy2(src, directory / f"{name}{src.suffix or '.log'}")
    for name, png in images.items():
        (directory / f"{name}.png").write_bytes(png)
    for topic, png in (camera_images or {}).items():  # the last image per camera topic, full size
        (directory / camera_file(topic)).write_bytes(png)
    (directory / "rerun.sh").write_text(f"#!/bin/sh\n{rerun}\n")
    (directory / "rerun.sh").chmod(0o755)
    atomic_write_text(directory / "record.json", json.dumps(rec.to_dict(), indent=1, sort_keys=True, default=str))
    return directory
