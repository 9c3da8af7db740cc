"""``simtwin pool N``: N ready, isolated simulators until Ctrl-C; ``simtwin probe``: a readiness probe."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import Any

from pytest_simtwin.ros.domains import DEFAULT_DOMAIN_RANGE


def register(sub: Any) -> None:
    pool = sub.add_parser(
        "pool",
        help="start N isolated simulators and keep them running until Ctrl-C",
        description=(
            "Start N simulators, each on its own leased ROS_DOMAIN_ID and GZ_PARTITION, print a line per "
            "simulator as it becomes ready (first odometry message), keep them running until Ctrl-C/SIGTERM "
            "(or --duration), then stop them all. Point your own processes at a simulator with "
            "ROS_DOMAIN_ID=<domain> and the Fast DDS profile printed with --json."
        ),
    )
    pool.add_argument("n", type=int, help="number of simulators")
    pool.add_argument("--world", help="SDF world file (default: the built-in arena)")
    pool.add_argument("--robot", help="robot SDF/URDF file (default: the world's or the built-in robot)")
    pool.add_argument("--spawn-name", help="name of the --robot robot in every simulator (ros_gz_sim create -name)")
    pool.add_argument("--spawn-pose", help="where it starts: 'X Y Z', 'X Y Z YAW' or 'X Y Z ROLL PITCH YAW' (m, rad)")
    pool.add_argument("--backend", default="embedded", choices=("embedded", "process", "docker"))
    pool.add_argument("--rtf", type=float, default=1.0, help="real-time factor (0 = as fast as possible)")
    pool.add_argument("--seed", type=int, default=0, help="seed of the first simulator (simulator i gets seed+i)")
    pool.add_argument("--lockstep", action="store_true", help="time advances only on step requests")
    pool.add_argument("--domain-range", default=DEFAULT_DOMAIN_RANGE, help="ROS_DOMAIN_IDs to lease from")
    pool.add_argument("--timeout", type=float, default=60.0, help="seconds each simulator may take to be ready")
    pool.add_argument("--image", help="docker backend: simulator image")
    pool.add_argument("--command", dest="sim_command", help="process backend: command template")  # not `command`: the sub-command's name
    pool.add_argument("--duration", type=float, help="stop after this many seconds instead of waiting for Ctrl-C")
    pool.add_argument("--json", action="store_true", help="print one JSON document (for scripts) instead of a table")
    pool.set_defaults(func=run_pool)

    probe = sub.add_parser(
        "probe",
        help="exit 0 when a message arrives on a topic (a readiness probe, e.g. for Kubernetes)",
        description="Wait for one message on TOPIC on $ROS_DOMAIN_ID; exit 0 if it came, 1 otherwise.",
    )
    probe.add_argument("--topic", default="/odom")
    probe.add_argument("--type", default="nav_msgs/msg/Odometry", help="message type, package/msg/Type")
    probe.add_argument("--timeout", type=float, default=5.0)
    probe.add_argument("--domain", type=int, help="ROS_DOMAIN_ID (default: from the environment, else 0)")
    probe.set_defaults(func=run_probe)

    env = sub.add_parser(
        "env",
        help="print the shell exports that put a process on a simulator's domain (fast discovery included)",
        description=(
            "Print `export` lines for ROS_DOMAIN_ID, GZ_PARTITION, RMW_IMPLEMENTATION, the packaged Fast DDS "
            'profile and the discovery range, e.g. `eval "$(simtwin env --domain 12)"`. Every process of a '
            "domain should use them: discovery is only fast when all participants share the profile."
        ),
    )
    env.add_argument("--domain", type=int, required=True, help="ROS_DOMAIN_ID (0-101 or 215-232)")
    env.add_argument("--partition", help="GZ_PARTITION (default simtwin_<domain>)")
    env.set_defaults(func=run_env)


def run_pool(args: argparse.Namespace) -> int:
    from pytest_simtwin.batch.pool import PoolMember, SimPool

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    out = sys.stdout

    def on_ready(member: PoolMember, ready: int) -> None:
        if not args.json:
            out.write(
                f"[{ready:>{len(str(args.n))}}/{args.n}] simulator {member.index:<3} domain {member.domain_id:<4} "
                f"pid {member.pid!s:<8} ready after {member.ready_after:5.2f} s  log {member.log_path()}\n"
            )
            out.flush()

    if not args.json:
        out.write(f"starting {args.n} simulator(s) on the {args.backend} backend ...\n")
        out.flush()
    pool = SimPool(
        args.n,
        world=args.world,
        robot=args.robot,
        spawn_name=args.spawn_name,
        spawn_pose=args.spawn_pose,
        backend=args.backend,
        rtf=args.rtf,
        seed=args.seed,
        lockstep=args.lockstep,
        domain_range=args.domain_range,
        timeout=args.timeout,
        image=args.image,
        command=args.sim_command,
        on_ready=on_ready,
    )
    with pool:
        if args.json:
            from pytest_simtwin.ros.environment import default_profile_path

            doc = {"ready_after_s": round(pool.ready_after, 3), "fastdds_profile": str(default_profile_path())}
            doc["simulators"] = pool.describe()
            out.write(json.dumps(doc) + "\n")
        else:
            out.write(f"all {args.n} ready after {pool.ready_after:.2f} s; Ctrl-C stops them\n")
        out.flush()
        deadline = time.monotonic() + args.duration if args.duration is not None else None
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            dead = pool.check()
            if dead:
                print(f"simtwin pool: {', '.join(dead)} exited; stopping the pool", file=sys.stderr)
                return 1
            stop.wait(0.5)
    if not args.json:
        out.write("stopped\n")
    return 0


def run_probe(args: argparse.Namespace) -> int:
    import os

    from pytest_simtwin.errors import WaitTimeout
    from pytest_simtwin.ros.environment import ros_environment
    from pytest_simtwin.ros.msgtypes import resolve_msg_type
    from pytest_simtwin.ros.session import RosSession

    domain = args.domain if args.domain is not None else int(os.environ.get("ROS_DOMAIN_ID", "0"))
    env = ros_environment(domain, os.environ.get("GZ_PARTITION", f"simtwin_probe_{domain}"))
    msg_type = resolve_msg_type(args.type)
    with RosSession(domain, env, name="simtwin_probe") as ros:
        try:
            ros.wait_for_message(args.topic, msg_type, timeout=args.timeout)
        except WaitTimeout as exc:
            print(f"simtwin probe: not ready: {exc}", file=sys.stderr)
            return 1
    print(f"simtwin probe: {args.topic} is publishing on domain {domain}")
    return 0


def run_env(args: argparse.Namespace) -> int:
    import shlex

    from pytest_simtwin.errors import ConfigError
    from pytest_simtwin.ros.domains import MAX_DOMAIN_ID
    from pytest_simtwin.ros.environment import ROS_KEYS, ros_environment

    if not 0 <= args.domain <= MAX_DOMAIN_ID:
        raise ConfigError(f"--domain: expected a ROS_DOMAIN_ID between 0 and {MAX_DOMAIN_ID}, found {args.domain}")
    env = ros_environment(args.domain, args.partition or f"simtwin_{args.domain}", base={})
    for key in ROS_KEYS:
        if key in env:
            print(f"export {key}={shlex.quote(env[key])}")
        else:
            print(f"unset {key}")
    return 0
