"""The one module that talks to the docker SDK: a cached client, connection errors that say what to do.

The backend, the image builder and the reaper all get their client here.
"""

from __future__ import annotations

import importlib
import os
import threading
from typing import Any

from pytest_simtwin.errors import BackendError

_client_lock = threading.Lock()
_client: Any = None


def sdk() -> Any:
    """The docker SDK module (imported lazily; ``Any`` because the repo's docker/ folder confuses mypy)."""
    return importlib.import_module("docker")  # lazy: the SDK is an optional extra


def daemon_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def explain_connection_error(exc: BaseException) -> BackendError:
    """Turn a docker SDK connection failure into an error that says what to do."""
    text = str(exc)
    where = daemon_address()
    if "Permission denied" in text or "PermissionError" in text:
        return BackendError(
            f"no permission to use the Docker daemon at {where} ({text}). Expected read/write access to the "
            f"docker socket. Add the user to the docker group (sudo usermod -aG docker $USER, then log in "
            f"again) or use rootless docker (DOCKER_HOST=unix://$XDG_RUNTIME_DIR/docker.sock), or run with "
            f"--simtwin-backend embedded."
        )
    return BackendError(
        f"cannot reach a Docker daemon at {where} ({text}). Expected a running dockerd for "
        f"--simtwin-backend docker. Start it (sudo systemctl start docker, or scripts/docker-setup.sh which "
        f"starts dockerd and builds the images), point DOCKER_HOST at it, or use --simtwin-backend embedded."
    )


def connect(timeout: float = 30.0) -> Any:
    """A docker SDK client for this process (cached); raises :class:`BackendError` when unusable."""
    global _client
    with _client_lock:
        if _client is not None:
            return _client
        try:
            docker = sdk()
        except ImportError:
            raise BackendError(
                "the docker backend needs the docker SDK for Python, which is not installed. "
                "Install it with: pip install 'pytest-simtwin[docker]' (or use --simtwin-backend embedded)"
            ) from None
        try:
            client = docker.from_env(timeout=int(timeout))
            client.ping()
        except docker.errors.DockerException as exc:
            raise explain_connection_error(exc) from None
        except OSError as exc:
            raise explain_connection_error(exc) from None
        _client = client
        return client


def api_client(timeout: float | None = None) -> Any:
    """A second low-level client for blocking calls (wait, attach) in background threads."""
    docker = sdk()

    main = connect()
    kwargs = docker.utils.kwargs_from_env()
    return docker.APIClient(version=main.api.api_version, timeout=timeout, **kwargs)
