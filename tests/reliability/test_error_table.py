"""Bad inputs and the exact error a user sees: every row of docs/errors.md is asserted here.

Each case runs the real thing (a pytest run with the plugin, or the ``simtwin`` CLI) in a temp
project and checks that every expected line appears in its output. ``<...>`` in an expected line
stands for a variable part (a path, a pid, a domain id); everything else must match exactly.
docs/errors.md is rendered from this table; ``test_docs_errors_md_is_current`` fails when it is
stale. Regenerate it with:

    .venv/bin/python tests/reliability/test_error_table.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "errors.md"

MALFORMED_SDF = """<?xml version="1.0"?>
<sdf version="1.9">
  <world name="w">
    <model name="m">
      <link name="l">
    </model>
  </world>
</sdf>
"""

MISSING_MESH = """<?xml version="1.0"?>
<sdf version="1.9">
  <world name="w">
    <model name="post"><static>true</static><link name="l"><collision name="c"><geometry>
      <mesh><uri>meshes/post.stl</uri></mesh></geometry></collision></link></model>
  </world>
</sdf>
"""

SIM_TEST = "def test_uses_the_simulator(sim):\n    assert sim.alive\n"
METRIC_TEST = "def test_drive(record_metric):\n    record_metric('position_error', 0.01, unit='m', tolerance=0.05)\n"
WRONG_TYPE_TEST = """
def test_publishes_twist_stamped(robot, ros_node):
    # a Jazzy-style node under test publishes TwistStamped; the simulator was told to take Twist only
    ros_node.publish("/cmd_vel", "geometry_msgs/msg/TwistStamped", {"twist": {"linear": {"x": 0.3}}}, timeout=5.0)
"""
START_LINE = (
    "SimulatorStartError: stopped waiting for the first nav_msgs/msg/Odometry on /simtwin/ground_truth from the "
    "embedded simulator (pid <pid>) on ROS_DOMAIN_ID <id>: the embedded simulator (pid <pid>) on ROS_DOMAIN_ID <id> "
    "exited with code 2. Expected the simulator to publish /simtwin/ground_truth within 30.0 s; check the world/robot "
    "files and the log below, or raise --simtwin-timeout."
)


@dataclass
class Case:
    """One bad input: what the user did, how we reproduce it, what they must see."""

    id: str
    title: str  # the bad input, as a user would describe it
    how: str  # the command line or action (for the doc)
    expected: list[str]  # lines that must appear (``<...>`` = variable part)
    outcome: str  # what happens to the run (for the doc), also asserted on the output
    files: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    cli: list[str] | None = None  # run this `simtwin` command instead of pytest
    env: dict[str, str] = field(default_factory=dict)
    needs: Callable[[], str | None] | None = None  # a reason to skip (e.g. no docker daemon)


def _no_docker_daemon() -> str | None:
    try:
        from pytest_simtwin.backends.containers.client import connect

        connect(timeout=5)
    except Exception as exc:  # ImportError, BackendError
        return f"needs a docker daemon: {str(exc).splitlines()[0][:120]}"
    return None


def _no_docker_sdk() -> str | None:
    try:
        import docker  # noqa: F401
    except ImportError:
        return "needs the docker SDK (pip install 'pytest-simtwin[docker]')"
    return None


CASES = [
    Case(
        "malformed_sdf",
        "Malformed SDF world",
        "`pytest --simtwin-world bad.sdf` (a `</model>` closes an open `<link>`)",
        [
            START_LINE,
            "simtwin-sim: error: <dir>/bad.sdf:6: malformed XML (mismatched tag at column 6); expected a well-formed "
            "SDF/URDF document. Fix the file (e.g. check it with `xmllint --noout <dir>/bad.sdf`).",
        ],
        "the test errors (not fails) before its body runs",
        files={"bad.sdf": MALFORMED_SDF, "test_a.py": SIM_TEST},
        args=["--simtwin-world", "bad.sdf"],
    ),
    Case(
        "missing_mesh",
        "Mesh file missing",
        "`pytest --simtwin-world w.sdf` whose `<mesh><uri>meshes/post.stl</uri>` does not exist",
        [
            START_LINE,
            "simtwin-sim: error: <dir>/w.sdf:5: 'meshes/post.stl' does not exist (looked for "
            "<dir>/meshes/post.stl); fix the path or URI.",
        ],
        "the test errors before its body runs",
        files={"w.sdf": MISSING_MESH, "test_a.py": SIM_TEST},
        args=["--simtwin-world", "w.sdf"],
    ),
    Case(
        "wrong_cmd_vel_type",
        "Wrong message type on /cmd_vel",
        "a node publishes `geometry_msgs/msg/TwistStamped` on /cmd_vel while the simulator takes only `Twist` "
        "(`--simtwin-cmd-vel-type twist`; unset, it takes both)",
        [
            "WaitTimeout: timed out after 5.00 s waiting for 1 subscriber(s) of /cmd_vel on ROS_DOMAIN_ID <id>; 0 matched",
            "simtwin-sim ERROR node /<node> publishes geometry_msgs/msg/TwistStamped on /cmd_vel, but the simulator "
            "subscribes geometry_msgs/msg/Twist (--cmd-vel-type twist); its commands are ignored. To fix, start the "
            "simulator with --cmd-vel-type any or twist_stamped (pytest: leave --simtwin-cmd-vel-type unset, or "
            "twist_stamped).",
        ],
        "the test fails; the simulator's log tail in the failure names the publisher and the fix",
        files={"test_a.py": WRONG_TYPE_TEST},
        args=["--simtwin-cmd-vel-type", "twist"],
    ),
    Case(
        "unknown_backend",
        "Unknown backend",
        "`pytest --simtwin-backend gazebo`",
        [
            "ERROR: argument --simtwin-backend: invalid choice: 'gazebo' (choose from 'embedded', 'process', "
            "'attach', 'docker')"
        ],
        "usage error (exit 4) before any simulator starts",
        files={"test_a.py": SIM_TEST},
        args=["--simtwin-backend", "gazebo"],
    ),
    Case(
        "docker_daemon_down",
        "Docker daemon down",
        "`DOCKER_HOST=unix:///…/dead.sock pytest --simtwin-backend docker`",
        [
            "BackendError: cannot reach a Docker daemon at unix://<dir>/dead.sock (<reason>). Expected a running "
            "dockerd for --simtwin-backend docker. Start it (sudo systemctl start docker, or scripts/docker-setup.sh "
            "which starts dockerd and builds the images), point DOCKER_HOST at it, or use --simtwin-backend embedded."
        ],
        "the test errors at setup",
        files={"test_a.py": SIM_TEST},
        args=["--simtwin-backend", "docker"],
        env={"DOCKER_HOST": "unix://{tmp}/dead.sock"},
        needs=_no_docker_sdk,
    ),
    Case(
        "missing_image",
        "Docker image missing",
        "`pytest --simtwin-backend docker --simtwin-image pytest-simtwin/no-such-image:0`",
        [
            "BackendError: docker image 'pytest-simtwin/no-such-image:0' not found on the daemon at <daemon>. "
            "Expected the simulator image built locally (no registry is used). Build it with: simtwin image build "
            "--base --tag pytest-simtwin/no-such-image:0   (or: bash scripts/docker-setup.sh in a source checkout)"
        ],
        "the test errors at setup",
        files={"test_a.py": SIM_TEST},
        args=["--simtwin-backend", "docker", "--simtwin-image", "pytest-simtwin/no-such-image:0"],
        needs=_no_docker_daemon,
    ),
    Case(
        "corrupt_baseline",
        "Corrupt baseline file",
        "a baseline JSON cut short (e.g. a bad merge), then `pytest --simtwin-baseline-dir bl`",
        [
            "baseline errors (1 tests):",
            "test_a.py::test_drive: baseline <dir>/bl/test_a.py--test_drive-<hash>.json is not valid JSON "
            "(<reason>); fix it or re-create it with --simtwin-update-baseline",
        ],
        "the test passes; the baseline verdict is `error` and the summary names the file",
        files={"test_a.py": METRIC_TEST, "bl/{baseline}": '{"format": "simtwin-baseline",\n'},
        args=["--simtwin-baseline-dir", "bl"],
    ),
    Case(
        "unreadable_bag",
        "Unreadable bag",
        "`simtwin validate bad.mcap --replay` on a file that is not a bag",
        [
            "simtwin validate: error: bad.mcap: cannot read this recording (AnyReaderError: File magic is invalid.). "
            "Expected a readable rosbag2 (MCAP or sqlite3) or ROS 1 bag; it may be truncated or still being written "
            "(a recorder killed before closing the bag leaves no index: re-index it with `ros2 bag reindex`)."
        ],
        "exit code 2",
        files={"bad.mcap": "this is not a bag\n"},
        cli=["validate", "bad.mcap", "--replay"],
    ),
    Case(
        "negative_rtf",
        "Bad option value: negative real-time factor",
        "`pytest --simtwin-rtf -1`",
        ["ERROR: --simtwin-rtf: expected a real-time factor >= 0 (0 = as fast as possible), found -1.0"],
        "usage error (exit 4)",
        files={"test_a.py": SIM_TEST},
        args=["--simtwin-rtf=-1"],
    ),
    Case(
        "bad_domain_range",
        "Bad option value: domain range outside the safe ids",
        "`pytest --simtwin-domain-range 5-300`",
        [
            "ERROR: --simtwin-domain-range: invalid ROS domain range '5-300' in '5-300': ids must satisfy "
            "0 <= low <= high <= 232 (higher ids collide with ephemeral UDP ports)"
        ],
        "usage error (exit 4)",
        files={"test_a.py": SIM_TEST},
        args=["--simtwin-domain-range", "5-300"],
    ),
    Case(
        "missing_world",
        "Bad option value: world file does not exist",
        "`pytest --simtwin-world /nope/world.sdf`",
        [
            "ERROR: --simtwin-world: the world file /nope/world.sdf does not exist (no such file). Expected an "
            "SDF/URDF/MJCF file; give an absolute path or one relative to the current directory / ini file."
        ],
        "usage error (exit 4)",
        files={"test_a.py": SIM_TEST},
        args=["--simtwin-world", "/nope/world.sdf"],
    ),
    Case(
        "bad_reset",
        "Bad option value: unknown reset policy",
        "`pytest --simtwin-reset sometimes`",
        ["error: argument --simtwin-reset: invalid choice: 'sometimes' (choose from 'test', 'module', 'never')"],
        "usage error (exit 4)",
        files={"test_a.py": SIM_TEST},
        args=["--simtwin-reset", "sometimes"],
    ),
    Case(
        "bad_timeout",
        "Bad option value: timeout not a number",
        "`pytest --simtwin-timeout abc`",
        ["ERROR: --simtwin-timeout: expected a number, found 'abc'"],
        "usage error (exit 4)",
        files={"test_a.py": SIM_TEST},
        args=["--simtwin-timeout", "abc"],
    ),
    Case(
        "unusable_state_dir",
        "State directory not usable",
        "`SIMTWIN_STATE_DIR=file/x pytest` where `file` is a file",
        [
            "DomainError: cannot keep ROS domain leases in <dir>/file/x ([Errno 20] Not a directory: '<dir>/file/x'): "
            "expected a writable directory; point SIMTWIN_STATE_DIR at one, or unset it to use <dir>",
        ],
        "tests that use the simulator error; the others run as without the plugin",
        files={"file": "", "test_a.py": SIM_TEST + "\n\ndef test_plain():\n    assert True\n"},
        env={"SIMTWIN_STATE_DIR": "{tmp}/file/x"},
    ),
]

OUTCOME_CHECKS = {  # outcome text in the doc -> what the run's output must show
    "malformed_sdf": r"\b1 error\b",
    "missing_mesh": r"\b1 error\b",
    "wrong_cmd_vel_type": r"\b1 failed\b",
    "docker_daemon_down": r"\b1 error\b",
    "missing_image": r"\b1 error\b",
    "corrupt_baseline": r"\b1 passed\b",
    "unusable_state_dir": r"\b1 passed, 1 error\b",
}


def pattern(line: str) -> re.Pattern[str]:
    """An expected line as a regex: literal text, ``<...>`` matches any non-empty text on one line."""
    parts = re.split(r"<[a-z ]+>", line)
    return re.compile(".+?".join(re.escape(p) for p in parts))


def clean(output: str) -> str:
    """pytest's failure text without its ``E   `` prefixes and the log tail's indentation."""
    return "\n".join(re.sub(r"^E\s+", "", ln).strip() for ln in output.splitlines())


def run_case(case: Case, tmp: Path) -> tuple[int, str]:
    from pytest_simtwin.results.baselines import baseline_filename

    for name, text in case.files.items():
        name = name.replace("{baseline}", baseline_filename("test_a.py::test_drive"))
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    env = {**os.environ, **{k: v.replace("{tmp}", str(tmp)) for k, v in case.env.items()}}
    if case.cli is not None:
        argv = [sys.executable, "-m", "pytest_simtwin.cli", *case.cli]
    else:
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", *case.args]
        (tmp / "pytest.ini").write_text("[pytest]\n")
    res = subprocess.run(argv, cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
    return res.returncode, clean(res.stdout + res.stderr)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_the_documented_message(case: Case, tmp_path: Path) -> None:
    reason = case.needs() if case.needs else None
    if reason:
        pytest.skip(reason)
    code, output = run_case(case, tmp_path)
    for line in case.expected:
        assert pattern(line).search(output), f"expected line not in the output:\n  {line}\n--- output ---\n{output}"
    if "usage error" in case.outcome:
        assert code == 4, output
    elif case.cli is not None:
        assert code == 2, output
    check = OUTCOME_CHECKS.get(case.id)
    if check:
        assert re.search(check, output), f"expected {check!r} in the summary:\n{output[-2000:]}"
    assert "INTERNALERROR" not in output and "Traceback (most recent call last)" not in output.split("---")[0]


def render() -> str:
    lines = [
        "# Bad inputs and the errors users see",
        "",
        "Generated from `tests/reliability/test_error_table.py`, which runs each case for real and asserts",
        "every line below appears in the output (`<...>` marks a variable part: path, pid, domain id).",
        "Regenerate with `.venv/bin/python tests/reliability/test_error_table.py`; a stale file fails the suite.",
        "",
        "Every simulator error carries the tail of the simulator's log; errors of the simulation",
        "infrastructure make the test **error**, not fail. Usage errors stop pytest before anything starts.",
        "",
    ]
    for case in CASES:
        lines += [f"## {case.title}", "", f"* Input: {case.how}", f"* Result: {case.outcome}", "", "```"]
        lines += case.expected
        lines += ["```", ""]
    lines += [
        "## Domain range used up",
        "",
        "* Input: `pytest -n 2 --simtwin-domain-range N-N` (one id for two workers)",
        "* Result: the first worker's tests run; the second worker's tests error (asserted in",
        "  `tests/reliability/test_failure_modes.py::test_domain_range_used_up_errors_the_second_worker`)",
        "",
        "```",
        DOMAIN_ERROR_LINE,
        "```",
        "",
    ]
    return "\n".join(lines)


DOMAIN_ERROR_LINE = (
    "DomainError: no free ROS_DOMAIN_ID: all 1 domains of the configured range are leased (first holders: <holders>). "
    "Expected at least one free id for this worker. Use fewer xdist workers (-n), widen --simtwin-domain-range "
    "(safe ids: 1-101,215-232), or stop the other simtwin sessions on this host. Leases live in <dir>."
)


def test_docs_errors_md_is_current() -> None:
    assert DOC.exists() and DOC.read_text() == render(), (
        f"{DOC} is stale: regenerate it with `.venv/bin/python {Path(__file__).relative_to(ROOT)}`"
    )


if __name__ == "__main__":
    DOC.write_text(render())
    print(f"wrote {DOC}")
