"""The plugin's own steps between tests and a simulator, one by one, in a warm worker process.

What the ``sim`` / ``robot`` fixtures do around every test, measured where it happens (a
``SimSession`` as an xdist worker holds it, rclpy imported, fork server warm), median of N rounds:

* **start -> ready**: ``launch`` + ``await_ready`` (simulator forked, first ground truth received,
  control services answered);
* **new subscriber, playing / paused**: a topic subscribed for the first time -> its first message
  (a helper's first wait on a topic, e.g. the robot fixture's /odom);
* **reset + health check**: ``begin_test`` of the next test (reset, clock advancing, publishing);
* **stop**: ``stop_simulator`` of a paused simulator (what every session's teardown waits for).

Each is compared with the same step measured before the issue-19 changes of 2026-12-04 (commit
3e87ebe, same machine, quiet): before / now, 1.0 = unchanged, above = faster.

    .venv/bin/python benchmarks/bench_fixture_path.py [--quick] [--rounds 15] [--json out.json]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Ratio, arg_parser, emit, fmt_stats, progress, settings, stats

#: Medians of 15 rounds of this script with the package at commit 3e87ebe (before), 2026-12-04 04:39 UTC,
#: load average 0.6 on the 2 cores (p90: 0.320, 0.068, 0.406, 0.023, 0.116 s).
BEFORE_S = {
    "ready": 0.219,
    "join_playing": 0.042,
    "join_paused": 0.306,
    "begin_test": 0.017,
    "stop": 0.112,
}
LABELS = {
    "ready": "simulator start -> ready (launch + await_ready)",
    "join_playing": "new subscriber -> first message, playing simulator",
    "join_paused": "new subscriber -> first message, paused simulator",
    "begin_test": "next test's reset + health check (begin_test)",
    "stop": "stop of a paused simulator (session teardown)",
}


def first_message(ros: Any, topic: str, msg_type: type) -> float:
    """Seconds from subscribing ``topic`` (new to this session) to its first message."""
    t0 = time.monotonic()
    buf = ros.subscribe(topic, msg_type)
    ros.wait_for_message(topic, msg_type, timeout=10.0, since=t0)
    assert buf.count > 0
    return time.monotonic() - t0


def one_round(tmp: Path) -> dict[str, float]:
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import JointState

    from pytest_simtwin.backends.base import SimConfig
    from pytest_simtwin.control import protocol
    from pytest_simtwin.runtime.session import SimSession, WorkerInfo

    cfg = SimConfig(rtf=1.0, start_timeout=60.0)
    out: dict[str, float] = {}
    with SimSession(settings("embedded", cfg, tmp), WorkerInfo("bench", 5, 8)) as session:
        ros = session.ros_session  # rclpy, context and node up: a worker's state before its first simulator
        t0 = time.monotonic()
        session.launch(cfg)
        session.await_ready()
        out["ready"] = time.monotonic() - t0
        out["join_playing"] = first_message(ros, protocol.JOINT_STATES, JointState)
        control = session.control
        control.pause()
        out["join_paused"] = first_message(ros, protocol.ODOM, Odometry)
        control.play()
        t0 = time.monotonic()
        session.begin_test(cfg, "test", scope="bench")
        out["begin_test"] = time.monotonic() - t0
        session.end_test()  # paused while idle, as between tests
        t0 = time.monotonic()
        session.stop_simulator()
        out["stop"] = time.monotonic() - t0
    return out


def main(argv: list[str] | None = None) -> int:
    ap = arg_parser(__doc__)
    ap.add_argument("--rounds", type=int, help="rounds (default 15, quick 3); the first is a warm-up")
    args = ap.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 15)
    samples: dict[str, list[float]] = {k: [] for k in LABELS}
    with tempfile.TemporaryDirectory(prefix="simtwin-bench-path-") as tmp:
        for i in range(rounds + 1):
            r = one_round(Path(tmp) / f"r{i}")
            if i == 0:
                continue  # warm-up: the fork server's first fork, the first message classes
            for k, v in r.items():
                samples[k].append(v)
            progress(f"round {i}/{rounds}: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in r.items()))
    results = []
    for key, label in LABELS.items():
        s = stats(samples[key])
        before = BEFORE_S[key]
        results.append(
            Ratio(
                f"path_{key}",
                f"{label}: before / now",
                before / s["median"],
                1.0,
                detail=f"now {fmt_stats(s)}; before {before * 1000:.0f} ms (commit 3e87ebe)",
                numbers={"now": s, "before_s": before},
            )
        )
    emit(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
