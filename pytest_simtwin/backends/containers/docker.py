"""The ``docker`` backend: one simulator container per xdist worker, through the docker SDK.

The container shares the host network (DDS over UDP on 127.0.0.1, the same fast-discovery profile
as every other process of the domain, mounted read-only) and gets the worker's ROS_DOMAIN_ID and
GZ_PARTITION. It runs as a non-root user, unprivileged, with all capabilities dropped; worlds and
models are mounted read-only at their host paths so the simulator gets exactly the arguments the
embedded backend passes.

Nothing outlives the worker: the container auto-removes when it exits, and the worker keeps its
stdin attached (``stdin_once``). When the worker dies, even by SIGKILL, the kernel closes that
socket, the daemon closes the container's stdin and the image's entrypoint stops the simulator
(the idea of testcontainers' Ryuk, without a sidecar). Labels name the owner process so
:mod:`pytest_simtwin.backends.containers.reaper` removes anything left when the next session starts.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from pytest_simtwin.backends import embedded
from pytest_simtwin.backends.base import Backend
from pytest_simtwin.backends.containers import reaper
from pytest_simtwin.backends.containers.client import api_client, connect, daemon_address, sdk
from pytest_simtwin.backends.containers.images import build_command_hint, default_sim_image
from pytest_simtwin.backends.processes import read_tail
from pytest_simtwin.errors import BackendError, ConfigError

#: Where the host's Fast DDS profile is mounted inside the container.
CONTAINER_PROFILE = "/etc/simtwin/fastdds_profile.xml"
#: Environment keys copied from the worker's ROS environment into the container.
FORWARDED_ENV = (
    "ROS_DOMAIN_ID",
    "GZ_PARTITION",
    "RMW_IMPLEMENTATION",
    "ROS_AUTOMATIC_DISCOVERY_RANGE",
    "GZ_SIM_RESOURCE_PATH",
    "GZ_IP",
)
STOP_GRACE = 5.0
_log_counter = itertools.count(1)
def check_image(client: Any, image: str) -> dict[str, Any]:
    """The image's attributes; :class:`BackendError` with the exact build command when it is missing."""
    docker = sdk()

    try:
        attrs: dict[str, Any] = client.api.inspect_image(image)
    except docker.errors.ImageNotFound:
        raise BackendError(
            f"docker image {image!r} not found on the daemon at {daemon_address()}. Expected the simulator "
            f"image built locally (no registry is used). Build it with: {build_command_hint(image)}"
        ) from None
    except docker.errors.APIError as exc:
        raise BackendError(f"cannot inspect docker image {image!r}: {exc}") from None
    return attrs


def mount_dirs(paths: Sequence[Path | str]) -> list[str]:
    """Directories to mount (read-only, same path) so every given file or directory is visible.

    Files contribute their folder; nested folders collapse into their outermost one (docker refuses
    two mounts on one path, and a parent mount already shows its children).
    """
    dirs: set[Path] = set()
    for raw in paths:
        if not str(raw):
            continue
        p = Path(raw).expanduser().resolve()
        if p.is_file():
            p = p.parent
        if p.is_dir() and p != Path("/"):
            dirs.add(p)
    out: list[Path] = []
    for d in sorted(dirs, key=lambda x: len(x.parts)):
        if not any(d == o or o in d.parents for o in out):
            out.append(d)
    return sorted(str(d) for d in out)


def container_user(image_attrs: Mapping[str, Any]) -> str:
    """The image's own non-root user, else the caller's uid when non-root, else 1000:1000."""
    user = str((image_attrs.get("Config") or {}).get("User") or "")
    if user and user.split(":")[0] not in ("root", "0"):
        return user
    uid, gid = os.getuid(), os.getgid()
    return f"{uid}:{gid}" if uid != 0 else "1000:1000"


def parse_memory(text: str | None) -> int | None:
    """``"2g"``, ``"512m"``, ``"1073741824"`` -> bytes (``None`` passes through)."""
    if text is None or str(text).strip() == "":
        return None
    raw = str(text).strip().lower().removesuffix("b")
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(raw[-1:], 1)
    number = raw[:-1] if raw[-1:] in "kmg" else raw
    try:
        value = int(float(number) * scale)
    except ValueError:
        raise BackendError(f"docker memory limit {text!r}: expected bytes or a number with k/m/g, e.g. '2g'") from None
    if value < 6 << 20:
        raise BackendError(f"docker memory limit {text!r}: expected at least 6m (docker's minimum)")
    return value


def simulator_arguments(backend: Backend) -> list[str]:
    """The simulator's arguments, exactly as the embedded backend builds them (minus the interpreter).

    No ``--parent-pid``: the container has its own pid namespace; the stdin guard does that job.
    """

    return embedded.simulator_arguments(backend.config, parent_pid=None)


class DockerBackend(Backend):
    name: ClassVar[str] = "docker"
    supports_control: ClassVar[bool] = True
    spawns_robot: ClassVar[bool] = True  # our simulator's arguments (the Gazebo recipe image: see command_args)

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        try:
            parse_memory(options.get("docker-memory"))
        except BackendError as exc:
            raise ConfigError(f"--simtwin-docker-memory: {exc}") from None

    @classmethod
    def session_start(cls, controller: bool) -> None:
        reaper.register()  # stale leases remove their recorded containers
        if controller:
            reaper.sweep_once()  # containers whose owner process is dead (labels), see reaper.py

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.image = self.config.image or default_sim_image()
        self.container_id: str | None = None
        self._log_path = self.workdir / f"docker-sim-{os.getpid()}-{next(_log_counter)}.log"
        self._exit_code: int | None = None
        self._exited = threading.Event()
        self._attach: Any = None
        self._attach_client: Any = None
        self._threads: list[threading.Thread] = []
        self._host_pid: int | None = None
        self.started_at: float | None = None

    # -- what the container gets -------------------------------------------------------------
    def command_args(self, image_labels: Mapping[str, str] | None = None) -> list[str]:
        """Our simulator's command line; for the Gazebo recipe image (label simtwin.image=gazebo) the world."""
        if (image_labels or {}).get("simtwin.image") == "gazebo":
            if self.config.world is None:
                raise BackendError(
                    f"the Gazebo image {self.image} needs a world: expected --simtwin-world (an SDF file with the "
                    f"robot), found none"
                )
            if self.config.spawn_name is not None or self.config.spawn_pose is not None:
                raise BackendError(
                    f"the Gazebo image {self.image} runs `gz sim` on the world as given: expected no "
                    f"--simtwin-spawn-name / --simtwin-spawn-pose (found {self.config.spawn_name!r}, "
                    f"{self.config.spawn_pose!r}); place the robot in the world file, or use our simulator's image"
                )
            return [str(self.config.world)]
        return ["python", "-m", "pytest_simtwin.sim", *simulator_arguments(self)]

    def container_env(self) -> dict[str, str]:
        env = {k: self.env[k] for k in FORWARDED_ENV if self.env.get(k)}
        env.setdefault("ROS_DOMAIN_ID", str(self.domain_id))
        env["RMW_IMPLEMENTATION"] = env.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = env.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "SYSTEM_DEFAULT")
        if self.env.get("FASTDDS_DEFAULT_PROFILES_FILE"):
            env["FASTDDS_DEFAULT_PROFILES_FILE"] = CONTAINER_PROFILE
        # Host network + a private /dev/shm: shared memory would silently deliver nothing.
        env["FASTDDS_BUILTIN_TRANSPORTS"] = "UDPv4"
        env["SIMTWIN_STDIN_GUARD"] = "1"
        env["SIMTWIN_CMD_VEL_TYPE"] = self.config.cmd_vel_type or "twist"  # read by the Gazebo recipe's entrypoint
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def binds(self) -> dict[str, dict[str, str]]:
        paths: list[Path | str] = [p for p in (self.config.world, self.config.robot) if p is not None]
        paths += [p for p in self.env.get("GZ_SIM_RESOURCE_PATH", "").split(":") if p]
        out = {d: {"bind": d, "mode": "ro"} for d in mount_dirs(paths)}
        profile = self.env.get("FASTDDS_DEFAULT_PROFILES_FILE")
        if profile:
            out[str(Path(profile).resolve())] = {"bind": CONTAINER_PROFILE, "mode": "ro"}
        return out

    def labels(self) -> dict[str, str]:
        return reaper.owner_labels(
            domain_id=self.domain_id,
            partition=self.env.get("GZ_PARTITION", ""),
        )

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        docker = sdk()
        reaper.register()  # idempotent: also for a SimPool, which runs no pytest configure
        client = connect()
        reaper.sweep_once(client)
        attrs = check_image(client, self.image)
        api = client.api
        host_config = api.create_host_config(
            network_mode="host",
            binds=self.binds(),
            auto_remove=True,
            privileged=False,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            nano_cpus=int(self.config.cpus * 1e9) if self.config.cpus else None,
            mem_limit=parse_memory(self.config.memory),
        )
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = self.command_args((attrs.get("Config") or {}).get("Labels") or {})
        with self._log_path.open("a") as fh:
            fh.write(f"$ docker run --network host {self.image} {' '.join(argv)}\n")
        try:
            created = api.create_container(
                self.image,
                command=argv,
                user=container_user(attrs),
                environment=self.container_env(),
                labels=self.labels(),
                host_config=host_config,
                stdin_open=True,  # with detach=False the SDK also sets StdinOnce
                detach=False,
                hostname=socket.gethostname(),
            )
        except docker.errors.APIError as exc:
            raise BackendError(
                f"docker could not create the simulator container from {self.image!r}: {exc.explanation or exc}. "
                f"Check the mounted paths ({', '.join(self.binds()) or 'none'}) and the cpu/memory limits."
            ) from None
        self.container_id = str(created["Id"])
        try:
            self._attach_streams()
            api.start(self.container_id)
        except docker.errors.APIError as exc:
            self.stop()
            raise BackendError(
                f"docker could not start the simulator container {self.container_id[:12]}: {exc.explanation or exc}"
            ) from None
        self.started_at = time.monotonic()
        with contextlib.suppress(Exception):
            self._host_pid = int(api.inspect_container(self.container_id)["State"]["Pid"]) or None
        if self.lease is not None and self._host_pid:
            self.lease.add_child(
                self._host_pid,
                "container",
                {"container": self.container_id, "partition": self.env.get("GZ_PARTITION")},
            )

    def _attach_streams(self) -> None:
        """Attach before start: output goes to the log file, our end of stdin is the liveness link."""
        assert self.container_id is not None
        api = api_client()
        # The wait must be issued before start so an early exit of an auto-removed container is seen.
        waiter = api_client()
        cid = self.container_id
        ready = threading.Event()

        def wait_exit() -> None:
            code: int | None = None
            try:
                ready.set()
                result = waiter.wait(cid, condition="removed")
                code = int(result.get("StatusCode", -1))
            except Exception:
                code = -1
            finally:
                ready.set()
                self._exit_code = code
                self._exited.set()

        params = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1, "logs": 1}
        sock = api.attach_socket(cid, params=params)
        # Keep the client too: collecting it closes its connections, hence the container's stdin.
        self._attach = sock
        self._attach_client = api
        raw = getattr(sock, "_sock", sock)
        with contextlib.suppress(OSError):
            os.set_inheritable(raw.fileno(), False)

        def pump() -> None:
            from docker.utils.socket import frames_iter

            with self._log_path.open("ab") as fh, contextlib.suppress(Exception):
                for _stream, data in frames_iter(sock, tty=False):
                    fh.write(data)
                    fh.flush()

        for target, name in ((wait_exit, "wait"), (pump, "log")):
            t = threading.Thread(target=target, name=f"simtwin-docker-{name}-{cid[:12]}", daemon=True)
            t.start()
            self._threads.append(t)
        ready.wait(2.0)

    def stop(self) -> None:
        cid = self.container_id
        if cid is None:
            return
        with contextlib.suppress(Exception):
            client = connect()
            if self.started_at is None:
                # Created but never started: nothing to stop, and auto-remove only applies once started.
                client.api.remove_container(cid, force=True)
            if not self._exited.is_set():
                with contextlib.suppress(Exception):
                    client.api.stop(cid, timeout=int(STOP_GRACE))
                self._exited.wait(STOP_GRACE + 5.0)
            with contextlib.suppress(Exception):
                client.api.remove_container(cid, force=True)
        if self._attach is not None:
            with contextlib.suppress(Exception):
                self._attach.close()
            self._attach = None
            self._attach_client = None
        for t in self._threads:
            t.join(timeout=2.0)
        self._threads.clear()
        if self.lease is not None and self._host_pid:
            with contextlib.suppress(OSError):
                self.lease.remove_child(self._host_pid)
        self.container_id = None if self._exited.is_set() else cid

    def is_alive(self) -> bool:
        return self.container_id is not None and not self._exited.is_set()

    def returncode(self) -> int | None:
        return self._exit_code if self._exited.is_set() else None

    def log_tail(self, lines: int = 30) -> list[str]:
        return read_tail(self._log_path, lines)

    def log_path(self) -> Path | None:
        return self._log_path

    def describe(self) -> str:
        cid = f" {self.container_id[:12]}" if self.container_id else ""
        return f"docker simulator container{cid} ({self.image}) on ROS_DOMAIN_ID {self.domain_id}"

    def death_reason(self) -> str | None:
        if self.container_id is None or not self._exited.is_set():
            return None
        return f"the {self.describe()} exited early with code {self._exit_code}"

