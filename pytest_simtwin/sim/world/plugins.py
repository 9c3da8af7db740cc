"""Gazebo DiffDrive plugin and lidar sensor parameters (shared by the SDF and URDF loaders)."""

from __future__ import annotations

from pytest_simtwin.errors import ModelError
from pytest_simtwin.sim.world.model import INF, DiffDriveSpec, LidarSpec, ModelSpec
from pytest_simtwin.sim.world.values import boolean, number, sdf_pose, text
from pytest_simtwin.sim.world.xmltree import Element

LIDAR_TYPES = ("gpu_lidar", "lidar", "ray", "gpu_ray")
#: World systems that pytest-simtwin provides itself: accepted without a warning (the IMU and NavSat
#: systems are what make those sensors publish in gz-sim; the simulator publishes them itself).
INFRASTRUCTURE_PLUGINS = ("physics", "scene-broadcaster", "user-commands", "sensors", "joint-state-publisher",
                          "imu-system", "navsat-system")  # fmt: skip


def plugin_kind(element: Element) -> str:
    """'diff_drive' (gz-sim), 'classic_diff_drive' (gazebo_ros), 'ros2_control', 'infrastructure' or 'other'."""
    filename = element.attrib.get("filename", "").lower()
    name = element.attrib.get("name", "").lower()
    if "gazebo_ros_diff_drive" in filename:
        return "classic_diff_drive"
    if "ros2_control" in filename:  # gz_ros2_control-system, libgazebo_ros2_control.so, ign_ros2_control
        return "ros2_control"
    if "diff-drive" in filename or "diff_drive" in filename or name.endswith("::diffdrive"):
        return "diff_drive"
    if any(k in filename for k in INFRASTRUCTURE_PLUGINS):
        return "infrastructure"
    return "other"


#: drive plugins that are not differential drives (file name or name fragment -> what they are)
OTHER_DRIVES = (
    ("ackerman", "an Ackermann steering drive"),  # gz AckermannSteering, gazebo_ros_ackermann_drive, ROS 1 ackerman
    ("mecanum", "a mecanum drive"),
    ("skid_steer", "a Gazebo classic ROS 1 skid-steer drive"),
    ("planar_move", "a planar-move (holonomic) drive"),
    ("tricycle", "a tricycle drive"),
)


def other_drive(element: Element) -> str | None:
    """What a drive plugin that is not a differential drive is ("an Ackermann steering drive"), else None."""
    text = (element.attrib.get("filename", "") + " " + element.attrib.get("name", "")).lower()
    return next((what for key, what in OTHER_DRIVES if key in text), None)


def other_drive_error(where: str, element: Element, model: str, what: str) -> str:
    """The "not yet" message for a robot driven only by ``element`` (a drive that is not differential)."""
    return (
        f"{where}: robot model {model!r} is driven by plugin {element.attrib.get('filename', '')!r}, {what}; "
        "not yet supported: the simulator drives differential-drive robots (gz-sim DiffDrive, "
        "gazebo_ros_diff_drive with num_wheel_pairs for skid steer, ros2_control diff_drive_controller). "
        "Test this robot with the gazebo backend, or give it a differential drive for the test."
    )


def _limits(element: Element, spec: DiffDriveSpec) -> None:
    # Gazebo: the un-prefixed forms set both axes, the per-axis forms override them.
    for quantity in ("velocity", "acceleration", "jerk"):
        for bound in ("min", "max"):
            default = -INF if bound == "min" else INF
            both = number(element, f"{bound}_{quantity}", default)
            for axis in ("linear", "angular"):
                value = number(element, f"{bound}_{axis}_{quantity}", both)
                setattr(spec, f"{bound}_{axis}_{quantity}", value)
    for axis in ("linear", "angular"):
        for quantity in ("velocity", "acceleration", "jerk"):
            lo, hi = getattr(spec, f"min_{axis}_{quantity}"), getattr(spec, f"max_{axis}_{quantity}")
            if lo > hi:
                raise ModelError(
                    f"{element.where}: DiffDrive min_{axis}_{quantity} ({lo}) is above max_{axis}_{quantity} "
                    f"({hi}); expected min <= max (minimums are usually negative)."
                )


def parse_diff_drive(element: Element, model: ModelSpec, warn: list[str]) -> DiffDriveSpec:
    """A gz-sim ``DiffDrive`` (or classic ``gazebo_ros_diff_drive``) plugin element of ``model``."""
    classic = plugin_kind(element) == "classic_diff_drive"
    left = [c.text for c in element.findall("left_joint") if c.text]
    right = [c.text for c in element.findall("right_joint") if c.text]
    for side, joints in (("left_joint", left), ("right_joint", right)):
        if not joints:
            raise ModelError(
                f"{element.where}: the DiffDrive plugin of model {model.name!r} has no <{side}>; expected the "
                "name of at least one wheel joint per side."
            )
    if classic:
        diameter = number(element, "wheel_diameter", 0.0)
        radius = diameter / 2 if diameter else number(element, "wheel_radius", 0.0)
    else:
        radius = number(element, "wheel_radius", 0.0)
    separation = number(element, "wheel_separation", 0.0)
    if radius <= 0 or separation <= 0:
        missing = (
            "wheel_diameter" if classic and radius <= 0 else ("wheel_radius" if radius <= 0 else "wheel_separation")
        )
        found = element.child_text(missing) or "none"
        raise ModelError(
            f"{element.where}: the DiffDrive plugin of model {model.name!r} needs a positive <{missing}> (metres); "
            f"found {found}. Gazebo would silently use its defaults (radius 0.2, separation 1.0): set the real value."
        )
    canonical = model.root_link
    if classic:
        spec = DiffDriveSpec(
            left_joints=left,
            right_joints=right,
            wheel_separation=separation,
            wheel_radius=radius,
            topic=_classic_topic(element, "cmd_vel", text(element, "command_topic", "cmd_vel")),
            odom_topic=_classic_topic(element, "odom", text(element, "odometry_topic", "odom")),
            frame_id=text(element, "odometry_frame", "odom"),
            child_frame_id=text(element, "robot_base_frame", "base_footprint"),
            # gazebo_ros_diff_drive (ROS 2): update_rate 100 Hz (ROS 1's updateRate is not read), no odom
            # transform unless publish_odom_tf, odometry_source 1 (WORLD: ground truth) unless 0 (ENCODER)
            odom_publish_frequency=number(element, "update_rate", 100.0),
            origin=element.where,
            kind="gazebo_ros_diff_drive",
            publish_tf=boolean(element, "publish_odom_tf", False),
            tf_topic="/tf",
            odom_from_world=int(number(element, "odometry_source", 1)) == 1,
            max_wheel_acceleration=number(element, "max_wheel_acceleration", 0.0),
        )
        rate = number(element, "update_rate", 100.0)
        spec.wheel_update_period = 1.0 / rate if rate > 0 else 0.0
        if element.find("max_wheel_torque") is not None:
            warn.append(f"{element.where}: gazebo_ros_diff_drive max_wheel_torque is not simulated")
        if not boolean(element, "publish_odom", False):
            warn.append(
                f"{element.where}: gazebo_ros_diff_drive publish_odom is not true: Gazebo publishes no odometry; "
                f"the simulator publishes it on /{spec.odom_topic.lstrip('/')} anyway (set <publish_odom>true</publish_odom>)"
            )
    else:
        spec = DiffDriveSpec(
            left_joints=left,
            right_joints=right,
            wheel_separation=separation,
            wheel_radius=radius,
            topic=text(element, "topic", f"/model/{model.name}/cmd_vel"),
            odom_topic=text(element, "odom_topic", f"/model/{model.name}/odometry"),
            frame_id=text(element, "frame_id", f"{model.name}/odom"),
            child_frame_id=text(element, "child_frame_id", f"{model.name}/{canonical}"),
            odom_publish_frequency=number(element, "odom_publish_frequency", 50.0),
            origin=element.where,
            publish_tf=True,
            tf_topic=text(element, "tf_topic", f"/model/{model.name}/tf"),
        )
        _limits(element, spec)
    # gz-transport resolves relative topic names against "/"; keep them absolute for ROS.
    spec.topic, spec.odom_topic = (t if t.startswith("/") else f"/{t}" for t in (spec.topic, spec.odom_topic))
    if spec.odom_publish_frequency <= 0:
        raise ModelError(
            f"{element.where}: odom_publish_frequency must be positive; found {spec.odom_publish_frequency}."
        )
    return spec


def _classic_topic(element: Element, name: str, default: str, node: str = "") -> str:
    """The ROS name a gazebo_ros plugin uses for its topic ``name`` (relative, or ``~/name`` private to
    the plugin's node ``node``): ``<ros><namespace>``, ``<remapping>NAME:=TOPIC</remapping>`` and
    ``<argument>~/out:=scan</argument>`` (also ``--ros-args -r ...``) resolved as rcl resolves them."""
    ros = element.find("ros")
    namespace = ""
    rules: list[tuple[str, str]] = []
    if ros is not None:
        namespace = text(ros, "namespace", "").strip().rstrip("/")
        if namespace and not namespace.startswith("/"):
            namespace = "/" + namespace
        for child in [*ros.findall("remapping"), *ros.findall("argument")]:
            for token in child.text.split():
                src, sep, dst = token.partition(":=")
                if sep and dst:
                    rules.append((src.strip(), dst.strip()))
    private = f"{namespace}/{node}" if node else namespace
    for src, dst in rules:
        if src in (name, f"~/{name}", f"{private}/{name}", f"{namespace}/{name}"):
            default = dst
    if default.startswith("/"):
        return default
    if default.startswith("~/"):
        return f"{private}/{default[2:]}"
    return f"{namespace}/{default}"


def check_diff_drive_joints(spec: DiffDriveSpec, model: ModelSpec) -> None:
    joints = {j.name: j for j in model.joints}
    for name in spec.left_joints + spec.right_joints:
        joint = joints.get(name)
        if joint is None:
            known = ", ".join(sorted(joints)) or "(none)"
            raise ModelError(
                f"{spec.origin}: DiffDrive wheel joint {name!r} is not a joint of model {model.name!r}; "
                f"expected one of: {known}. Fix <left_joint>/<right_joint>."
            )
        if joint.kind not in ("revolute", "continuous"):
            raise ModelError(
                f"{spec.origin}: DiffDrive wheel joint {name!r} of model {model.name!r} is {joint.kind}; "
                "expected a revolute or continuous joint."
            )


def parse_lidar(sensor: Element, link: str, model: str, world: str, warn: list[str]) -> LidarSpec | None:
    """A lidar ``<sensor>``; None (with a warning) for any other sensor type."""
    kind = sensor.attrib.get("type", "")
    name = sensor.attrib.get("name", kind)
    if kind not in LIDAR_TYPES:
        warn.append(f"{sensor.where}: sensor {name!r} of type {kind!r} on {model}/{link} is not simulated")
        return None
    body = sensor.find("lidar") or sensor.find("ray")
    if body is None:
        raise ModelError(f"{sensor.where}: {kind} sensor {name!r} has no <lidar> (or <ray>) element.")
    horizontal = body.path("scan", "horizontal")
    if horizontal is None:
        raise ModelError(f"{sensor.where}: lidar {name!r} needs <scan><horizontal> with <samples>.")
    samples = int(number(horizontal, "samples", 0))
    if samples <= 0:
        raise ModelError(
            f"{horizontal.where}: lidar {name!r} has {samples} horizontal samples; expected a positive count."
        )
    if number(horizontal, "resolution", 1.0) != 1.0:
        warn.append(f"{horizontal.where}: lidar {name!r} <resolution> != 1 is ignored (samples are used)")
    vertical = body.path("scan", "vertical")
    if vertical is not None and number(vertical, "samples", 1) > 1:
        warn.append(f"{vertical.where}: lidar {name!r} has vertical samples; only the horizontal plane is scanned")
    min_angle = number(horizontal, "min_angle", 0.0)
    max_angle = number(horizontal, "max_angle", 0.0)
    if max_angle < min_angle:
        raise ModelError(f"{horizontal.where}: lidar {name!r} max_angle {max_angle} < min_angle {min_angle}.")
    rng = body.find("range")
    if rng is None:
        raise ModelError(f"{body.where}: lidar {name!r} needs a <range> with <min> and <max>.")
    range_min, range_max = number(rng, "min", 0.0), number(rng, "max")
    if not 0 <= range_min < range_max:
        raise ModelError(
            f"{rng.where}: lidar {name!r} range must satisfy 0 <= min < max; found {range_min}, {range_max}."
        )
    noise = body.find("noise") or sensor.find("noise")
    mean = stddev = 0.0
    if noise is not None:
        noise_type = text(noise, "type", noise.attrib.get("type", "gaussian"))
        if noise_type not in ("gaussian", "none", ""):
            warn.append(f"{noise.where}: lidar noise type {noise_type!r} is simulated as gaussian")
        mean, stddev = number(noise, "mean", 0.0), number(noise, "stddev", 0.0)
    topic = text(sensor, "topic", f"/world/{world}/model/{model}/link/{link}/sensor/{name}/scan")
    # gz-sensors Sensor.cc PopulateFromSDF: //sensor/frame_id, else the deprecated gz_frame_id, else the
    # sensor's name, which gz-sim sets to its scoped name model::link::sensor ("/" through ros_gz_bridge)
    explicit = text(sensor, "frame_id", text(sensor, "gz_frame_id", text(sensor, "ignition_frame_id", "")))
    frame = explicit or f"{model}/{link}/{name}"
    for plugin in sensor.findall("plugin"):  # classic gazebo_ros_ray_sensor: publishes ~/out of its node
        if "ray_sensor" in plugin.attrib.get("filename", ""):
            topic = _classic_topic(plugin, "out", "~/out", plugin.attrib.get("name", "gazebo_ros_ray_sensor"))
            frame = text(plugin, "frame_name", explicit or link)  # gazebo_ros SensorFrameID: the parent link
            output = text(plugin, "output_type", "sensor_msgs/LaserScan")
            if output.replace("/msg/", "/") != "sensor_msgs/LaserScan":
                warn.append(
                    f"{plugin.where}: lidar {name!r} output_type {output} is published as sensor_msgs/LaserScan"
                )
        else:
            warn.append(f"{plugin.where}: sensor plugin {plugin.attrib.get('filename', '')!r} is not simulated")
    pose, _ = sdf_pose(sensor.find("pose"))
    rate = number(sensor, "update_rate", 10.0)
    if rate <= 0:
        raise ModelError(f"{sensor.where}: lidar {name!r} update_rate must be positive; found {rate}.")
    return LidarSpec(
        name=name,
        link=link,
        pose=pose,
        topic=topic if topic.startswith("/") else f"/{topic}",
        frame_id=frame,
        update_rate=rate,
        samples=samples,
        min_angle=min_angle,
        max_angle=max_angle,
        range_min=range_min,
        range_max=range_max,
        range_resolution=number(rng, "resolution", 0.0),
        noise_mean=mean,
        noise_stddev=stddev,
    )


ROS2_CONTROL_HINT = (
    "drives through ros2_control (gz_ros2_control + diff_drive_controller), which the embedded simulator does "
    'not run; expected a Gazebo DiffDrive plugin. Add <plugin filename="gz-sim-diff-drive-system" '
    'name="gz::sim::systems::DiffDrive"> with the controller\'s wheel joints, wheel_separation and wheel_radius '
    "(e.g. in a <gazebo> tag enabled by a xacro argument for tests), or test it with the process/docker backend "
    "running Gazebo."
)
