"""``simtwin-sim``: the embedded headless simulator as a command (also ``python -m pytest_simtwin.sim``).

Start-up is on the critical path of every test session: the main thread brings up rclpy and the
node first (DDS discovery then runs meanwhile), parses the world and creates the publishers and
services, while a thread imports MuJoCo and compiles the world; the t = 0 odometry goes out before
the compile ends.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from pytest_simtwin.control import protocol
from pytest_simtwin.errors import ConfigError, ModelError, SimTwinError
from pytest_simtwin.sim.stopping import StopSignals

if TYPE_CHECKING:
    from pytest_simtwin.sim.world.model import Pose, WorldSpec

log = logging.getLogger("simtwin.sim")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2  # bad input: world/robot/bridge file, options

EPILOG = """\
environment:
  ROS_DOMAIN_ID     DDS domain the simulator talks on (default 0); logged at start.
  GZ_PARTITION      logged for parity with Gazebo (the embedded simulator has no gz-transport).
  RMW_IMPLEMENTATION, FASTDDS_DEFAULT_PROFILES_FILE
                    as for any ROS 2 process; pytest-simtwin sets the packaged fast-discovery
                    profile for every process of a test domain.

topics (names from the robot's DiffDrive / lidar plugin parameters, renamed by --bridge):
  <DiffDrive topic>      geometry_msgs/Twist and TwistStamped (one of them with --cmd-vel-type)
  <DiffDrive odom_topic> nav_msgs/Odometry, wheel odometry at odom_publish_frequency (sim time)
  <lidar topic>          sensor_msgs/LaserScan at the lidar update_rate (REP-117 +inf/-inf), every lidar
  (every robot with a DiffDrive in the world has its own command, odometry and lidar topics)
  /joint_states          sensor_msgs/JointState with the odometry
  /clock                 rosgraph_msgs/Clock, at most 100 Hz of sim time
  NS/ground_truth        nav_msgs/Odometry, true base pose, twist in the world frame
  <imu sensor topic>     sensor_msgs/Imu at its update_rate (gravity included, SDF noise, --seed)
  <camera topics>        sensor_msgs/Image rgb8 / 32FC1 depth, CameraInfo, PointCloud2 (gz-sensors
                         names: <topic>, <topic>/points, .../camera_info); rendered with MuJoCo
                         offscreen (MUJOCO_GL=egl, Debian: libegl1 libegl-mesa0 libgl1-mesa-dri
                         libgbm1) only while someone subscribes
  <navsat topic>         sensor_msgs/NavSatFix from the world's <spherical_coordinates>
  <contact topic>        ros_gz_interfaces/Contacts while the sensor's collisions touch something
  <magnetometer topic>   sensor_msgs/MagneticField: the world's <magnetic_field> in the sensor frame
  <air_pressure topic>   sensor_msgs/FluidPressure: US standard atmosphere at the sensor's altitude

control services NS/<name> (diagnostic_msgs/srv/AddDiagnostics, JSON payloads; NS = --namespace):
  get_simulator_features get_simulation_state set_simulation_state step_simulation
  reset_simulation get_entities get_entity_state set_entity_state spawn_entity delete_entity
  e.g. ros2 service call /simtwin/step_simulation diagnostic_msgs/srv/AddDiagnostics \\
         "{load_namespace: '{\\"steps\\": 100}'}"

exit codes: 0 stopped (SIGINT/SIGTERM, quit request, --duration, parent gone), 1 internal error,
2 bad input (world/robot/bridge file or option).
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="simtwin-sim",
        description="Headless MuJoCo simulator of a differential-drive robot behind real ROS 2 topics "
        "(a drop-in for `gz sim -s` + ros_gz_bridge in tests).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("world", nargs="?", type=Path, help="SDF world file (default: the built-in arena)")
    p.add_argument(
        "--robot", type=Path, help="robot SDF or URDF to add (default: the world's robot, else the built-in one)"
    )
    p.add_argument(
        "--robot-pose",
        metavar="X,Y,YAW",
        help="place the robot at this pose in the world (m, m, rad); X,Y,Z,ROLL,PITCH,YAW also works",
    )
    p.add_argument(
        "--robot-name",
        metavar="NAME",
        help="model name of the --robot, as `ros_gz_sim create -name` gives it (default: the file's); scoped "
        "sensor frame ids and default gz topics use it",
    )
    p.add_argument(
        "--rtf",
        type=float,
        help="real-time factor: 1 = real time, 0 = as fast as possible (default: the world's "
        "<real_time_factor>, else 1)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the sensor noise (default 0)")
    p.add_argument("--paused", action="store_true", help="start paused (resume with set_simulation_state playing)")
    p.add_argument(
        "--lockstep",
        action="store_true",
        help="time advances only on step_simulation requests: same seed + same commands -> bit-identical odometry",
    )
    p.add_argument("--step-size", type=float, help="physics step in seconds (default: the world's <max_step_size>)")
    p.add_argument(
        "--cmd-vel-type",
        choices=("any", "twist", "twist_stamped"),
        help="message type of the velocity command topics: any (the default) takes Twist and TwistStamped at "
        "once; twist or twist_stamped only that one",
    )
    p.add_argument(
        "--bridge", type=Path, help="ros_gz_bridge YAML: rename gz topic names to ROS names like the bridge would"
    )
    p.add_argument(
        "--namespace",
        default=protocol.NAMESPACE,
        help=f"namespace of the control services and ground truth (default {protocol.NAMESPACE})",
    )
    p.add_argument(
        "--no-sensor",
        action="append",
        default=[],
        metavar="NAME|KIND",
        help="turn a sensor off: its name, a kind (imu, camera, depth, rgbd, navsat, contact, magnetometer, "
        "air_pressure), 'camera' for every "
        "camera, or 'all' (repeatable; e.g. a test that needs only odometry)",
    )
    p.add_argument("--duration", type=float, help="exit after this many seconds of sim time")
    p.add_argument(
        "--parent-pid", type=int, help="exit when this process ends (pytest-simtwin passes its worker's pid)"
    )
    p.add_argument(
        "--check", action="store_true", help="load the world, print the model summary and warnings, exit (no ROS)"
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="stderr log level (default info)",
    )
    return p


def parse_pose(text: str) -> Pose:
    from pytest_simtwin.sim.world.model import Pose

    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        raise ConfigError(
            f"--robot-pose {text!r}: expected numbers X,Y,YAW (metres, radians), e.g. 1.0,-0.5,1.57"
        ) from None
    if len(values) == 3:
        return Pose(values[0], values[1], 0.0, 0.0, 0.0, values[2])
    if len(values) == 6:
        return Pose(*values)
    raise ConfigError(
        f"--robot-pose {text!r}: expected 3 numbers X,Y,YAW or 6 X,Y,Z,ROLL,PITCH,YAW, found {len(values)}"
    )


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d simtwin-sim %(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger("simtwin")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def _load(args: argparse.Namespace) -> WorldSpec:
    from pytest_simtwin.sim.world.sdf import load_world

    pose = parse_pose(args.robot_pose) if args.robot_pose else None
    for label, path in (("world", args.world), ("robot", args.robot), ("bridge", args.bridge)):
        if path is not None and not path.is_file():
            raise ConfigError(f"{label} file {path} does not exist (cwd {os.getcwd()}); expected a readable file")
    if args.duration is not None and not args.duration > 0:
        raise ConfigError(f"--duration {args.duration}: expected a positive number of sim seconds")
    if args.robot_name is not None and (args.robot is None or not args.robot_name.strip()):
        raise ConfigError(f"--robot-name {args.robot_name!r}: expected a non-empty name together with --robot")
    world = load_world(args.world, args.robot, pose, args.robot_name)
    if args.step_size is not None:
        if not 0 < args.step_size <= 0.05:
            raise ConfigError(f"--step-size {args.step_size}: expected seconds in (0, 0.05], e.g. 0.002")
        world.step_size = args.step_size
    return world


def _summary(world: WorldSpec, topics: Any) -> str:
    lines = [
        f"world {world.name!r} from {world.source or 'built-in arena'}: step {world.step_size:g} s, "
        f"real_time_factor {world.real_time_factor:g}, {len(world.models)} model(s)",
    ]
    for m in world.models:
        tag = " (robot)" if m.diff_drive is not None else " (static)" if m.static else ""
        p = m.pose
        lines.append(
            f"  model {m.name}{tag}: {len(m.links)} link(s), {len(m.joints)} joint(s) at "
            f"x {p.x:g} y {p.y:g} z {p.z:g} yaw {p.yaw:g}"
        )
    for robot, t in zip(world.robots, topics.robots, strict=False):
        dd = robot.diff_drive
        assert dd is not None
        lines.append(
            f"  {robot.name} {dd.kind}: wheels r {dd.wheel_radius:g} m, separation {dd.wheel_separation:g} m, "
            f"max {dd.max_linear_velocity:g} m/s / {dd.max_angular_velocity:g} rad/s, odom {dd.odom_publish_frequency:g} Hz"
        )
        for lidar in robot.lidars:
            lines.append(
                f"    lidar {lidar.name}: {lidar.samples} samples {lidar.min_angle:.3f}..{lidar.max_angle:.3f} rad, "
                f"{lidar.range_min:g}-{lidar.range_max:g} m, {lidar.update_rate:g} Hz, noise σ {lidar.noise_stddev:g}"
            )
        scans = ", ".join(s.topic for s in t.scans) or "-"
        lines.append(
            f"    topics: cmd {t.cmd_vel} ({'/'.join(t.cmd_vel_types)}), odom {t.odom} ({t.frame_id} -> "
            f"{t.child_frame_id}), scan {scans}, {t.joint_states}, {t.clock}, {t.ground_truth}"
        )
        for d in robot.devices:
            extra = (
                f", {d.width}x{d.height}, hfov {d.horizontal_fov:g} rad" if d.kind in ("camera", "depth", "rgbd") else ""
            )
            lines.append(f"    sensor {d.name} ({d.kind}) on {d.link}: {d.update_rate:g} Hz{extra}, frame {d.frame_id}")
    return "\n".join(lines)


class _PhysicsBuilder(threading.Thread):
    """Builds the Physics (importing MuJoCo) once the world is known, beside the main thread's ROS set-up."""

    def __init__(self, seed: int) -> None:
        super().__init__(name="simtwin-physics", daemon=True)
        self.seed = seed
        self.world: WorldSpec | None = None
        self.world_ready = threading.Event()
        self.physics: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            # MuJoCo itself is imported inside Physics(): after the world is parsed, overlapping the
            # main thread's creation of publishers and services (importing it earlier competes with
            # rclpy's import for the GIL and did not help, measured).
            from pytest_simtwin.sim.engine import physics

            self.world_ready.wait()
            if self.world is not None:
                self.physics = physics.Physics(self.world, seed=self.seed)
        except BaseException as exc:
            self.error = exc

    def build(self, world: WorldSpec | None) -> None:
        """Hand over the world (None: give up) and let the thread compile it."""
        self.world = world
        self.world_ready.set()

    def result(self) -> Any:
        self.join()
        if self.error is not None:
            raise self.error
        return self.physics


def _publish_initial_odometry(node: Any, world: WorldSpec) -> None:
    """Wheel odometry at t = 0 is the origin at rest by definition: publish it while MuJoCo still
    compiles the world, so subscribers know the simulator is up ~0.1 s sooner. Commands and control
    requests that follow are served as soon as the loop runs."""
    from pytest_simtwin.sim.engine.physics import POSE_COVARIANCE, TWIST_COVARIANCE

    diag = [0.0] * 36
    for i, v in enumerate(POSE_COVARIANCE):
        diag[i * 7] = v
    node.msg_odom.pose.covariance = diag
    diag = [0.0] * 36
    for i, v in enumerate(TWIST_COVARIANCE):
        diag[i * 7] = v
    node.msg_odom.twist.covariance = diag
    for name in node.robots:
        node.publish_odom(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, robot=name)
    # The first robot's ground truth at t = 0 is its spawn pose: the embedded backend waits for this
    # fixed-name topic (the odometry topic's name depends on the robot).
    robot = world.robot
    root = robot.link(robot.root_link) if robot.links else None
    pose = robot.pose * root.pose if root is not None else robot.pose
    w, x, y, z = pose.quaternion()
    truth = SimpleNamespace(x=pose.x, y=pose.y, z=pose.z, qx=x, qy=y, qz=z, qw=w, vx=0.0, vy=0.0, vz=0.0,
                            wx=0.0, wy=0.0, wz=0.0)  # fmt: skip
    node.publish_truth(0.0, truth)


def _choose_gl(world: WorldSpec, disabled: list[str], user_gl: str | None) -> str | None:
    """Set MUJOCO_GL before MuJoCo is imported: EGL when a camera will render, else none at all
    (importing mujoco with a GL backend loads its libraries, ~0.1-0.5 s). Returns why cameras
    cannot render here (None: they can), so the rest of the simulator runs without them."""
    from pytest_simtwin.sim.engine.sensors import gl_problem, render_error
    from pytest_simtwin.sim.sensor_node import selected
    from pytest_simtwin.sim.world.sensors import CAMERA_KINDS

    cameras = [d for d in world.robot.devices if d.kind in CAMERA_KINDS and selected(d, disabled)]
    if not cameras:
        os.environ["MUJOCO_GL"] = user_gl or "disable"
        return None
    backend = (user_gl or "egl").lower()
    problem = gl_problem(backend)
    if problem is None:
        os.environ["MUJOCO_GL"] = backend
        return None
    os.environ["MUJOCO_GL"] = "disable"  # importing mujoco with a broken backend would fail the physics too
    message = render_error(problem)
    log.error("%s", message)
    return message


def _sensors(node: Any, world: WorldSpec, args: argparse.Namespace, bridge: Any, problem: str | None) -> Any:
    from pytest_simtwin.sim.sensor_node import SensorPublishers

    devices = world.robot.devices
    known = {"all", "camera", "imu", "depth", "rgbd", "navsat", "contact", "magnetometer", "air_pressure"}
    known |= {d.name for d in devices} | {f"{d.model}/{d.link}/{d.name}" for d in devices}
    unknown = [n for n in args.no_sensor if n not in known]
    if unknown:
        names = ", ".join(sorted(d.name for d in devices)) or "none"
        raise ConfigError(
            f"--no-sensor {unknown[0]}: no sensor or kind of that name; expected a sensor name ({names}), a kind "
            "(imu, camera, depth, rgbd, navsat, contact, magnetometer, air_pressure) or all"
        )
    if not devices:
        return None
    publishers = SensorPublishers(
        node.node,
        devices,
        step_size=world.step_size,
        seed=args.seed,
        bridge={e.gz_topic_name: (e.ros_topic_name, e.ros_type_name) for e in bridge},
        disabled=args.no_sensor,
        spherical=world.spherical,
        magnetic_field=world.magnetic_field,
        render_problem=problem,
        send=node._send,
        create_publisher=node.publisher,
    )
    for sensor in publishers.sensors:
        log.info("sensor %s (%s) at %g Hz: %s", sensor.spec.name, sensor.spec.kind, sensor.spec.update_rate,
                 ", ".join(sensor.topics.values()))  # fmt: skip
    for note in publishers.skipped:
        log.warning("sensor %s", note)
    return publishers


def main(argv: list[str] | None = None) -> int:
    """The command. Run from the command line (``argv`` None) it ends the process itself once ROS is
    closed: interpreter teardown with rclpy and MuJoCo loaded takes 1-3 s, the budget for a clean
    exit after SIGTERM is 1 s. With ``argv`` it returns the exit code."""
    code = _main(argv)
    if argv is None:
        logging.shutdown()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    return code


def _main(argv: list[str] | None) -> int:
    stop = StopSignals()
    # Handlers first: a SIGTERM during start-up must still end in an orderly exit 0.
    stop.install()
    t0 = time.monotonic()
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level)
    user_gl = os.environ.get("MUJOCO_GL")
    builder = _PhysicsBuilder(args.seed)
    builder.start()
    node = None
    try:
        if not args.check:
            # The participant first: DDS discovery then overlaps loading and compiling the world.
            from pytest_simtwin.sim.node import SimNode

            node = SimNode(namespace=args.namespace)
            log.debug("node up at %.3f s", time.monotonic() - t0)
        try:
            world = _load(args)
        except BaseException:
            builder.build(None)
            raise
        render_problem = _choose_gl(world, args.no_sensor, user_gl)
        builder.build(world)
        log.debug("world loaded at %.3f s", time.monotonic() - t0)
        from pytest_simtwin.sim.topics import load_bridge, resolve_topics, static_transforms

        bridge = load_bridge(args.bridge) if args.bridge else []
        served = {t for d in world.robot.devices for t in d.topics.values()}
        topics = resolve_topics(
            world, cmd_vel_type=args.cmd_vel_type, bridge=bridge, namespace=args.namespace, served=served
        )
        if world.warnings:
            log.warning(
                "unsupported or ignored in %s:\n%s",
                world.source or "the built-in world",
                "\n".join(f"  - {w}" for w in world.warnings),
            )
        for note in topics.notes:
            log.warning("%s", note)
        if args.check or node is None:
            builder.result()  # compiling the model catches what parsing cannot
            print(_summary(world, topics))
            return EXIT_OK
        log.info(
            "ROS_DOMAIN_ID=%s GZ_PARTITION=%s RMW=%s profile=%s",
            os.environ.get("ROS_DOMAIN_ID", "0 (unset)"),
            os.environ.get("GZ_PARTITION", "(unset)"),
            os.environ.get("RMW_IMPLEMENTATION", "(default)"),
            os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE", "(none)"),
        )
        if stop.reason is not None:  # stopped during start-up
            log.info("stopping before start: %s", stop.reason)
            return EXIT_OK
        node.start(
            topics,
            lidars=[lidar for robot in world.robots for lidar in robot.lidars],
            static_transforms=static_transforms(world, topics),
        )
        _publish_initial_odometry(node, world)
        log.debug("initial odometry published at %.3f s", time.monotonic() - t0)
        sensors = _sensors(node, world, args, bridge, render_problem)
        physics = builder.result()
        log.debug("physics built at %.3f s", time.monotonic() - t0)
        from pytest_simtwin.sim.runner import Runner

        rtf = args.rtf if args.rtf is not None else world.real_time_factor
        runner = Runner(
            physics,
            node,
            world,
            rtf=rtf,
            paused=args.paused,
            lockstep=args.lockstep,
            seed=args.seed,
            duration=args.duration,
            parent_pid=args.parent_pid,
            sensors=sensors,
        )
        stop.runner = runner
        if stop.reason is not None:
            runner.request_stop(stop.reason)
        log.info(
            "ready in %.3f s: world %r, robot %r; cmd %s (%s), odom %s, scan %s; services %s/*%s",
            time.monotonic() - t0,
            world.name,
            world.robot.name,
            topics.cmd_vel,
            "/".join(topics.cmd_vel_types),
            topics.odom,
            ", ".join(s.topic for s in topics.scans) or "-",
            args.namespace.rstrip("/"),
            "".join(
                f"; robot {t.robot!r}: cmd {t.cmd_vel}, odom {t.odom}, scan {', '.join(s.topic for s in t.scans) or '-'}"
                for t in topics.others
            ),
        )
        return runner.run()
    except (ModelError, ConfigError) as exc:
        print(f"simtwin-sim: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SimTwinError as exc:
        print(f"simtwin-sim: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception:
        log.exception("simtwin-sim failed")
        return EXIT_ERROR
    finally:
        if node is not None:
            t_close = time.monotonic()
            node.close()
            log.debug("ROS closed in %.3f s", time.monotonic() - t_close)


if __name__ == "__main__":
    sys.exit(main())
