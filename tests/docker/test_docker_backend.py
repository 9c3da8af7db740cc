"""The docker backend against a real daemon and the real simulator image (marked ``docker``).

Skipped with the reason where there is no daemon or no image (bash scripts/docker-setup.sh builds both).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.backends.base import SimConfig
from pytest_simtwin.backends.containers import reaper
from pytest_simtwin.backends.containers.docker import DockerBackend
from pytest_simtwin.errors import BackendError, SimulatorStartError

pytestmark = pytest.mark.docker


def _containers(client: Any, **labels: str) -> list[dict[str, Any]]:
    filters = [f"{reaper.LABEL}=1", *(f"simtwin.{k}={v}" for k, v in labels.items())]
    return list(client.api.containers(all=True, filters={"label": filters}))


@pytest.fixture
def backend(domain: Any, sim_image: str, tmp_path: Path) -> Iterator[DockerBackend]:
    b = DockerBackend(SimConfig(image=sim_image), lease=domain.lease, ros=domain.ros, env=domain.env,
                      workdir=tmp_path)  # fmt: skip
    try:
        yield b
    finally:
        b.stop()


def test_container_is_isolated_labelled_and_removed(backend: DockerBackend, docker_client: Any) -> None:
    from nav_msgs.msg import Odometry

    with backend:
        cid = backend.container_id
        assert cid is not None and backend.is_alive()
        attrs = docker_client.api.inspect_container(cid)
        host = attrs["HostConfig"]
        assert host["NetworkMode"] == "host"
        assert host["Privileged"] is False and host["AutoRemove"] is True
        assert host["CapDrop"] == ["ALL"]
        assert attrs["Config"]["User"] not in ("", "root", "0")
        # the simulator process itself runs as the non-root user
        top = docker_client.api.top(cid, ps_args="-o pid,uid,args")
        uids = {row[1] for row in top["Processes"]}
        assert "0" not in uids and "root" not in uids, top
        labels = attrs["Config"]["Labels"]
        assert labels[reaper.L_PID] == str(os.getpid())
        assert labels[reaper.L_DOMAIN] == str(backend.domain_id)
        env = dict(e.split("=", 1) for e in attrs["Config"]["Env"])
        assert env["ROS_DOMAIN_ID"] == str(backend.domain_id)
        assert env["GZ_PARTITION"] == backend.env["GZ_PARTITION"]
        assert env["FASTDDS_BUILTIN_TRANSPORTS"] == "UDPv4"
        assert all(not m["RW"] for m in attrs["Mounts"])
        # the container's simulator is really on our domain: odometry arrives here
        msg = backend.ros.wait_for_message("/odom", Odometry, timeout=10.0, since=0.0)
        assert msg.header.frame_id
        assert any(child.get("container") == cid for child in backend.lease.children)
        wait_until(lambda: "ready" in "\n".join(backend.log_tail(50)), 10.0, what="the simulator log in the file")
    assert not backend.is_alive()
    wait_until(lambda: not _containers(docker_client, owner_pid=str(os.getpid()), domain=str(backend.domain_id)),
               15.0, what="the container to be removed")  # fmt: skip
    assert backend.log_path() is not None and backend.log_path().stat().st_size > 0  # type: ignore[union-attr]


def test_missing_image_says_how_to_build(domain: Any, docker_client: Any, tmp_path: Path) -> None:
    b = DockerBackend(SimConfig(image="pytest-simtwin/sim:no-such-tag"), lease=domain.lease, ros=domain.ros,
                      env=domain.env, workdir=tmp_path)  # fmt: skip
    with pytest.raises(BackendError) as info, b:
        pass
    assert "not found" in info.value.message
    assert "simtwin image build --base --tag pytest-simtwin/sim:no-such-tag" in info.value.message


def test_early_exit_reports_code_and_log_tail(domain: Any, sim_image: str, tmp_path: Path,
                                              docker_client: Any) -> None:  # fmt: skip
    world = tmp_path / "worlds" / "broken.sdf"
    world.parent.mkdir()
    world.write_text("<sdf version='1.9'><world name='w'><model name='x'>")  # truncated XML
    b = DockerBackend(SimConfig(image=sim_image, world=world, start_timeout=60.0), lease=domain.lease,
                      ros=domain.ros, env=domain.env, workdir=tmp_path / "work")  # fmt: skip
    start = time.monotonic()
    with pytest.raises(SimulatorStartError) as info, b:
        pass
    assert time.monotonic() - start < 45.0  # failed on the exit, not on the timeout
    text = str(info.value)
    assert "exited early with code" in text and "with code 0" not in text
    assert "broken.sdf" in text  # the simulator's own error, from the log tail (mounted at the same path)
    assert info.value.log_tail


def test_cpu_and_memory_limits_are_applied(domain: Any, sim_image: str, tmp_path: Path,
                                           docker_client: Any) -> None:  # fmt: skip
    b = DockerBackend(SimConfig(image=sim_image, cpus=0.5, memory="512m"), lease=domain.lease, ros=domain.ros,
                      env=domain.env, workdir=tmp_path)  # fmt: skip
    try:
        b.start()
        host = docker_client.api.inspect_container(b.container_id)["HostConfig"]
        assert host["NanoCpus"] == 500_000_000
        assert host["Memory"] == 512 << 20
    finally:
        b.stop()


KILLED_WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from pytest_simtwin.ros import domains, environment as rosenv
    from pytest_simtwin.ros.session import RosSession
    from pytest_simtwin.backends.base import SimConfig
    from pytest_simtwin.backends.containers.docker import DockerBackend
    ids = domains.parse_domain_range(domains.DEFAULT_DOMAIN_RANGE)
    lease = domains.acquire_domain(ids, owner="killed-worker", prefer=ids[-1])
    env = rosenv.ros_environment(lease.domain_id, lease.partition)
    ros = RosSession(lease.domain_id, env).start()
    b = DockerBackend(SimConfig(image=sys.argv[1]), lease=lease, ros=ros, env=env, workdir=Path(sys.argv[2]))
    b.start()
    b.wait_ready()
    print(b.container_id, flush=True)
    time.sleep(600)
    """
)


def test_sigkilled_owner_leaves_no_container(sim_image: str, docker_client: Any, tmp_path: Path) -> None:
    """kill -9 of the process holding the container: the stdin link stops it within seconds."""
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WORKER, sim_image, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        cid = proc.stdout.readline().strip()
        assert cid, "the worker did not start its container"
        assert _containers(docker_client, owner_pid=str(proc.pid))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        killed = time.monotonic()
        wait_until(lambda: not _containers(docker_client, owner_pid=str(proc.pid)), 20.0,
                   what=f"container {cid[:12]} of the killed process to disappear")  # fmt: skip
        print(f"container gone {time.monotonic() - killed:.2f} s after SIGKILL")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sweep_removes_containers_of_dead_owners(sim_image: str, docker_client: Any) -> None:
    """The session-start sweep: a labelled container whose owner pid is gone is removed; a live one is kept."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    labels = reaper.owner_labels(domain_id=0, partition="simtwin_sweep_test")
    api = docker_client.api
    cids = []
    for owner in ({reaper.L_PID: str(dead.pid), reaper.L_START: "1"}, {}):
        created = api.create_container(sim_image, command=["sleep", "120"], labels={**labels, **owner},
                                       host_config=api.create_host_config(auto_remove=False))  # fmt: skip
        api.start(created["Id"])
        cids.append(created["Id"])
    try:
        removed = reaper.sweep(docker_client)
        assert any(cids[0][:12] in line for line in removed), removed
        alive = {c["Id"] for c in api.containers(all=True)}
        assert cids[0] not in alive and cids[1] in alive
    finally:
        for cid in cids:
            api.remove_container(cid, force=True) if cid in {c["Id"] for c in api.containers(all=True)} else None


N_PARALLEL = int(os.environ.get("SIMTWIN_DOCKER_PARALLEL", "8"))


@pytest.mark.slow
def test_parallel_containers_do_not_cross_talk(
    sim_image: str, docker_client: Any, tmp_path: Path, domain_factory: Any
) -> None:
    """8 containers on 8 leased domains; each robot gets its own speed and sees only its own odometry."""
    from geometry_msgs.msg import Twist
    from nav_msgs.msg import Odometry

    doms: list[Any] = []
    backends: list[DockerBackend] = []
    try:
        for i in range(N_PARALLEL):
            d = domain_factory(f"crosstalk-{i}")
            doms.append(d)
            b = DockerBackend(SimConfig(image=sim_image, start_timeout=120.0), lease=d.lease, ros=d.ros, env=d.env,
                              workdir=tmp_path / str(i))  # fmt: skip
            backends.append(b)
            b.start()
        for b in backends:
            b.wait_ready()
        assert len({d.lease.domain_id for d in doms}) == N_PARALLEL
        speeds = [0.05 + 0.05 * i for i in range(N_PARALLEL)]
        bufs = [d.ros.subscribe("/odom", Odometry) for d in doms]
        pubs = [d.ros.publisher("/cmd_vel", Twist) for d in doms]
        t_start = time.monotonic()

        def command() -> None:
            for pub, v in zip(pubs, speeds, strict=True):
                msg = Twist()
                msg.linear.x = v
                pub.publish(msg)

        def settled() -> bool:
            command()
            latest = [buf.latest() for buf in bufs]
            return all(
                m is not None and abs(m.twist.twist.linear.x - v) < 0.01 for m, v in zip(latest, speeds, strict=True)
            )

        wait_until(settled, 60.0, what="every robot to reach its own commanded speed", interval=0.1,
                   describe=lambda: ", ".join(f"{(b.latest().twist.twist.linear.x if b.latest() else math.nan):.3f}"
                                              for b in bufs))  # fmt: skip
        t_settled = time.monotonic()
        deadline = t_settled + 2.0
        while time.monotonic() < deadline:
            command()
            time.sleep(0.1)
        for i, (buf, v) in enumerate(zip(bufs, speeds, strict=True)):
            steady = [r.msg.twist.twist.linear.x for r in buf.since(t_settled + 0.3)]
            assert len(steady) > 10, f"domain {doms[i].lease.domain_id}: only {len(steady)} odometry messages"
            # another robot's odometry on this domain would differ by >= 0.05 m/s
            assert max(abs(x - v) for x in steady) < 0.02, (i, v, min(steady), max(steady))
            assert doms[i].ros.count_publishers("/odom") == 1
        print(f"{N_PARALLEL} containers isolated; settled {t_settled - t_start:.1f} s after the first command")
    finally:
        for b in backends:
            b.stop()
        for d in doms:
            d.close()
