"""Fixtures of the docker tests: skip with the reason when the daemon or the image is absent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_simtwin.errors import BackendError
from pytest_simtwin.ros import domains
from pytest_simtwin.ros import environment as rosenv
from pytest_simtwin.ros.session import RosSession


@pytest.fixture(scope="session")
def docker_client() -> Any:
    from pytest_simtwin.backends.containers.client import connect

    try:
        return connect(timeout=20.0)
    except BackendError as exc:
        pytest.skip(f"docker tests need a reachable Docker daemon (bash scripts/docker-setup.sh): {exc.message}")


@pytest.fixture(scope="session")
def sim_image(docker_client: Any) -> str:
    from pytest_simtwin.backends.containers.docker import check_image
    from pytest_simtwin.backends.containers.images import default_sim_image

    image = default_sim_image()
    try:
        check_image(docker_client, image)
    except BackendError:
        pytest.skip(f"simulator image {image} is not built here: run bash scripts/docker-setup.sh")
    return image


class Domain:
    """A leased domain with its environment and a started RosSession."""

    def __init__(self, owner: str) -> None:
        ids = domains.parse_domain_range(domains.DEFAULT_DOMAIN_RANGE)
        self.lease = domains.acquire_domain(ids, owner=owner, prefer=ids[len(ids) // 3])
        self.env = rosenv.ros_environment(self.lease.domain_id, self.lease.partition)
        self.ros = RosSession(self.lease.domain_id, self.env).start()

    def close(self) -> None:
        self.ros.close()
        self.lease.release()


@pytest.fixture
def domain_factory() -> type[Domain]:
    """The Domain class, for tests that lease several domains."""
    return Domain


@pytest.fixture
def domain() -> Iterator[Domain]:
    d = Domain("docker-tests")
    try:
        yield d
    finally:
        d.close()
