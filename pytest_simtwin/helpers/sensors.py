"""Camera and IMU helpers of the ``robot`` fixture, and short assertions for perception tests.

``robot.wait_for_image(camera="front_camera")`` returns a :class:`CameraImage` (``np.asarray(img)``
gives an (h, w, 3) uint8 RGB or an (h, w) float32 depth array in metres); ``robot.imu`` is the
latest :class:`ImuReading`. Sensor names and topics come from the simulator's features (the
embedded simulator lists every sensor); a topic name starting with ``/`` works with any simulator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pytest_simtwin._internal.tracebacks import hide_frames
from pytest_simtwin.errors import ConfigError
from pytest_simtwin.helpers.robot_state import RobotObserver
from pytest_simtwin.results.cameras import image_array
from pytest_simtwin.ros.messages import stamp_seconds


@dataclass(frozen=True)
class CameraImage:
    """One image: ``array`` (rgb8 -> (h, w, 3) uint8; 32FC1 depth -> (h, w) float32 metres), its sim
    time stamp, frame and encoding, and the ROS message."""

    array: npt.NDArray[Any]
    stamp: float
    frame_id: str
    encoding: str
    msg: Any

    def __array__(self, dtype: Any = None, copy: Any = None) -> npt.NDArray[Any]:
        return self.array if dtype is None else self.array.astype(dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)


@dataclass(frozen=True)
class ImuReading:
    """An IMU message as numbers: orientation (x, y, z, w), angular velocity (rad/s) and linear
    acceleration (m/s^2, gravity included: +9.81 up at rest) in the IMU frame."""

    stamp: float
    frame_id: str
    orientation: tuple[float, float, float, float]
    angular_velocity: npt.NDArray[np.float64]
    linear_acceleration: npt.NDArray[np.float64]
    msg: Any


def imu_reading(msg: Any) -> ImuReading:
    o, w, a = msg.orientation, msg.angular_velocity, msg.linear_acceleration
    return ImuReading(stamp_seconds(msg.header.stamp), msg.header.frame_id, (o.x, o.y, o.z, o.w), np.array([w.x, w.y, w.z]),
                      np.array([a.x, a.y, a.z]), msg)  # fmt: skip


# -- perception assertions --------------------------------------------------------------------------


def depth_at_centre(image: Any, window: int = 5) -> float:
    """Median depth (m) of the ``window`` x ``window`` pixels at the image centre (inf if all are inf)."""
    depth = np.asarray(image, dtype=np.float32)
    h, w = depth.shape[:2]
    half = max(window // 2, 0)
    patch = depth[h // 2 - half : h // 2 + half + 1, w // 2 - half : w // 2 + half + 1]
    return float(np.median(patch))


def colour_region(
    image: Any, rgb: tuple[int, int, int], tolerance: int = 60, min_pixels: int = 20
) -> tuple[int, int, int, int] | None:
    """Bounding box (row_min, col_min, row_max, col_max) of the pixels within ``tolerance`` of ``rgb``
    on every channel; None when fewer than ``min_pixels`` match."""
    img = np.asarray(image).astype(np.int16)
    match = np.all(np.abs(img[..., :3] - np.array(rgb, dtype=np.int16)) <= tolerance, axis=-1)
    if int(match.sum()) < min_pixels:
        return None
    rows, cols = np.nonzero(match)
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())


@hide_frames
def assert_depth_at_centre(image: Any, expected: float, tolerance: float = 0.02) -> None:
    """The depth image reads ``expected`` metres (within ``tolerance``) at its centre."""
    got = depth_at_centre(image)
    if not (math.isfinite(got) and abs(got - expected) <= tolerance):
        raise AssertionError(f"expected depth {expected:g} m +/- {tolerance:g} at the image centre, found {got:g} m")


@hide_frames
def assert_sees_colour(
    image: Any,
    rgb: tuple[int, int, int],
    *,
    region: tuple[int, int, int, int] | None = None,
    tolerance: int = 60,
    min_pixels: int = 20,
) -> tuple[int, int, int, int]:
    """The camera sees ``rgb``; with ``region`` (row_min, col_min, row_max, col_max) the coloured
    pixels' bounding box lies inside it. Returns the bounding box."""
    box = colour_region(image, rgb, tolerance, min_pixels)
    if box is None:
        img = np.asarray(image)
        centre = img[img.shape[0] // 2, img.shape[1] // 2]
        raise AssertionError(
            f"expected at least {min_pixels} pixels of colour {rgb} (+/- {tolerance}); found fewer "
            f"(the centre pixel is {tuple(int(v) for v in np.atleast_1d(centre))})"
        )
    if region is not None:
        r0, c0, r1, c1 = region
        if not (box[0] >= r0 and box[1] >= c0 and box[2] <= r1 and box[3] <= c1):
            raise AssertionError(f"expected colour {rgb} inside rows {r0}-{r1}, cols {c0}-{c1}; found it in {box}")
    return box


# -- robot helper mixin -----------------------------------------------------------------------------


class SensorObserver(RobotObserver):
    """Cameras and IMUs of the simulated robot (mixed into ``Robot``)."""

    _sensor_list: list[dict[str, Any]] | None = None

    @property
    def sensors(self) -> list[dict[str, Any]]:
        """The simulator's sensors (name, type, frame_id, update_rate, topics by role); [] if it lists none."""
        if self._sensor_list is None:
            features: Mapping[str, Any] = self.control.features() if self.control is not None else {}
            self._sensor_list = [dict(s) for s in features.get("sensors") or []]
        return self._sensor_list

    def _sensor_topic(self, name: str | None, roles: tuple[str, ...], what: str) -> str:
        if name is not None and name.startswith("/"):
            return name
        for sensor in self.sensors:
            if name is not None and sensor["name"] != name:
                continue
            for role in roles:
                if role in sensor.get("topics", {}):
                    if sensor.get("error"):
                        raise ConfigError(f"sensor {sensor['name']!r}: {sensor['error']}")
                    return str(sensor["topics"][role])
        listed = ", ".join(f"{s['name']} ({s['type']})" for s in self.sensors) or "none"
        wanted = f"sensor {name!r} with a {what}" if name else f"a sensor with a {what}"
        raise ConfigError(f"expected {wanted}; the simulator lists: {listed}. Pass the sensor name or a topic name.")

    @hide_frames
    def wait_for_image(self, camera: str | None = None, *, depth: bool = False, timeout: float = 5.0) -> CameraImage:
        """Wait (sim seconds) for a new image of ``camera`` (sensor name or topic; None = the first
        camera); ``depth=True`` for the depth image of a depth or RGB-D camera."""
        from sensor_msgs.msg import Image

        roles = ("depth",) if depth else ("image",)
        topic = self._sensor_topic(camera, roles, "depth image" if depth else "colour image")
        what = "a depth image" if depth else "an image"
        msg = self._wait_newer(self.ros.subscribe(topic, Image), timeout, f"{what} on {topic}")
        return CameraImage(image_array(msg), stamp_seconds(msg.header.stamp), msg.header.frame_id, msg.encoding, msg)

    @hide_frames
    def wait_for_depth(self, camera: str | None = None, timeout: float = 5.0) -> CameraImage:
        return self.wait_for_image(camera, depth=True, timeout=timeout)

    @hide_frames
    def camera_info(self, camera: str | None = None, timeout: float = 5.0) -> Any:
        """The camera's sensor_msgs/CameraInfo (intrinsics ``k``, ``p``, size, frame)."""
        from sensor_msgs.msg import CameraInfo

        topic = self._sensor_topic(camera, ("camera_info", "depth_camera_info"), "camera_info topic")
        buf = self.ros.subscribe(topic, CameraInfo)
        return buf.latest() or self._wait_newer(buf, timeout, f"camera info on {topic}")

    @hide_frames
    def wait_for_imu(self, name: str | None = None, timeout: float = 5.0) -> ImuReading:
        """Wait (sim seconds) for a new reading of IMU ``name`` (None = the first IMU)."""
        from sensor_msgs.msg import Imu

        topic = self._sensor_topic(name, ("imu",), "imu topic")
        return imu_reading(self._wait_newer(self.ros.subscribe(topic, Imu), timeout, f"an IMU reading on {topic}"))

    @property
    def imu(self) -> ImuReading:
        """The latest reading of the first IMU (waits for one when none arrived yet)."""
        from sensor_msgs.msg import Imu

        topic = self._sensor_topic(None, ("imu",), "imu topic")
        msg = self.ros.subscribe(topic, Imu).latest()
        return imu_reading(msg) if msg is not None else self.wait_for_imu()
