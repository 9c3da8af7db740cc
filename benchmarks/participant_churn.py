"""Participant churn: do processes that create and destroy ROS nodes on one domain crash?

Fast DDS 3.2 deletes a participant's TypeLookup reply writer before it stops the thread that
answers TypeLookup requests, so a participant destroyed while it answers a peer's request dies
with SIGSEGV (in ``WriterHistory::create_change``). Tests hit it when users' own rclpy nodes come
and go on a domain other nodes use. The packaged profile turns type propagation to
``registration_only`` (no lookups). This script runs the same churn with the packaged profile and
with a copy that leaves type propagation at Fast DDS's default, and prints the crashes of each:

    .venv/bin/python benchmarks/participant_churn.py [--procs 3] [--runs 100] [--json out.json]

Each run is ``--procs`` concurrent Python processes on one leased domain, each creating a node with
a publisher and a subscription, waiting for its own message, destroying it (3 times).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYTHON, Ratio, arg_parser, emit, progress

CHURN = """
import time
import rclpy
from std_msgs.msg import String

for i in range(3):
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node(f"churn_{i}", context=ctx)
    got = []
    node.create_subscription(String, "/churn", got.append, 10)
    pub = node.create_publisher(String, "/churn", 10)
    ex = rclpy.executors.SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    deadline = time.monotonic() + 15
    while not got and time.monotonic() < deadline:
        pub.publish(String(data="x"))
        ex.spin_once(timeout_sec=0.05)
    assert got, "no message from itself"
    ex.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=ctx)
"""

PROPAGATION = re.compile(r"\s*<propertiesPolicy>.*?</propertiesPolicy>", re.S)


def churn(profile: Path, procs: int, runs: int) -> tuple[int, int]:
    """(crashed processes, processes) over ``runs`` rounds of ``procs`` concurrent churners."""
    from pytest_simtwin.ros.domains import DEFAULT_DOMAIN_RANGE, acquire_domain, parse_domain_range
    from pytest_simtwin.ros.environment import ros_environment

    crashed = total = 0
    ids = parse_domain_range(DEFAULT_DOMAIN_RANGE)
    with acquire_domain(ids, owner="participant_churn", prefer=ids[len(ids) // 2]) as lease:
        env = {**ros_environment(lease.domain_id, lease.partition), "FASTDDS_DEFAULT_PROFILES_FILE": str(profile)}
        for _ in range(runs):
            children = [
                subprocess.Popen([PYTHON, "-c", CHURN], env=env, stderr=subprocess.DEVNULL) for _ in range(procs)
            ]
            for child in children:
                code = child.wait(timeout=120)
                total += 1
                crashed += code == -signal.SIGSEGV
    return crashed, total


def main() -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--procs", type=int, default=3, help="concurrent processes per round")
    parser.add_argument("--runs", type=int, default=100, help="rounds per profile")
    args = parser.parse_args()
    if args.quick:
        args.runs = 5
    from pytest_simtwin.ros.environment import default_profile_path

    packaged = default_profile_path()
    text = packaged.read_text()
    if "fastdds.type_propagation" not in text:
        print("the packaged profile does not set fastdds.type_propagation", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="simtwin-churn-") as tmp:
        default = Path(tmp) / "profile_default_type_propagation.xml"
        default.write_text(PROPAGATION.sub("", text, count=1))
        progress(f"churn with Fast DDS's default type propagation ({args.runs} x {args.procs} processes)")
        bad, n_bad = churn(default, args.procs, args.runs)
        progress(f"churn with the packaged profile ({args.runs} x {args.procs} processes)")
        good, n_good = churn(packaged, args.procs, args.runs)
    detail = (
        f"SIGSEGV: {bad} of {n_bad} processes with type lookups (Fast DDS default), "
        f"{good} of {n_good} with the packaged profile"
    )
    result = Ratio(
        key="participant_churn",
        label="Crashed node-churn processes, packaged profile",
        value=float(good),
        target=0.0,
        higher_is_better=False,
        detail=detail,
        numbers={"default_crashed": bad, "default_total": n_bad, "packaged_crashed": good, "packaged_total": n_good},
    )
    emit([result], args.json)
    return 0 if good == 0 else 1


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.exit(main())
