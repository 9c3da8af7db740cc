"""Docker backend pieces that need no daemon: mounts, limits, users, labels, error texts, arguments."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_simtwin.backends.base import SimConfig
from pytest_simtwin.backends.containers import client, reaper
from pytest_simtwin.backends.containers import docker as dk
from pytest_simtwin.backends.containers.images import build_command_hint, default_sim_image
from pytest_simtwin.errors import BackendError


def test_mount_dirs_collapses_files_and_nested_dirs(tmp_path: Path) -> None:
    (tmp_path / "worlds" / "models" / "bot").mkdir(parents=True)
    world = tmp_path / "worlds" / "arena.sdf"
    world.write_text("<sdf/>")
    other = tmp_path / "robots"
    other.mkdir()
    robot = other / "bot.urdf"
    robot.write_text("<robot/>")
    got = dk.mount_dirs([world, robot, tmp_path / "worlds" / "models", tmp_path / "missing", ""])
    assert got == sorted([str((tmp_path / "worlds").resolve()), str(other.resolve())])


def test_parse_memory() -> None:
    assert dk.parse_memory("2g") == 2 << 30
    assert dk.parse_memory("512m") == 512 << 20
    assert dk.parse_memory("512MB") == 512 << 20
    assert dk.parse_memory(str(64 << 20)) == 64 << 20
    assert dk.parse_memory(None) is None
    with pytest.raises(BackendError, match="expected bytes or a number"):
        dk.parse_memory("lots")
    with pytest.raises(BackendError, match="at least 6m"):
        dk.parse_memory("1k")


def test_container_user_never_root() -> None:
    assert dk.container_user({"Config": {"User": "simtwin"}}) == "simtwin"
    for attrs in ({"Config": {"User": ""}}, {"Config": {"User": "root"}}, {"Config": {"User": "0:0"}}, {}):
        user = dk.container_user(attrs)
        assert user.split(":")[0] not in ("", "0", "root")
    if os.getuid() != 0:
        assert dk.container_user({}) == f"{os.getuid()}:{os.getgid()}"


def test_owner_labels_name_this_process() -> None:
    labels = reaper.owner_labels(domain_id=7, partition="simtwin_x_7")
    assert labels[reaper.LABEL] == "1"
    assert labels[reaper.L_PID] == str(os.getpid())
    assert labels[reaper.L_DOMAIN] == "7"
    assert reaper.owner_alive(labels)
    dead = dict(labels, **{reaper.L_START: "1"})  # same pid, other start time: a reused pid
    assert not reaper.owner_alive(dead)
    assert reaper.owner_alive(dict(labels, **{reaper.L_HOST: "another-host", reaper.L_PID: "1", reaper.L_START: "x"}))


def test_connection_errors_say_what_to_do() -> None:
    perm = client.explain_connection_error(PermissionError(13, "Permission denied"))
    assert "docker group" in perm.message and "rootless" in perm.message
    missing = client.explain_connection_error(FileNotFoundError(2, "No such file or directory"))
    assert "dockerd" in missing.message and "--simtwin-backend embedded" in missing.message


def test_unreachable_daemon_raises_backend_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(client, "_client", None)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    with pytest.raises(BackendError, match="cannot reach a Docker daemon") as info:
        client.connect(timeout=2)
    assert "no-such.sock" in info.value.message


def test_image_hint_is_a_real_command() -> None:
    assert build_command_hint().startswith("simtwin image build")
    assert "--tag my/sim:1" in build_command_hint("my/sim:1")
    assert default_sim_image().startswith("pytest-simtwin/sim:")


class _Fake(dk.DockerBackend):
    """Only for argument building: never started."""


def test_simulator_arguments_match_embedded_without_parent_pid(tmp_path: Path) -> None:
    from pytest_simtwin.backends.embedded import EmbeddedBackend

    world = tmp_path / "w.sdf"
    world.write_text("<sdf/>")
    cfg = SimConfig(world=world, seed=3, rtf=2.0, lockstep=True, cmd_vel_type="twist_stamped")

    class Ros:
        domain_id = 5

    b = _Fake(cfg, lease=None, ros=Ros(), env={}, workdir=tmp_path)  # type: ignore[arg-type]
    args = dk.simulator_arguments(b)
    assert "--parent-pid" not in args
    emb_argv, _ = EmbeddedBackend.command(b)  # type: ignore[arg-type]
    emb = list(emb_argv)
    i = emb.index("--parent-pid")
    del emb[i : i + 2]
    assert emb[emb.index("pytest_simtwin.sim") + 1 :] == args
    assert b.command_args()[:3] == ["python", "-m", "pytest_simtwin.sim"]
    assert str(world) in args


def test_container_env_and_binds(tmp_path: Path) -> None:
    from pytest_simtwin.ros.environment import ros_environment

    world = tmp_path / "worlds" / "w.sdf"
    world.parent.mkdir()
    world.write_text("<sdf/>")
    env = ros_environment(9, "simtwin_test_9", base={"PATH": "/usr/bin", "GZ_SIM_RESOURCE_PATH": str(tmp_path)})

    class Ros:
        domain_id = 9

    b = _Fake(SimConfig(world=world), lease=None, ros=Ros(), env=env, workdir=tmp_path / "w")  # type: ignore[arg-type]
    cenv = b.container_env()
    assert cenv["ROS_DOMAIN_ID"] == "9" and cenv["GZ_PARTITION"] == "simtwin_test_9"
    assert cenv["FASTDDS_BUILTIN_TRANSPORTS"] == "UDPv4"
    assert cenv["FASTDDS_DEFAULT_PROFILES_FILE"] == dk.CONTAINER_PROFILE
    assert "PATH" not in cenv  # the image's own PATH, not the host's
    binds = b.binds()
    assert binds[str(tmp_path.resolve())] == {"bind": str(tmp_path.resolve()), "mode": "ro"}
    assert all(v["mode"] == "ro" for v in binds.values())
    assert {"bind": dk.CONTAINER_PROFILE, "mode": "ro"} in binds.values()


@pytest.mark.skipif(
    os.getuid() != 0 or not Path("/var/run/docker.sock").exists(), reason="needs root and a local docker socket"
)
def test_no_permission_on_the_socket_says_docker_group_or_rootless() -> None:
    """A real unprivileged process against the root-owned socket."""
    import subprocess
    import sys

    code = (
        "from pytest_simtwin.backends.containers.client import connect\n"
        "from pytest_simtwin.errors import BackendError\n"
        "try:\n    connect(timeout=5)\nexcept BackendError as e:\n    print(e.message)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    env["HOME"] = "/tmp"
    try:
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                              user=65534, group=65534)  # fmt: skip
    except PermissionError as exc:
        pytest.skip(f"the Python interpreter is not executable by uid 65534 here: {exc}")
    if "No module named" in proc.stderr or ("Permission denied" in proc.stderr and not proc.stdout):
        pytest.skip(f"the venv is not readable by uid 65534: {proc.stderr.strip()[-200:]}")
    assert "no permission" in proc.stdout and "docker group" in proc.stdout and "rootless" in proc.stdout, (
        proc.stdout + proc.stderr
    )
