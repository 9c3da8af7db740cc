"""--simtwin-spawn-name / --simtwin-spawn-pose (ini simtwin_spawn_*, marker spawn_name / spawn_pose): parsed
as `ros_gz_sim create` takes them, passed to every backend that runs our simulator, refused early where a
backend cannot place the robot. In-process pytester runs: nothing here starts ROS or a simulator (the
real-simulator run is tests/sim/test_spawn_plugin.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from pytest_simtwin.backends.base import SimConfig
from pytest_simtwin.backends.embedded import simulator_arguments
from pytest_simtwin.runtime import settings

ROBOT = "<sdf version='1.9'><model name='r'/></sdf>"

SHOW = """
from pytest_simtwin.plugin.hooks import settings_of

def test_show(pytestconfig):
    s = settings_of(pytestconfig).sim
    print("\\nSPAWN", s.spawn_name, ",".join(f"{v:g}" for v in s.spawn_pose or ()))
"""


def _spawn_line(result: pytest.RunResult) -> list[str]:
    line = next((line for line in result.outlines if line.startswith("SPAWN ")), None)
    assert line is not None, "\n".join(result.outlines + result.errlines)
    return line.split()[1:]


@pytest.mark.parametrize(
    ("pose", "expected"),
    [
        ("-2 -0.5 0.01", "-2,-0.5,0.01,0,0,0"),  # create -x -y -z
        ("-2,-0.5,0.01,1.57", "-2,-0.5,0.01,0,0,1.57"),  # ... -Y
        ("1 2 3 0.1 0.2 0.3", "1,2,3,0.1,0.2,0.3"),  # ... -R -P -Y
    ],
)
def test_spawn_options_take_the_forms_create_takes(pytester: pytest.Pytester, pose: str, expected: str) -> None:
    pytester.makefile(".sdf", robot=ROBOT)
    pytester.makepyfile(SHOW)
    result = pytester.runpytest(
        "-s", "-p", "no:cacheprovider", "--simtwin-robot=robot.sdf", "--simtwin-spawn-name=my_bot",
        f"--simtwin-spawn-pose={pose}",
    )  # fmt: skip
    assert _spawn_line(result) == ["my_bot", expected]


def test_ini_keys_and_the_command_line_wins(pytester: pytest.Pytester) -> None:
    pytester.makefile(".sdf", robot=ROBOT)
    pytester.makeini("[pytest]\nsimtwin_robot = robot.sdf\nsimtwin_spawn_name = ini_bot\nsimtwin_spawn_pose = 1 2 0.1\n")
    pytester.makepyfile(SHOW)
    assert _spawn_line(pytester.runpytest("-s", "-p", "no:cacheprovider")) == ["ini_bot", "1,2,0.1,0,0,0"]
    result = pytester.runpytest("-s", "-p", "no:cacheprovider", "--simtwin-spawn-pose=3 4 0.2 1")
    assert _spawn_line(result) == ["ini_bot", "3,4,0.2,0,0,1"]
    pytester.makeini("[pytest]\nsimtwin_spawn_pose = 1 2\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ini option simtwin_spawn_pose (" in result.stderr.str() and "found 2 number(s)" in result.stderr.str()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--simtwin-spawn-pose=1 2"], "--simtwin-spawn-pose: expected 3 numbers X Y Z, 4 X Y Z YAW or 6"),
        (["--simtwin-spawn-pose=1 2 3 4 5"], "found 5 number(s) in '1 2 3 4 5'"),
        (["--simtwin-spawn-pose=1 2 up"], "--simtwin-spawn-pose: expected 3 numbers X Y Z, 4 X Y Z YAW or 6 X Y Z "
                                          "ROLL PITCH YAW (m, rad), found '1 2 up' ('up' is not a number)"),
        (["--simtwin-spawn-pose=1 2 nan"], "--simtwin-spawn-pose: expected finite numbers"),
        (["--simtwin-robot=robot.sdf", "--simtwin-spawn-name=my bot"], "--simtwin-spawn-name: expected a model name"),
        (["--simtwin-spawn-name=my_bot"], "spawn-name 'my_bot' names the robot added with --simtwin-robot"),
        (["--simtwin-backend=attach", "--simtwin-attach-domain=5", "--simtwin-spawn-pose=0 0 0.1"],
         "spawn-pose given, but the attach backend cannot place the robot (it talks to a simulator that already "
         "runs, its robot already spawned)"),
        (["--simtwin-backend=process", "--simtwin-command=gz sim -s {world}", "--simtwin-spawn-pose=0 0 0.1"],
         "--simtwin-spawn-pose: the process backend runs --simtwin-command as given, and the template "
         "'gz sim -s {world}' uses none of {pitch}, {roll}, {x}, {y}, {yaw}, {z}"),
        (["--simtwin-robot=robot.sdf", "--simtwin-backend=process", "--simtwin-command=sim -x {x} {world}",
          "--simtwin-spawn-name=bot"], "--simtwin-spawn-name: the process backend runs --simtwin-command as given"),
    ],
)  # fmt: skip
def test_bad_spawn_values_are_usage_errors_naming_the_option(
    pytester: pytest.Pytester, args: list[str], expected: str
) -> None:
    pytester.makefile(".sdf", robot=ROBOT)
    pytester.makepyfile("def test_never(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert expected in result.stderr.str(), result.stderr.str()
    assert "test_never" not in result.stdout.str()


@pytest.mark.parametrize(
    ("marker", "args", "expected"),
    [
        ("simtwin(spawn_pose=(1, 2))", [], "test_m.py::test_marked: @pytest.mark.simtwin(spawn_pose=...): expected 3"),
        ("simtwin(spawn_pose='1 2 x')", [], "('x' is not a number)"),
        ("simtwin(spawn_pose=[1, 2, True])", [], "(True is not a number)"),
        ("simtwin(spawn_name='')", [], "@pytest.mark.simtwin(spawn_name=...): expected a model name"),
        ("simtwin(spawn_name='bot')", [], "test_m.py::test_marked: spawn-name 'bot' names the robot added with"),
        ("simtwin(spawn_pose=(0, 0, 0.1))", ["--simtwin-backend=attach", "--simtwin-attach-domain=5"],
         "test_m.py::test_marked: spawn-pose given, but the attach backend cannot place the robot"),
    ],
)  # fmt: skip
def test_bad_spawn_marker_is_a_usage_error_naming_the_test(
    pytester: pytest.Pytester, marker: str, args: list[str], expected: str
) -> None:
    pytester.makepyfile(
        test_m=f"import pytest\n\n@pytest.mark.{marker}\ndef test_marked():\n    pass\n\ndef test_other():\n    pass\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert expected in err, err


def test_marker_spawn_values_reach_the_test_config(pytester: pytest.Pytester) -> None:
    pytester.makefile(".sdf", robot=ROBOT)
    pytester.makepyfile(
        """
import pytest
from pytest_simtwin.plugin.hooks import settings_of
from pytest_simtwin.plugin.keys import OVERRIDES_KEY
from pytest_simtwin.runtime.settings import effective_config

@pytest.mark.simtwin(robot="robot.sdf", spawn_name="other", spawn_pose=[1, -1, 0.05, 3.14])
def test_marked(request, pytestconfig):
    sim, _ = effective_config(settings_of(pytestconfig), request.node.stash[OVERRIDES_KEY])
    assert sim.spawn_name == "other" and sim.spawn_pose == (1.0, -1.0, 0.05, 0.0, 0.0, 3.14)
    assert sim != settings_of(pytestconfig).sim  # a different config: the session restarts its simulator
"""
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_every_backend_running_our_simulator_gets_the_spawn_arguments(tmp_path: Path) -> None:
    from pytest_simtwin.backends.attach import AttachBackend
    from pytest_simtwin.backends.containers.docker import DockerBackend
    from pytest_simtwin.backends.embedded import EmbeddedBackend
    from pytest_simtwin.backends.process import ProcessBackend

    config = SimConfig(robot=tmp_path / "r.sdf", spawn_name="my_bot", spawn_pose=(-2.0, -0.5, 0.01, 0.0, 0.0, 0.3))
    argv = simulator_arguments(config, parent_pid=None)  # embedded (plain and fork server) and docker
    assert argv[argv.index("--robot-name") + 1] == "my_bot"
    assert "--robot-pose=-2.0,-0.5,0.01,0.0,0.0,0.3" in argv
    assert "--robot-name" not in simulator_arguments(SimConfig(), parent_pid=None)
    assert not any(a.startswith("--robot-pose") for a in simulator_arguments(SimConfig(), parent_pid=None))
    from pytest_simtwin.backends.containers import docker
    from pytest_simtwin.errors import BackendError

    in_container = cast(DockerBackend, SimpleNamespace(config=config.with_(world=tmp_path / "w.sdf"), image="img"))
    expected = simulator_arguments(in_container.config, parent_pid=None)
    assert "--robot-name" in expected and docker.simulator_arguments(in_container) == expected
    assert DockerBackend.command_args(in_container) == ["python", "-m", "pytest_simtwin.sim", *expected]
    with pytest.raises(BackendError, match="the Gazebo image img runs `gz sim` on the world as given"):
        DockerBackend.command_args(in_container, {"simtwin.image": "gazebo"})
    assert EmbeddedBackend.spawns_robot and DockerBackend.spawns_robot and ProcessBackend.spawns_robot
    assert not AttachBackend.spawns_robot
    # the process backend fills its spawn placeholders as `ros_gz_sim create` takes them
    settings.check_spawn("process", config.with_(command="create -name {spawn_name} -x {x} -y {y} -Y {yaw}"), "t")
    backend = cast(ProcessBackend, SimpleNamespace(config=config, domain_id=3, env={}))  # values() reads only these
    values = ProcessBackend.values(backend)
    assert (values["spawn_name"], values["x"], values["z"], values["yaw"]) == ("my_bot", "-2.0", "0.01", "0.3")
