"""``simtwin record | validate | calibrate | synth``: digital-twin validation from the command line.

Exit codes of ``validate``: 0 the twin passes, 1 it fails a metric, 2 an error (bad file, no
simulator, ...). The work lives in :mod:`pytest_simtwin.twin`; this module only parses arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_simtwin.errors import ConfigError, DataError
from pytest_simtwin.sim.engine.twin_model import ENV as TWIN_ENV

EMPTY_WORLD = Path(__file__).resolve().parents[1] / "data" / "empty_world.sdf"
METRIC_NAMES = ("position_error", "velocity_tracking", "sensor_latency", "collision_detection")


class ProgressBar:
    """A one-line progress bar on stderr, only on a TTY (or when forced)."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled
        self._last = -1

    def __call__(self, fraction: float) -> None:
        if not self.enabled:
            return
        pct = int(max(0.0, min(fraction, 1.0)) * 100)
        if pct == self._last:
            return
        self._last = pct
        bar = "#" * (pct // 4) + "-" * (25 - pct // 4)
        sys.stderr.write(f"\r{self.label:<10} [{bar}] {pct:3d}%")
        if pct >= 100:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _progress(args: argparse.Namespace, label: str) -> ProgressBar:
    return ProgressBar(label, bool(getattr(args, "progress", False)) or sys.stderr.isatty())


def _add_topics(p: argparse.ArgumentParser) -> None:
    p.add_argument("--odom-topic", default="/odom", help="odometry topic (nav_msgs/Odometry), default /odom")
    p.add_argument("--cmd-vel-topic", default="/cmd_vel", help="velocity command topic, default /cmd_vel")
    p.add_argument("--joint-states-topic", default="/joint_states", help="joint states topic, default /joint_states")
    p.add_argument(
        "--time-source", choices=("auto", "header", "log"), default="auto", help="message stamps or bag receive times"
    )


def _add_sim(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("simulator (for --replay)")
    g.add_argument(
        "--backend", default="embedded", help="simulator backend: embedded (default), process, attach, docker"
    )
    g.add_argument(
        "--world",
        type=Path,
        help="world SDF (default: an empty world, ground plane only: the recording was not made in our arena)",
    )
    g.add_argument("--robot", type=Path, help="robot SDF/URDF (e.g. the calibrated copy from `simtwin calibrate`)")
    g.add_argument("--sim-command", help="process backend: simulator command template")
    g.add_argument("--domain-range", default=None, help="ROS_DOMAIN_IDs to lease from (default 1-101,215-232)")
    g.add_argument("--timeout", type=float, default=30.0, help="simulator start timeout (s)")
    g.add_argument(
        "--sim-pose",
        choices=("ground_truth", "odom"),
        default="ground_truth",
        help="simulated pose to compare: true motion (default; wheel odometry cannot see a wrong wheel radius) or /odom",
    )


def register(sub: Any) -> None:
    # -- record ---------------------------------------------------------------------------------
    p = sub.add_parser(
        "record", help="record /odom, /joint_states (+ /cmd_vel, /scan) from a robot or simulator to MCAP"
    )
    p.add_argument("output", type=Path, help="rosbag2 folder to write (MCAP)")
    p.add_argument("--domain", type=int, help="ROS_DOMAIN_ID (default: $ROS_DOMAIN_ID, else 0)")
    p.add_argument("--duration", type=float, help="seconds to record (default: until Ctrl-C)")
    p.add_argument("--no-cmd-vel", action="store_true", help="do not record the velocity commands")
    p.add_argument("--scan", action="store_true", help="also record the laser scan topic")
    p.add_argument("--scan-topic", default="/scan")
    p.add_argument("--json", type=Path, help="also export the simple JSON format to this file")
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the odometry topic to appear")
    _add_topics(p)
    p.set_defaults(func=cmd_record)

    # -- validate -------------------------------------------------------------------------------
    p = sub.add_parser(
        "validate",
        help="score a simulated run against real data (exit 0 pass, 1 fail, 2 error)",
        description="Compare REAL with SIM (a recording) or with the simulator's replay of REAL's /cmd_vel.",
    )
    p.add_argument("real", type=Path, help="real data: rosbag2 folder/.mcap/.db3, ROS 1 .bag or .json")
    p.add_argument("sim", type=Path, nargs="?", help="simulated run to compare (omit with --replay)")
    p.add_argument("--replay", action="store_true", help="replay REAL's commands in the simulator and compare")
    p.add_argument("--out", type=Path, default=Path("twin-validation"), help="output folder (metrics.json, PNG)")
    p.add_argument("--config", type=Path, help="twin settings: YAML file or pyproject.toml ([tool.simtwin.twin])")
    p.add_argument("--metrics", help=f"comma-separated subset of {', '.join(METRIC_NAMES)}")
    p.add_argument("--offset", help="time offset: auto, first_command, xcorr, none, or seconds added to SIM")
    p.add_argument("--no-align-pose", action="store_true", help="do not move SIM onto REAL's initial pose")
    p.add_argument("--no-png", action="store_true", help="skip validation_report.png and validation_report.html")
    p.add_argument(
        "--twin",
        type=Path,
        help="overrides YAML from `simtwin calibrate` applied to the replay (SIMTWIN_TWIN_OVERRIDES)",
    )
    p.add_argument("--window", type=float, help="re-anchoring window of the position error in seconds (default 1)")
    p.add_argument("--window-distance", type=float, help="re-anchor every this many metres travelled instead")
    p.add_argument("--save-sim", type=Path, help="write the replayed simulated run to this JSON file")
    p.add_argument("--progress", action="store_true", help="progress bar on stderr even without a TTY")
    _add_topics(p)
    _add_sim(p)
    p.set_defaults(func=cmd_validate)

    # -- calibrate ------------------------------------------------------------------------------
    p = sub.add_parser(
        "calibrate", help="fit wheel radius, separation, delay, lags, wheel speed and acceleration limits to real data"
    )
    p.add_argument("real", type=Path, help="real data with /cmd_vel (bag or JSON)")
    p.add_argument(
        "--robot", type=Path, help="robot SDF holding the nominal DiffDrive values (default: built-in robot)"
    )
    p.add_argument("--wheel-radius", type=float, help="nominal wheel radius (m), overrides the SDF")
    p.add_argument("--wheel-separation", type=float, help="nominal wheel separation (m), overrides the SDF")
    p.add_argument(
        "--fit",
        help="comma-separated parameters to fit (default: wheel_radius, wheel_separation, command_latency, "
        "time_constant_linear, time_constant_angular, max_wheel_speed, and max_linear_acceleration when the "
        "held-out segments say it helps; also max_angular_acceleration, linear_gain, angular_gain)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("simtwin-calibration.yaml"),
        help="overrides YAML to write (use it with SIMTWIN_TWIN_OVERRIDES=FILE); not written when refused",
    )
    p.add_argument("--segments", type=int, default=5, help="segments the recording is cut into (default 5)")
    p.add_argument(
        "--held-out", default="1,3", help="indices of the segments held out of the fit for the check (default 1,3)"
    )
    p.add_argument("--sdf-out", type=Path, help="write a calibrated copy of the robot SDF (for --robot)")
    p.add_argument("--config", type=Path, help="twin settings for the after-calibration check")
    _add_topics(p)
    p.set_defaults(func=cmd_calibrate)

    # -- synth ----------------------------------------------------------------------------------
    p = sub.add_parser("synth", help='make synthetic "real" data from a simulated run (noise, bias, latency, slip)')
    p.add_argument("sim", type=Path, nargs="?", help="simulated run (bag or JSON); omit with --scenario")
    p.add_argument("-o", "--output", type=Path, required=True, help="JSON file to write")
    p.add_argument(
        "--scenario", type=float, metavar="SECONDS", help="first record a varied drive of this length in the simulator"
    )
    p.add_argument("--scenario-output", type=Path, help="also save the scenario's simulated run (JSON)")
    p.add_argument("--position-noise", type=float, default=0.005, help="RMS position noise (m), default 0.005")
    p.add_argument("--heading-noise", type=float, default=0.002)
    p.add_argument("--velocity-noise", type=float, default=0.003)
    p.add_argument("--radius-scale", type=float, default=1.0, help="physical/configured wheel radius, e.g. 1.03")
    p.add_argument("--separation-scale", type=float, default=1.0)
    p.add_argument("--latency", type=float, default=0.0, help="extra command latency (s)")
    p.add_argument("--lag", type=float, default=0.0, help="extra first-order response lag, time constant (s)")
    p.add_argument("--lag-angular", type=float, help="time constant of the yaw-rate lag (s; default: --lag)")
    p.add_argument("--yaw-bias", type=float, default=0.0, help="yaw-rate bias (rad/s)")
    p.add_argument("--slip", type=float, default=0.0, help="fraction of time in 30 %% wheel-slip episodes")
    p.add_argument("--rate", type=float, help="odometry rate of the output (Hz)")
    p.add_argument("--time-offset", type=float, default=0.0, help="seconds added to every timestamp")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", action="store_true")
    _add_topics(p)
    _add_sim(p)
    p.set_defaults(func=cmd_synth)


# -- helpers ------------------------------------------------------------------------------------
def _topics(args: argparse.Namespace) -> Any:
    from pytest_simtwin.twin.loaders import Topics

    return Topics(odom=args.odom_topic, cmd_vel=args.cmd_vel_topic, joint_states=args.joint_states_topic)


def _load(path: Path, args: argparse.Namespace, label: str) -> Any:
    from pytest_simtwin.twin.loaders import load_trajectory

    return load_trajectory(path, topics=_topics(args), time_source=args.time_source, progress=_progress(args, label))


def _twin_config(args: argparse.Namespace) -> Any:
    from pytest_simtwin.twin.scoring import load_config

    cfg = load_config(args.config)
    if getattr(args, "metrics", None):
        cfg = cfg.with_metrics([m.strip() for m in args.metrics.split(",") if m.strip()])
    if getattr(args, "offset", None):
        try:
            cfg = replace(cfg, offset=float(args.offset))
        except ValueError:
            cfg = replace(cfg, offset=args.offset)
    if getattr(args, "no_align_pose", False):
        cfg = replace(cfg, align_pose=False)
    if getattr(args, "window", None):
        cfg = replace(cfg, window=float(args.window))
    if getattr(args, "window_distance", None):
        cfg = replace(cfg, window_distance=float(args.window_distance))
    return cfg


def run_replay(
    real: Any, args: argparse.Namespace, progress: Callable[[float], None] | None = None, joints: bool = False
) -> Any:
    """Open a SimSession like a pytest worker would, replay ``real``'s commands, close everything."""
    from pytest_simtwin.backends.base import SimConfig
    from pytest_simtwin.ros.domains import DEFAULT_DOMAIN_RANGE, parse_domain_range
    from pytest_simtwin.runtime.session import SimSession
    from pytest_simtwin.runtime.settings import Settings
    from pytest_simtwin.twin.replay import replay

    sim_cfg = SimConfig(
        world=(args.world or EMPTY_WORLD).resolve(),
        robot=args.robot.resolve() if args.robot else None,
        rtf=0.0,
        command=args.sim_command,
        start_timeout=args.timeout,
        # one simulator per command: a fork server left idle by the previous command can exit while this
        # one connects (its child then exits 70), and a warm server saves little for a single simulator
        options={"fork_server": False},
    )
    settings = Settings(
        backend=args.backend,
        sim=sim_cfg,
        domain_ids=tuple(parse_domain_range(args.domain_range or DEFAULT_DOMAIN_RANGE)),
        reset="none",
        timeout=args.timeout,
        artifacts=Path(args.out if hasattr(args, "out") and args.out else "twin-validation") / "sim",
    )
    with SimSession(settings) as session:
        return replay(real, session, sim_cfg, progress=progress, pose=args.sim_pose, joints=joints)


# -- commands -----------------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    from pytest_simtwin.twin.report import write_outputs
    from pytest_simtwin.twin.scoring import validate

    if args.sim is None and not args.replay:
        raise ConfigError("simtwin validate: give a simulated run SIM to compare, or --replay to drive the simulator")
    if args.sim is not None and args.replay:
        raise ConfigError("simtwin validate: give either SIM or --replay, not both")
    cfg = _twin_config(args)
    t0 = time.monotonic()
    real = _load(args.real, args, "real")
    if args.twin is not None and not args.twin.is_file():
        raise ConfigError(f"--twin {args.twin}: no such file; expected the overrides YAML of `simtwin calibrate`")
    if args.replay:
        with _twin_environment(args.twin):
            sim = run_replay(real, args, _progress(args, "replay"), joints=args.save_sim is not None)
        twin = _replayed_twin(args)
        if twin is not None:  # the windowed error re-anchors the velocity with the twin's lag
            sim.meta["twin"] = twin
        if args.save_sim:
            sim.save_json(args.save_sim)
    else:
        sim = _load(args.sim, args, "sim")
    result = validate(real, sim, cfg)
    calibration = _calibration_parameters(args.twin) if args.twin is not None else None
    paths = write_outputs(
        result, args.out, png=not args.no_png, extra={"wall_time_s": time.monotonic() - t0}, calibration=calibration
    )
    print(result.summary())
    print(f"wrote {', '.join(str(p) for p in paths.values())} ({time.monotonic() - t0:.2f} s)")
    return 0 if result.passed else 1


@contextlib.contextmanager
def _twin_environment(path: Path | None) -> Iterator[None]:
    """``SIMTWIN_TWIN_OVERRIDES`` set for the simulator this command starts, restored afterwards."""
    if path is None:
        yield
        return
    before = os.environ.get(TWIN_ENV)
    os.environ[TWIN_ENV] = str(path.resolve())  # the simulator process reads it (sim/engine/twin_model.py)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(TWIN_ENV, None)
        else:
            os.environ[TWIN_ENV] = before


def _replayed_twin(args: argparse.Namespace) -> dict[str, Any] | None:
    """The twin parameters the replay's simulator ran with, when its robot is an SDF file we can read."""
    from pytest_simtwin.twin.robotfile import nominal_from_sdf, read_overrides, twin_from_sdf

    robot = args.robot or (_default_robot_sdf() if args.world is None else None)
    if robot is None or robot.suffix != ".sdf":
        return None
    try:
        params = twin_from_sdf(robot, nominal_from_sdf(robot))
        if args.twin is not None:
            params = read_overrides(args.twin, params)
    except ConfigError:
        return None  # not a DiffDrive SDF we can read: the metrics do without the lag
    return params.to_dict()


def _calibration_parameters(path: Path) -> dict[str, Any] | None:
    """The parameters table (nominal, fitted, 1-sigma, identified) of a `simtwin calibrate` overrides file."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the overrides YAML ({exc})") from None
    params = (doc.get("calibration") or {}).get("parameters") if isinstance(doc, dict) else None
    return dict(params) if isinstance(params, dict) else None


def _default_robot_sdf() -> Path:
    from importlib import resources

    return Path(str(resources.files("pytest_simtwin") / "sim" / "defaults" / "models" / "simtwin_bot" / "model.sdf"))


def cmd_calibrate(args: argparse.Namespace) -> int:
    from pytest_simtwin.twin.calibrate import calibrate, nominal_from_sdf, write_overrides, write_sdf_copy
    from pytest_simtwin.twin.model import DiffDriveParams
    from pytest_simtwin.twin.report import calibration_html
    from pytest_simtwin.twin.scoring import load_config

    t0 = time.monotonic()
    robot = args.robot or _default_robot_sdf()
    nominal = nominal_from_sdf(robot) if robot.is_file() else DiffDriveParams()
    changes = {k: v for k, v in (("wheel_radius", args.wheel_radius), ("wheel_separation", args.wheel_separation)) if v}
    nominal = nominal.with_(**changes)
    fit = tuple(f.strip() for f in args.fit.split(",") if f.strip()) if args.fit else None
    try:
        held_out = tuple(int(i) for i in args.held_out.split(",") if i.strip())
    except ValueError:
        raise ConfigError(f"--held-out expects segment indices like 1,3; found {args.held_out!r}") from None
    if args.segments < 2 or not held_out or any(not 0 <= i < args.segments for i in held_out):
        raise ConfigError(
            f"--held-out {args.held_out} must name some (not all) of the {args.segments} segments (0..{args.segments - 1})"
        )
    real = _load(args.real, args, "real")
    result = calibrate(real, nominal, fit, segments=args.segments, held_out=held_out, config=load_config(args.config))
    print(result.summary())
    if not result.accepted:
        why = result.message if not result.success else f"worse on held-out data: {', '.join(result.worse)}"
        print(f"calibration refused ({why}); no file written ({time.monotonic() - t0:.2f} s)")
        return 1
    write_overrides(result, args.out, source=str(args.real))
    print(f"wrote {args.out} (SIMTWIN_TWIN_OVERRIDES={args.out} applies it to every simulator run)")
    page = args.out.with_suffix(".html")
    page.write_text(calibration_html(result, str(args.real)))
    print(f"wrote {page}")
    if args.sdf_out:
        if not robot.is_file():
            raise ConfigError(f"--sdf-out needs a robot SDF to copy; {robot} does not exist")
        write_sdf_copy(robot, args.sdf_out, result)
        print(f"wrote {args.sdf_out} (use it with --robot / --simtwin-robot)")
    print(f"calibrate took {time.monotonic() - t0:.2f} s")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from pytest_simtwin.twin.loaders import load_trajectory
    from pytest_simtwin.twin.synth import SynthParams, scenario_trajectory, synthesize

    if (args.sim is None) == (args.scenario is None):
        raise ConfigError("simtwin synth: give either a simulated run SIM or --scenario SECONDS")
    if args.scenario is not None:
        plan = scenario_trajectory(args.scenario, seed=args.seed)
        args.out = args.output.parent
        sim = run_replay(plan, args, _progress(args, "scenario"), joints=True)
        sim.source = f"simtwin-sim scenario {args.scenario:g} s (seed {args.seed})"
        if args.scenario_output:
            sim.save_json(args.scenario_output)
            print(f"wrote {args.scenario_output} ({len(sim)} odometry samples)")
    else:
        sim = load_trajectory(args.sim, topics=_topics(args), time_source=args.time_source)
    params = SynthParams(
        position_noise=args.position_noise,
        heading_noise=args.heading_noise,
        velocity_noise=args.velocity_noise,
        wheel_radius_scale=args.radius_scale,
        wheel_separation_scale=args.separation_scale,
        latency=args.latency,
        time_constant=args.lag,
        time_constant_angular=args.lag_angular,
        yaw_rate_bias=args.yaw_bias,
        slip_fraction=args.slip,
        rate=args.rate,
        time_offset=args.time_offset,
        seed=args.seed,
    )
    real = synthesize(sim, params)
    real.save_json(args.output)
    print(f"wrote {args.output} ({len(real)} samples, {real.duration:.1f} s)")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from pytest_simtwin.twin.record import record

    bag = record(
        args.output,
        domain=args.domain,
        topics=_topics(args),
        duration=args.duration,
        cmd_vel=not args.no_cmd_vel,
        scan_topic=args.scan_topic if args.scan else None,
        wait=args.wait,
    )
    if args.json:
        from pytest_simtwin.twin.loaders import load_trajectory

        try:
            traj = load_trajectory(bag, topics=_topics(args), time_source=args.time_source)
        except DataError as exc:
            raise DataError(f"recorded {bag}, but cannot export it to JSON: {exc}") from None
        traj.save_json(args.json)
        print(f"wrote {args.json} ({len(traj)} odometry samples)")
    return 0
