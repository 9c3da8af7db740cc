"""``simtwin image ...``: build the simulator images, remove leftover containers, write a Gazebo bridge file.

simtwin image build [--base] [--base-image IMG] [--tag TAG] [--if-stale]
simtwin image reap [--all]
simtwin image bridge --robot-topics odom,cmd_vel,scan --world arena -o bridge.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("image", help="build the simulator images, reap leftover containers")
    sub = parser.add_subparsers(dest="image_command", metavar="ACTION", required=True)

    build = sub.add_parser("build", help="build the base (debootstrap + docker import) and simulator images")
    build.add_argument(
        "--base",
        action="store_true",
        help="(re)build the base image with debootstrap + docker import first (needs root)",
    )
    build.add_argument(
        "--base-image", metavar="IMG", help="build on this Debian/Ubuntu image instead of our debootstrap'ed one"
    )
    build.add_argument(
        "--base-python",
        metavar="X.Y",
        help="Python version of --base-image; when it differs from the host's, pip uses the index",
    )
    build.add_argument("--suite", default="bookworm", help="Debian suite for --base (default: bookworm)")
    build.add_argument("--mirror", default="http://deb.debian.org/debian", help="Debian mirror for --base")
    build.add_argument("--tag", help="simulator image tag (default: pytest-simtwin/sim:<version>)")
    build.add_argument("--source", help="what to pip-wheel into the image (default: this source checkout)")
    build.add_argument(
        "--if-stale",
        action="store_true",
        help="skip images that exist and (simulator) were built from the current sources",
    )
    build.set_defaults(func=_build)

    reap = sub.add_parser("reap", help="remove simtwin containers whose pytest process is gone")
    reap.add_argument("--all", action="store_true", help="remove every simtwin container, even live ones")
    reap.set_defaults(func=_reap)

    bridge = sub.add_parser("bridge", help="write a ros_gz_bridge YAML for a robot's topics")
    bridge.add_argument("--world", required=True, help="Gazebo world name (for the clock and joint state topics)")
    bridge.add_argument("--model", default="robot", help="model name in the world (default: robot)")
    bridge.add_argument(
        "--topics",
        default="cmd_vel,odom,scan,joint_states,clock",
        help="comma-separated subset of cmd_vel,odom,scan,joint_states,clock",
    )
    bridge.add_argument("--cmd-vel-type", choices=("twist", "twist_stamped"), default="twist")
    bridge.add_argument("-o", "--output", type=Path, help="output file (default: stdout)")
    bridge.set_defaults(func=_bridge)


def _build(args: argparse.Namespace) -> int:
    from pytest_simtwin.backends.containers import images

    base = args.base_image
    if base is None:
        base = images.default_base_image(args.suite)
        exists = images.image_exists(base)
        if (args.base and not (args.if_stale and exists)) or not exists:
            images.build_base_image(base, suite=args.suite, mirror=args.mirror)
        elif args.base:
            print(f"base image {base} exists; skipped", file=sys.stderr)
    tag = args.tag or images.default_sim_image()
    if args.if_stale and images.image_is_current(tag):
        print(f"simulator image {tag} is current; skipped", file=sys.stderr)
    else:
        images.build_sim_image(tag, base_image=base, source=args.source, base_python=args.base_python)
    print(tag)
    return 0


def _reap(args: argparse.Namespace) -> int:
    from pytest_simtwin.backends.containers.reaper import main

    return main(["--all"] if args.all else [])


def _bridge(args: argparse.Namespace) -> int:
    from pytest_simtwin.backends.gazebo import RobotTopics, bridge_yaml

    topics = RobotTopics.for_model(
        args.world,
        args.model,
        cmd_vel_type=args.cmd_vel_type,
        only=tuple(t.strip() for t in args.topics.split(",") if t.strip()),
    )
    text = bridge_yaml(topics)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
    return 0
