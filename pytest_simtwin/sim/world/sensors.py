"""IMU, camera, depth/RGB-D camera, navsat, contact, magnetometer and air pressure ``<sensor>`` elements
-> :class:`SensorSpec`.

Semantics and defaults are sdformat's (sdf/1.11 sensor.sdf, imu.sdf, camera.sdf, noise.sdf, navsat.sdf,
contact.sdf, magnetometer.sdf, air_pressure.sdf)
and gz-sensors' (topic names, camera_info topic, frame ids); Gazebo classic ``libgazebo_ros_camera.so``,
``libgazebo_ros_imu_sensor.so`` and ``libgazebo_ros_gps_sensor.so`` plugins inside the sensor rename
topics and frames as gazebo_ros does. Lidars stay in :mod:`plugins`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from pytest_simtwin.errors import ModelError
from pytest_simtwin.sim.world.model import LinkSpec, Pose
from pytest_simtwin.sim.world.values import boolean, floats, integer, number, sdf_pose, text
from pytest_simtwin.sim.world.xmltree import Element, parse_string

#: SDF sensor type -> our kind. gz: depth_camera, rgbd_camera; classic: depth (a depth camera).
KINDS = {"imu": "imu", "camera": "camera", "depth_camera": "depth", "depth": "depth", "rgbd_camera": "rgbd",
         "rgbd": "rgbd", "navsat": "navsat", "gps": "navsat", "contact": "contact", "magnetometer": "magnetometer",
         "air_pressure": "air_pressure"}  # fmt: skip
CAMERA_KINDS = ("camera", "depth", "rgbd")


@dataclass(frozen=True)
class NoiseSpec:
    """sdformat noise.sdf: type none | gaussian | gaussian_quantized (defaults all 0)."""

    type: str = "none"
    mean: float = 0.0
    stddev: float = 0.0
    bias_mean: float = 0.0
    bias_stddev: float = 0.0
    dynamic_bias_stddev: float = 0.0
    dynamic_bias_correlation_time: float = 0.0
    precision: float = 0.0

    @property
    def active(self) -> bool:
        return self.type != "none" and (
            self.stddev > 0 or self.mean != 0 or self.bias_mean != 0 or self.bias_stddev > 0 or self.precision > 0
        )


NO_NOISE = NoiseSpec()


@dataclass
class SensorSpec:
    """One non-lidar sensor. ``pose`` is in the link frame (SDF sensor frame: x forward, z up).

    ``topics`` maps a role (imu, image, camera_info, depth, depth_camera_info, points, navsat, contact)
    to the gz (or gazebo_ros) topic name; the simulator renames them through the bridge file.
    """

    name: str
    kind: str  # imu | camera | depth | rgbd | navsat | contact | magnetometer | air_pressure
    model: str
    link: str
    pose: Pose
    frame_id: str
    update_rate: float  # Hz; 0 = every physics step (sdformat default)
    topics: dict[str, str]
    origin: str = ""
    classic: bool = False
    # imu (imu.sdf)
    gyro_noise: tuple[NoiseSpec, NoiseSpec, NoiseSpec] = (NO_NOISE, NO_NOISE, NO_NOISE)
    accel_noise: tuple[NoiseSpec, NoiseSpec, NoiseSpec] = (NO_NOISE, NO_NOISE, NO_NOISE)
    enable_orientation: bool = True
    #: gazebo_ros_imu_sensor's initial_orientation_as_reference (default true): orientation relative to the first.
    relative_orientation: bool = False
    # cameras (camera.sdf)
    width: int = 320
    height: int = 240
    horizontal_fov: float = 1.047
    near: float = 0.1
    far: float = 100.0
    depth_near: float = 0.1
    depth_far: float = 10.0
    image_noise: NoiseSpec = NO_NOISE
    #: classic gazebo_ros_camera points are in the optical frame (z forward); gz-sensors' in the sensor frame.
    optical_points: bool = False
    # navsat (navsat.sdf): horizontal/vertical position noise in metres
    position_noise: tuple[NoiseSpec, NoiseSpec] = (NO_NOISE, NO_NOISE)
    # contact (contact.sdf)
    collisions: list[str] = field(default_factory=list)
    # magnetometer (magnetometer.sdf): per-axis noise in tesla
    field_noise: tuple[NoiseSpec, NoiseSpec, NoiseSpec] = (NO_NOISE, NO_NOISE, NO_NOISE)
    # air_pressure (air_pressure.sdf): altitude (m) of the world's z = 0, noise in pascals
    reference_altitude: float = 0.0
    pressure_noise: NoiseSpec = NO_NOISE

    @property
    def fx(self) -> float:
        """Focal length in pixels (square pixels, as gz-rendering's projection gives)."""
        return self.width / (2.0 * math.tan(self.horizontal_fov / 2.0))

    @property
    def vertical_fov(self) -> float:
        return 2.0 * math.atan(math.tan(self.horizontal_fov / 2.0) * self.height / self.width)


def parse_noise(element: Element | None) -> NoiseSpec:
    """A ``<noise>`` element (type as attribute, or as a ``<type>`` child in older files)."""
    if element is None:
        return NO_NOISE
    kind = element.attrib.get("type") or text(element, "type", "none")
    kind = kind.strip().lower()
    if kind not in ("none", "gaussian", "gaussian_quantized"):
        raise ModelError(
            f"{element.where}: noise type {kind!r}; expected none, gaussian or gaussian_quantized (sdformat noise.sdf)."
        )
    spec = NoiseSpec(
        kind,
        number(element, "mean", 0.0),
        number(element, "stddev", 0.0),
        number(element, "bias_mean", 0.0),
        number(element, "bias_stddev", 0.0),
        number(element, "dynamic_bias_stddev", 0.0),
        number(element, "dynamic_bias_correlation_time", 0.0),
        number(element, "precision", 0.0) if kind == "gaussian_quantized" else 0.0,
    )
    for name in ("stddev", "bias_stddev", "dynamic_bias_stddev", "precision"):
        if getattr(spec, name) < 0:
            raise ModelError(f"{element.where}: noise <{name}> is {getattr(spec, name)}; expected >= 0.")
    return spec


def _axes(parent: Element | None) -> tuple[NoiseSpec, NoiseSpec, NoiseSpec]:
    if parent is None:
        return NO_NOISE, NO_NOISE, NO_NOISE
    out = []
    for axis in ("x", "y", "z"):
        el = parent.find(axis)
        out.append(parse_noise(el.find("noise")) if el is not None else NO_NOISE)
    return out[0], out[1], out[2]


def _classic(sensor: Element, kinds: tuple[str, ...]) -> Element | None:
    for plugin in sensor.findall("plugin"):
        filename = plugin.attrib.get("filename", "")
        if any(k in filename for k in kinds):
            return plugin
    return None


def _ros_names(plugin: Element) -> tuple[str, dict[str, str]]:
    """gazebo_ros ``<ros>``: the namespace and ``FROM:=TO`` remappings (leading ``~/`` dropped)."""
    ros = plugin.find("ros")
    if ros is None:
        return "", {}
    namespace = text(ros, "namespace", "").strip().rstrip("/")
    remaps: dict[str, str] = {}
    for remap in ros.findall("remapping"):
        src, _, dst = remap.text.partition(":=")
        if dst:
            remaps[src.strip().removeprefix("~/").lstrip("/")] = dst.strip()
    return namespace, remaps


def _ros_topic(namespace: str, remaps: dict[str, str], name: str, default: str) -> str:
    topic = remaps.get(name, default)
    if topic.startswith("/"):
        return topic
    return f"{namespace}/{topic}" if namespace else f"/{topic}"


def _abs(topic: str) -> str:
    topic = topic.strip()
    return topic if topic.startswith("/") else f"/{topic}"


def _parent(topic: str) -> str:
    """gz-sensors' default camera_info topic: the image topic's parent + /camera_info."""
    parts = [p for p in topic.split("/") if p][:-1]
    return "/" + "/".join(parts) if parts else ""


def _camera(sensor: Element, spec: SensorSpec, warn: list[str]) -> None:
    # sdformat fills a missing <camera> (required) with its defaults: 1.047 rad, 320x240, clip 0.1-100 m.
    cam = sensor.find("camera") or parse_string("<camera/>", sensor.file)
    spec.horizontal_fov = number(cam, "horizontal_fov", 1.047)
    if not 0.001 <= spec.horizontal_fov < math.pi:
        raise ModelError(
            f"{cam.where}: horizontal_fov {spec.horizontal_fov} rad; expected 0.001 <= fov < pi for a pinhole camera "
            "(wide-angle lenses are not simulated)."
        )
    image = cam.find("image")
    if image is not None:
        spec.width, spec.height = integer(image, "width", 320), integer(image, "height", 240)
        fmt = text(image, "format", "R8G8B8").strip().upper()
        if spec.kind == "camera" and fmt not in ("R8G8B8", "RGB_INT8", "L8", "L_INT8", "B8G8R8", "BGR_INT8"):
            warn.append(f"{image.where}: camera {spec.name!r} image format {fmt!r} is published as rgb8")
    if spec.width <= 0 or spec.height <= 0 or spec.width * spec.height > 4096 * 4096:
        raise ModelError(
            f"{cam.where}: camera {spec.name!r} image {spec.width}x{spec.height}; expected positive sizes."
        )
    clip = cam.find("clip")
    if clip is not None:
        spec.near, spec.far = number(clip, "near", 0.1), number(clip, "far", 100.0)
    # sdformat: depth_camera/clip defaults 0.1 / 10; gz-sensors uses the camera clip unless it is given.
    spec.depth_near, spec.depth_far = spec.near, spec.far
    dclip = cam.path("depth_camera", "clip")
    if dclip is not None:
        spec.depth_near, spec.depth_far = number(dclip, "near", 0.1), number(dclip, "far", 10.0)
    for near, far in ((spec.near, spec.far), (spec.depth_near, spec.depth_far)):
        if not 0 < near < far:
            raise ModelError(f"{cam.where}: camera {spec.name!r} clip near {near}, far {far}; expected 0 < near < far.")
    spec.image_noise = parse_noise(cam.find("noise"))
    # gz-sensors 8/9 (Harmonic, Ionic): <optical_frame_id> stamps image, depth, points and camera_info
    # (gz-sensors 10 dropped it with sdformat 16's deprecation; files written for Jazzy still carry it).
    optical = text(cam, "optical_frame_id", "").strip()
    if optical:
        spec.frame_id = optical
    if cam.find("distortion") is not None or cam.find("lens") is not None:
        warn.append(f"{cam.where}: camera {spec.name!r} <distortion>/<lens> are not simulated (ideal pinhole)")
    base = spec.topics.pop("base")
    if spec.kind == "camera":
        image_topic = spec.topics.get("image", base + "/image")
        spec.topics["image"] = image_topic
        spec.topics["camera_info"] = _abs(text(cam, "camera_info_topic", _parent(image_topic) + "/camera_info"))
    elif spec.kind == "depth":
        depth_topic = spec.topics.get("image", base + "/depth_image")
        spec.topics = {"depth": depth_topic, "points": depth_topic + "/points",
                       "camera_info": _abs(text(cam, "camera_info_topic", _parent(depth_topic) + "/camera_info"))}  # fmt: skip
    else:
        root = spec.topics.get("image", base)
        spec.topics = {"image": root + "/image", "depth": root + "/depth_image", "points": root + "/points",
                       "camera_info": root + "/camera_info"}  # fmt: skip
    plugin = _classic(sensor, ("gazebo_ros_camera", "gazebo_ros_depth_camera", "gazebo_ros_openni_kinect"))
    if plugin is not None:
        spec.classic = True
        ns, remaps = _ros_names(plugin)
        cam_name = text(plugin, "camera_name", spec.name)
        prefix = f"{cam_name}/"
        spec.frame_id = text(plugin, "frame_name", spec.link)
        if spec.kind == "camera":
            spec.topics = {"image": _ros_topic(ns, remaps, "image_raw", prefix + "image_raw"),
                           "camera_info": _ros_topic(ns, remaps, "camera_info", prefix + "camera_info")}  # fmt: skip
        else:  # gazebo_ros_camera on a depth sensor: colour, depth and points
            spec.kind = "rgbd"
            spec.optical_points = True
            spec.topics = {
                "image": _ros_topic(ns, remaps, "image_raw", prefix + "image_raw"),
                "camera_info": _ros_topic(ns, remaps, "camera_info", prefix + "camera_info"),
                "depth": _ros_topic(ns, remaps, "depth/image_raw", prefix + "depth/image_raw"),
                "depth_camera_info": _ros_topic(ns, remaps, "depth/camera_info", prefix + "depth/camera_info"),
                "points": _ros_topic(ns, remaps, "points", prefix + "points"),
            }
            spec.depth_near = number(plugin, "min_depth", spec.near)
            spec.depth_far = number(plugin, "max_depth", spec.far)


def parse_sensor(sensor: Element, link: str, model: str, world: str, warn: list[str]) -> SensorSpec | None:
    """A non-lidar ``<sensor>`` of ``model``/``link``; None when its type is not one of :data:`KINDS`."""
    sdf_type = sensor.attrib.get("type", "").strip().lower()
    kind = KINDS.get(sdf_type)
    if kind is None:
        return None
    name = sensor.attrib.get("name", sdf_type)
    rate = number(sensor, "update_rate", 0.0)
    if rate < 0 or not math.isfinite(rate):
        raise ModelError(f"{sensor.where}: sensor {name!r} update_rate {rate}; expected >= 0 Hz (0 = every step).")
    pose, _ = sdf_pose(sensor.find("pose"))
    base = f"/world/{world}/model/{model}/link/{link}/sensor/{name}"
    topics = {"base": base}
    if text(sensor, "topic"):
        topics["image" if kind in CAMERA_KINDS else kind] = _abs(text(sensor, "topic"))
    # gz-sensors: //sensor/frame_id (or the deprecated gz_frame_id), else the sensor's scoped name.
    frame = text(sensor, "frame_id", text(sensor, "gz_frame_id", text(sensor, "ignition_frame_id", "")))
    spec = SensorSpec(name, kind, model, link, pose, frame or f"{model}/{link}/{name}", rate, topics, sensor.where)
    if kind in CAMERA_KINDS:
        _camera(sensor, spec, warn)
    elif kind == "imu":
        imu = sensor.find("imu")
        if imu is not None:
            spec.gyro_noise = _axes(imu.find("angular_velocity"))
            spec.accel_noise = _axes(imu.find("linear_acceleration"))
            spec.enable_orientation = boolean(imu, "enable_orientation", True)
            ref = imu.find("orientation_reference_frame")
            if ref is not None and text(ref, "localization", "CUSTOM").upper() not in ("CUSTOM", "ENU"):
                warn.append(f"{ref.where}: IMU {name!r} orientation reference {text(ref, 'localization')!r} is "
                            "simulated as ENU (the world frame)")  # fmt: skip
        spec.topics = {"imu": topics.get("imu", base + "/imu")}
        plugin = _classic(sensor, ("gazebo_ros_imu",))
        if plugin is not None:
            spec.classic = True
            ns, remaps = _ros_names(plugin)
            spec.topics = {"imu": _ros_topic(ns, remaps, "out", f"{plugin.attrib.get('name', name)}/out")}
            spec.frame_id = text(plugin, "frame_name", link)
            spec.relative_orientation = boolean(plugin, "initial_orientation_as_reference", True)
    elif kind == "navsat":
        nav = sensor.find("navsat") or sensor.find("gps")
        if nav is not None:
            pos = nav.find("position_sensing")
            if pos is not None:
                spec.position_noise = tuple(  # type: ignore[assignment]
                    parse_noise(el.find("noise")) if el is not None else NO_NOISE
                    for el in (pos.find("horizontal"), pos.find("vertical"))
                )
        spec.topics = {"navsat": topics.get("navsat", base + "/navsat")}
        plugin = _classic(sensor, ("gazebo_ros_gps",))
        if plugin is not None:
            spec.classic = True
            ns, remaps = _ros_names(plugin)
            spec.topics = {"navsat": _ros_topic(ns, remaps, "out", f"{plugin.attrib.get('name', name)}/out")}
            spec.frame_id = text(plugin, "frame_name", link)
    elif kind == "magnetometer":
        spec.field_noise = _axes(sensor.find("magnetometer"))
        spec.topics = {"magnetometer": topics.get("magnetometer", base + "/magnetometer")}
    elif kind == "air_pressure":
        air = sensor.find("air_pressure")
        if air is not None:
            spec.reference_altitude = number(air, "reference_altitude", 0.0)
            pressure = air.find("pressure")
            spec.pressure_noise = parse_noise(pressure.find("noise")) if pressure is not None else NO_NOISE
        spec.topics = {"air_pressure": topics.get("air_pressure", base + "/air_pressure")}
    else:  # contact
        contact = sensor.find("contact")
        spec.collisions = [c.text.strip() for c in contact.findall("collision")] if contact is not None else []
        spec.topics = {"contact": topics.get("contact", base + "/contact")}
    for plugin in sensor.findall("plugin"):
        filename = plugin.attrib.get("filename", "")
        if not any(k in filename for k in ("gazebo_ros_camera", "gazebo_ros_imu", "gazebo_ros_gps",
                                           "gazebo_ros_depth_camera", "gazebo_ros_openni_kinect")):  # fmt: skip
            warn.append(f"{plugin.where}: sensor plugin {filename!r} of {name!r} is not simulated")
    return spec


def nested(spec: SensorSpec, outer: str) -> SensorSpec:
    """``spec`` of a model nested in ``outer`` (flattened: link ``inner::link``), with gz-sim's scoped
    default names: topic ``.../model/outer/model/inner/link/...``, frame ``outer/inner/link/sensor``."""
    inner = spec.model
    link = f"{inner}::{spec.link}"
    frame = spec.frame_id
    if frame == f"{inner}/{spec.link}/{spec.name}":
        frame = f"{outer}/{inner}/{spec.link}/{spec.name}"
    old, new = f"/model/{inner}/link/", f"/model/{outer}/model/{inner}/link/"
    topics = {role: t.replace(old, new, 1) if t.startswith("/world/") else t for role, t in spec.topics.items()}
    return replace(spec, model=outer, link=link, frame_id=frame, topics=topics)


def add_sensor(sensor: Element, link: LinkSpec, model: str, world: str, warn: list[str]) -> bool:
    """Parse ``sensor`` into ``link.devices`` when it is an IMU/camera/navsat/contact; False otherwise."""
    spec = parse_sensor(sensor, link.name, model, world, warn)
    if spec is None:
        return False
    link.devices.append(spec)
    return True


def visual_rgba(link: Element) -> tuple[float, float, float, float] | None:
    """Colour of a link's first coloured ``<visual>`` (SDF material diffuse/ambient, URDF material rgba):
    the simulator renders collision shapes, painted with it."""
    for visual in link.findall("visual"):
        material = visual.find("material")
        if material is None:
            continue
        color = material.find("color")  # URDF
        if color is not None and color.attrib.get("rgba"):
            values = floats(color, text=color.attrib["rgba"], count=4, what="rgba")
            return values[0], values[1], values[2], values[3]
        for tag in ("diffuse", "ambient"):
            el = material.find(tag)
            if el is not None and el.text:
                values = floats(el, what="colour")
                if len(values) in (3, 4):
                    return values[0], values[1], values[2], values[3] if len(values) == 4 else 1.0
    return None
