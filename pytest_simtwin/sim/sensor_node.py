"""ROS publishers of the IMU, camera, depth/RGB-D camera, navsat and contact sensors (runner thread).

Topic names are gz-sensors' (or gazebo_ros') renamed through the bridge file like ros_gz_bridge; each
sensor publishes at its ``update_rate`` counted in physics steps. IMUs (and navsat) are computed at every
update whether heard or not, so their noise sequence does not depend on who subscribed; cameras render
only while a subscriber listens to one of their topics (rendering is the expensive part). Contact
sensors publish ros_gz_interfaces/Contacts (what ros_gz_bridge makes of gz.msgs.Contacts; the package is
built at first use by :mod:`msgbuild`) while someone listens and the sensor's collisions touch something.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import zlib
from array import array
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np

from pytest_simtwin.errors import ConfigError, SimulatorError
from pytest_simtwin.sim import msgbuild
from pytest_simtwin.sim.engine.contacts import sensor_contacts, sensor_geoms
from pytest_simtwin.sim.engine.sensors import Cameras, Imu, Noise, air_pressure, navsat_fix, points_xyz
from pytest_simtwin.sim.world.mjcf import device_site
from pytest_simtwin.sim.world.sensors import CAMERA_KINDS, SensorSpec

log = logging.getLogger("simtwin.sim")

#: role -> ROS message type name (checked against the bridge file's ros_type_name)
ROLE_TYPES = {
    "imu": "sensor_msgs/msg/Imu",
    "image": "sensor_msgs/msg/Image",
    "depth": "sensor_msgs/msg/Image",
    "camera_info": "sensor_msgs/msg/CameraInfo",
    "depth_camera_info": "sensor_msgs/msg/CameraInfo",
    "points": "sensor_msgs/msg/PointCloud2",
    "navsat": "sensor_msgs/msg/NavSatFix",
    "contact": "ros_gz_interfaces/msg/Contacts",
    "magnetometer": "sensor_msgs/msg/MagneticField",
    "air_pressure": "sensor_msgs/msg/FluidPressure",
}
#: Kinds we parse but do not publish, and why.
UNPUBLISHED: dict[str, str] = {}


def _stamp(stamp: Any, t: float) -> None:
    sec = math.floor(t)
    stamp.sec = int(sec)
    stamp.nanosec = min(round((t - sec) * 1e9), 999_999_999)


def _every(rate_hz: float, dt: float) -> int:
    return 1 if rate_hz <= 0 else max(1, round(1.0 / (rate_hz * dt)))


def _bytes(values: np.ndarray) -> array[int]:
    out = array("B")
    out.frombytes(np.ascontiguousarray(values).tobytes())
    return out


def _contacts_problem() -> str | None:
    """Why ros_gz_interfaces/Contacts cannot be had here (None: importable, built now if need be)."""
    try:
        msgbuild.ensure("ros_gz_interfaces")
    except Exception as exc:  # no compiler, a failed build: the rest of the simulator runs
        return f"not published: the ros_gz_interfaces message package is unavailable ({exc})"
    return None


def selected(spec: SensorSpec, disabled: Collection[str]) -> bool:
    """False when ``--no-sensor`` named the sensor, its kind, 'camera' (all cameras) or 'all'."""
    names = {spec.name, spec.kind, f"{spec.model}/{spec.link}/{spec.name}", "all"}
    if spec.kind in CAMERA_KINDS:
        names.add("camera")
    return not names & set(disabled)


class _Sensor:
    def __init__(self, spec: SensorSpec, every: int, topics: dict[str, str]) -> None:
        self.spec, self.every, self.topics = spec, every, topics
        self.pubs: dict[str, Any] = {}
        self.msgs: dict[str, Any] = {}
        self.imu: Imu | None = None
        self.noise: list[Noise] = []
        self.published = 0
        self.geoms: set[int] = set()  # contact: the watched collisions' geoms in ``model``
        self.model: Any = None
        self.heard, self.heard_at = False, 0.0


class SensorPublishers:
    """The non-lidar sensors of the robot: their publishers, schedule and messages."""

    def __init__(
        self,
        node: Any,
        devices: Sequence[SensorSpec],
        *,
        step_size: float,
        seed: int = 0,
        bridge: Mapping[str, tuple[str, str]] | None = None,
        disabled: Collection[str] = (),
        spherical: Sequence[float] | None = None,
        magnetic_field: Sequence[float] = (5.5645e-6, 22.8758e-6, -42.3884e-6),
        render_problem: str | None = None,
        send: Callable[[Any, Any], None] | None = None,
        create_publisher: Callable[[Any, str, Any], Any] | None = None,
    ) -> None:
        """``node``: the rclpy node; ``bridge``: gz topic -> (ROS topic, ros_type_name); ``spherical``:
        (lat, lon, elevation, heading); ``send(pub, msg)`` publishes (SimNode._send counts refused writes);
        ``create_publisher(type, topic, qos)`` makes the publishers (default ``node.create_publisher``)."""
        self.node = node
        self._create_publisher = create_publisher or node.create_publisher
        self._publish: Callable[[Any, Any], None] = send or (lambda pub, msg: pub.publish(msg))
        self.seed = seed
        self.spherical = tuple(spherical) if spherical is not None else (0.0, 0.0, 0.0, 0.0)
        self.magnetic_field = np.array(magnetic_field, dtype=float)  # tesla, world frame
        self.cameras = Cameras(seed)
        self._error_logged = bool(render_problem)  # the command line logged it already
        if render_problem:
            self.cameras.error = render_problem
        self.sensors: list[_Sensor] = []
        self.stamps: dict[str, float] = {}  # topic -> sim time stamp of the last message published
        self.skipped: list[str] = []
        bridge = bridge or {}
        for spec in devices:
            if not selected(spec, disabled):
                self.skipped.append(f"{spec.name} ({spec.kind}): turned off")
                continue
            if spec.kind in UNPUBLISHED:
                self.skipped.append(f"{spec.name} ({spec.kind}): {UNPUBLISHED[spec.kind]}")
                continue
            if spec.kind == "contact" and (problem := _contacts_problem()) is not None:
                self.skipped.append(f"{spec.name} ({spec.kind}): {problem}")
                continue
            topics = {}
            for role, gz in spec.topics.items():
                ros, type_name = bridge.get(gz, (gz, ROLE_TYPES[role]))
                if type_name != ROLE_TYPES[role]:
                    raise ConfigError(
                        f"bridge entry for {gz}: ros_type_name {type_name}, expected {ROLE_TYPES[role]} for the "
                        f"{role} topic of sensor {spec.name!r} ({spec.origin})"
                    )
                topics[role] = ros
            self.sensors.append(_Sensor(spec, _every(spec.update_rate, step_size), topics))
        self.dt = step_size
        self._make()
        self.reset(seed)

    def _make(self) -> None:
        from sensor_msgs.msg import (
            CameraInfo,
            FluidPressure,
            Image,
            Imu,
            MagneticField,
            NavSatFix,
            NavSatStatus,
            PointCloud2,
            PointField,
        )

        types: dict[str, Any] = {"imu": Imu, "image": Image, "depth": Image, "camera_info": CameraInfo,
                                 "depth_camera_info": CameraInfo, "points": PointCloud2, "navsat": NavSatFix,
                                 "magnetometer": MagneticField, "air_pressure": FluidPressure}  # fmt: skip
        if any(s.spec.kind == "contact" for s in self.sensors):
            from ros_gz_interfaces.msg import Contacts

            types["contact"] = Contacts
        for s in self.sensors:
            spec = s.spec
            for role, topic in s.topics.items():
                # Depth 5 for images (big messages, only the newest matters), 100 for IMU bursts during steps.
                depth = 5 if role in ("image", "depth", "points") else 100
                s.pubs[role] = self._create_publisher(types[role], topic, depth)
                msg = types[role]()
                # ros_gz_bridge's Contacts carry no frame (positions are in the world frame)
                msg.header.frame_id = "" if role == "contact" else spec.frame_id
                s.msgs[role] = msg
            if spec.kind == "imu":
                m = s.msgs["imu"]
                for cov, noises in ((m.angular_velocity_covariance, spec.gyro_noise),
                                    (m.linear_acceleration_covariance, spec.accel_noise)):  # fmt: skip
                    for i, n in enumerate(noises):
                        cov[i * 4] = n.stddev**2
                if not spec.enable_orientation:
                    m.orientation_covariance[0] = -1.0  # sensor_msgs/Imu: orientation not provided
            elif spec.kind in CAMERA_KINDS:
                for role in ("camera_info", "depth_camera_info"):
                    if role in s.msgs:
                        self._camera_info(s.msgs[role], spec)
                for role, encoding, size in (("image", "rgb8", 3), ("depth", "32FC1", 4)):
                    if role in s.msgs:
                        img = s.msgs[role]
                        img.height, img.width, img.encoding = spec.height, spec.width, encoding
                        img.is_bigendian, img.step = 0, spec.width * size
                if "points" in s.msgs:
                    pc = s.msgs["points"]
                    pc.fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                                 for i, n in enumerate(("x", "y", "z", "rgb"))]  # fmt: skip
                    pc.height, pc.width, pc.point_step = spec.height, spec.width, 16
                    pc.row_step, pc.is_bigendian = 16 * spec.width, False
            elif spec.kind == "navsat":
                m = s.msgs["navsat"]
                m.status.status = NavSatStatus.STATUS_FIX
                m.status.service = NavSatStatus.SERVICE_GPS
                h, v = spec.position_noise
                m.position_covariance = [h.stddev**2, 0.0, 0.0, 0.0, h.stddev**2, 0.0, 0.0, 0.0, v.stddev**2]
                m.position_covariance_type = NavSatFix.COVARIANCE_TYPE_DIAGONAL_KNOWN
            elif spec.kind == "magnetometer":
                cov = s.msgs["magnetometer"].magnetic_field_covariance
                for i, n in enumerate(spec.field_noise):
                    cov[i * 4] = n.stddev**2
            elif spec.kind == "air_pressure":
                s.msgs["air_pressure"].variance = spec.pressure_noise.stddev**2

    @staticmethod
    def _camera_info(info: Any, spec: SensorSpec) -> None:
        # gz-sensors: fx = fy from horizontal_fov (square pixels), principal point at the image centre.
        f, cx, cy = spec.fx, spec.width / 2.0, spec.height / 2.0
        info.width, info.height = spec.width, spec.height
        info.distortion_model = "plumb_bob"
        info.d = [0.0] * 5
        info.k = [f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0]

    def reset(self, seed: int | None = None) -> None:
        """Re-seed the noise (reset_simulation): the same seed repeats the same readings."""
        if seed is not None:
            self.seed = seed
        for s in self.sensors:
            # Seeded per sensor by its scoped name: turning other sensors off keeps its noise sequence.
            key = zlib.crc32(f"{s.spec.model}/{s.spec.link}/{s.spec.name}".encode())
            rng = np.random.default_rng([self.seed, key])
            if s.spec.kind == "imu":
                s.imu = Imu(s.spec, rng)
            elif s.spec.kind == "navsat":
                s.noise = [Noise(n, rng) for n in (s.spec.position_noise[0],) * 2 + (s.spec.position_noise[1],)]
            elif s.spec.kind == "magnetometer":
                s.noise = [Noise(n, rng) for n in s.spec.field_noise]
            elif s.spec.kind == "air_pressure":
                s.noise = [Noise(s.spec.pressure_noise, rng)]

    # -- schedule (runner thread) ----------------------------------------------------------------
    def steps_to_next(self, steps: int) -> int:
        """Physics steps until the next sensor update (a large number with no sensors)."""
        n = 1 << 30
        now = time.monotonic()
        for s in self.sensors:
            if s.spec.kind == "contact":
                # A contact sensor without listeners must not cut the runner's batches of steps (its
                # default rate is every step); who listens is re-read every 50 ms of wall time.
                if now >= s.heard_at:
                    s.heard_at, s.heard = now + 0.05, self._heard(s, "contact")
                if not s.heard:
                    continue
            k = s.every - steps % s.every
            if k < n:
                n = k
        return n

    def forget_listeners(self) -> None:
        """Re-read who listens at the next update (a step request: its client may have just subscribed)."""
        for s in self.sensors:
            s.heard_at = 0.0

    def publishers(self) -> list[Any]:
        """Every publisher of these sensors."""
        return [p for s in self.sensors for p in s.pubs.values() if p is not None]

    def publish_due(self, physics: Any, steps: int, t: float) -> None:
        for s in self.sensors:
            if steps % s.every:
                continue
            try:
                self._update(s, physics, t)
            except SimulatorError as exc:  # rendering unavailable: said once, the rest keeps running
                if not self._error_logged:
                    log.error("sensor %s: %s", s.spec.name, exc)
                    self._error_logged = True

    def topics(self) -> set[str]:
        """Every topic these sensors publish (what sensor faults may target besides the node's own)."""
        return {str(p.topic_name) for s in self.sensors for p in s.pubs.values() if p is not None}

    def subscriber_counts(self) -> tuple[int, ...]:
        """Matched subscriptions of the camera topics (the runner re-publishes for late joiners while paused)."""
        try:
            return tuple(p.get_subscription_count() for s in self.sensors if s.spec.kind in CAMERA_KINDS
                         for p in s.pubs.values())  # fmt: skip
        except Exception:  # context shutting down
            return ()

    def republish(self, physics: Any) -> None:
        """Paused, a camera subscriber that joined late gets a frame of the current state (rendered now)."""
        for s in self.sensors:
            if s.spec.kind in CAMERA_KINDS:
                with contextlib.suppress(SimulatorError):  # no rendering: reported once already
                    self._update_camera(s, physics, float(physics.time))

    def _heard(self, s: _Sensor, *roles: str) -> bool:
        for role in roles:
            pub = s.pubs.get(role)
            if pub is not None and pub.get_subscription_count() > 0:
                return True
        return False

    def _send(self, s: _Sensor, role: str) -> None:
        msg = s.msgs[role]
        self._publish(s.pubs[role], msg)
        # for get_simulation_state: a client reading "what the sensor says now" waits for exactly this one
        self.stamps[s.topics[role]] = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9

    def _update(self, s: _Sensor, physics: Any, t: float) -> None:
        kind = s.spec.kind
        if kind == "imu":
            assert s.imu is not None
            quat, gyro, acc = s.imu.read(physics.model, physics.data, t)
            if not self._heard(s, "imu"):
                return
            m = s.msgs["imu"]
            _stamp(m.header.stamp, t)
            if s.spec.enable_orientation:
                o = m.orientation
                o.x, o.y, o.z, o.w = quat
            m.angular_velocity.x, m.angular_velocity.y, m.angular_velocity.z = gyro
            m.linear_acceleration.x, m.linear_acceleration.y, m.linear_acceleration.z = acc
            self._send(s, "imu")
        elif kind == "navsat":
            pos = physics.data.site_xpos[physics.model.site(device_site(s.spec.model, s.spec.link, s.spec.name)).id]
            lat, lon, alt = navsat_fix(self.spherical, [float(v) for v in pos])
            dt = s.every * self.dt
            # Noise in metres, as gz-sensors NavSatSensor: horizontal on latitude and longitude, vertical on altitude.
            dn, de, du = (n.apply(0.0, dt) for n in s.noise)
            lat += math.degrees(dn / 6378137.0)
            lon += math.degrees(de / (6378137.0 * max(math.cos(math.radians(lat)), 1e-9)))
            if not self._heard(s, "navsat"):
                return
            m = s.msgs["navsat"]
            _stamp(m.header.stamp, t)
            m.latitude, m.longitude, m.altitude = lat, lon, alt + du
            self._send(s, "navsat")
        elif kind in ("magnetometer", "air_pressure"):
            # computed whether heard or not, like the IMU: the noise sequence must not depend on who listens
            site = physics.model.site(device_site(s.spec.model, s.spec.link, s.spec.name)).id
            dt = s.every * self.dt
            m = s.msgs[kind]
            if kind == "magnetometer":
                # gz-sensors: the world's field rotated into the sensor frame, per-axis noise in tesla
                rot = np.asarray(physics.data.site_xmat[site], dtype=float).reshape(3, 3)
                local = rot.T @ self.magnetic_field
                f = m.magnetic_field
                f.x, f.y, f.z = (n.apply(float(v), dt) for n, v in zip(s.noise, local, strict=True))
            else:
                altitude = s.spec.reference_altitude + float(physics.data.site_xpos[site][2])
                m.fluid_pressure = s.noise[0].apply(air_pressure(altitude), dt)
            if self._heard(s, kind):
                _stamp(m.header.stamp, t)
                self._send(s, kind)
        elif kind == "contact":
            self._update_contact(s, physics, t)
        else:
            self._update_camera(s, physics, t)

    def _update_contact(self, s: _Sensor, physics: Any, t: float) -> None:
        if not self._heard(s, "contact"):
            return  # lazy
        model = physics.model
        if model is not s.model:  # recompiled (spawn/remove): geom ids may move
            s.model = model
            scoped = [f"{s.spec.model}::{s.spec.link}::{c}" for c in s.spec.collisions]
            s.geoms = set(sensor_geoms(model, scoped))
            if not s.geoms:
                log.warning("contact sensor %s (%s): none of its collisions %s is in the world; it reports nothing",
                            s.spec.name, s.spec.origin, ", ".join(s.spec.collisions) or "(none given)")  # fmt: skip
        found = sensor_contacts(model, physics.data, s.geoms)
        if not found:
            return  # gz-sim's contact system publishes only while there are contacts
        from geometry_msgs.msg import Vector3
        from ros_gz_interfaces.msg import Contact, Entity, JointWrench

        m = s.msgs["contact"]
        _stamp(m.header.stamp, t)
        out = []
        for c in found:
            msg = Contact()
            for entity, name, ident in ((msg.collision1, c.collision1, c.id1), (msg.collision2, c.collision2, c.id2)):
                entity.name, entity.id, entity.type = name, ident, Entity.COLLISION
            msg.positions = [Vector3(x=p[0], y=p[1], z=p[2]) for p in c.positions]
            msg.normals = [Vector3(x=n[0], y=n[1], z=n[2]) for n in c.normals]
            msg.depths = list(c.depths)
            wrenches = []
            for f in c.forces:
                w = JointWrench()
                _stamp(w.header.stamp, t)
                w.body_1_name.data, w.body_2_name.data = c.collision1, c.collision2
                w.body_1_id.data, w.body_2_id.data = c.id1, c.id2
                w.body_1_wrench.force.x, w.body_1_wrench.force.y, w.body_1_wrench.force.z = f
                w.body_2_wrench.force.x, w.body_2_wrench.force.y, w.body_2_wrench.force.z = (-f[0], -f[1], -f[2])
                wrenches.append(w)
            msg.wrenches = wrenches
            out.append(msg)
        m.contacts = out
        self._send(s, "contact")
        s.published += 1

    def _update_camera(self, s: _Sensor, physics: Any, t: float) -> None:
        want_rgb = self._heard(s, "image") or (s.spec.kind == "rgbd" and self._heard(s, "points"))
        want_depth = self._heard(s, "depth", "points")
        if not (want_rgb or want_depth or self._heard(s, "camera_info", "depth_camera_info")):
            return  # lazy: nobody listens, nothing is rendered
        # mj_step leaves body poses at the start of the step; refresh them for this instant, and the
        # cameras' poses too (mj_camlight: kinematics alone leaves them stale, and on a simulator not
        # stepped yet they are the compiled model's, so a paused one rendered its first frame off-pose).
        mj = physics._mj
        mj.mj_kinematics(physics.model, physics.data)
        mj.mj_comPos(physics.model, physics.data)
        mj.mj_camlight(physics.model, physics.data)
        rgb = self.cameras.render(s.spec, physics.model, physics.data, depth=False) if want_rgb else None
        depth = self.cameras.render(s.spec, physics.model, physics.data, depth=True) if want_depth else None
        for role in ("camera_info", "depth_camera_info"):
            if role in s.msgs:
                _stamp(s.msgs[role].header.stamp, t)
                self._send(s, role)
        if rgb is not None and "image" in s.msgs and self._heard(s, "image"):
            m = s.msgs["image"]
            _stamp(m.header.stamp, t)
            m.data = _bytes(rgb)
            self._send(s, "image")
        if depth is not None and "depth" in s.msgs and self._heard(s, "depth"):
            m = s.msgs["depth"]
            _stamp(m.header.stamp, t)
            m.data = _bytes(depth)
            self._send(s, "depth")
        if depth is not None and "points" in s.msgs and self._heard(s, "points"):
            xyz = points_xyz(s.spec, depth)
            packed = np.zeros((s.spec.height, s.spec.width, 4), dtype=np.float32)
            packed[..., :3] = xyz
            if rgb is not None:  # rgb as PCL packs it: 0x00RRGGBB in a float's bytes (b, g, r, 0 little-endian)
                colour = np.zeros((s.spec.height, s.spec.width, 4), dtype=np.uint8)
                colour[..., 0], colour[..., 1], colour[..., 2] = rgb[..., 2], rgb[..., 1], rgb[..., 0]
                packed[..., 3] = colour.view(np.float32)[..., 0]
            m = s.msgs["points"]
            _stamp(m.header.stamp, t)
            m.is_dense = bool(np.isfinite(depth).all())
            m.data = _bytes(packed)
            self._send(s, "points")
        s.published += 1

    def describe(self) -> list[dict[str, Any]]:
        """For get_simulator_features: each sensor's name, kind, frame, rate and ROS topics by role."""
        out = []
        for s in self.sensors:
            spec = s.spec
            entry: dict[str, Any] = {"name": spec.name, "type": spec.kind, "frame_id": spec.frame_id,
                                     "update_rate": spec.update_rate, "topics": dict(s.topics)}  # fmt: skip
            if spec.kind in CAMERA_KINDS:
                entry.update(width=spec.width, height=spec.height, horizontal_fov=spec.horizontal_fov,
                             error=self.cameras.error)  # fmt: skip
            elif spec.kind == "contact":
                entry["collisions"] = [f"{spec.model}::{spec.link}::{c}" for c in spec.collisions]
            out.append(entry)
        return out

    def frames(self) -> dict[str, int]:
        """Frames each camera rendered so far (for get_simulation_state: lazy cameras stay at 0)."""
        return {s.spec.name: s.published for s in self.sensors if s.spec.kind in CAMERA_KINDS}

    def close(self) -> None:
        self.cameras.close()
