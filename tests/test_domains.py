"""Domain leases: parsing, exclusivity across processes, release on death, stale-child reaping."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_simtwin.errors import ConfigError, DomainError
from pytest_simtwin.ros import domains


@pytest.fixture(autouse=True)
def _private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMTWIN_STATE_DIR", str(tmp_path / "state"))


def test_parse_default_range() -> None:
    ids = domains.parse_domain_range(domains.DEFAULT_DOMAIN_RANGE)
    assert ids[0] == 1 and ids[-1] == 232
    assert 101 in ids and 102 not in ids and 214 not in ids and 215 in ids
    assert len(ids) == 101 + 18


@pytest.mark.parametrize("text", ["", "a-b", "5-3", "0-300", ",", "1-2-3"])
def test_parse_rejects_bad_ranges(text: str) -> None:
    with pytest.raises(ConfigError, match="range"):
        domains.parse_domain_range(text)


def test_leases_are_exclusive_and_released() -> None:
    with domains.acquire_domain([5, 6], owner="a") as a, domains.acquire_domain([5, 6], owner="b") as b:
        assert {a.domain_id, b.domain_id} == {5, 6}
        with pytest.raises(DomainError, match="no free ROS_DOMAIN_ID") as info:
            domains.acquire_domain([5, 6], owner="c")
        assert "--simtwin-domain-range" in str(info.value)
    with domains.acquire_domain([5, 6], owner="d") as again:
        assert again.domain_id == 5


def test_lease_of_killed_holder_is_freed_and_its_children_reaped(tmp_path: Path) -> None:
    code = (
        "import subprocess, sys, time\n"
        "from pytest_simtwin.ros import domains\n"
        "lease = domains.acquire_domain([7], owner='victim')\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)\n"
        "lease.add_child(child.pid, 'sleeper')\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    child_pid = int(holder.stdout.readline())
    with pytest.raises(DomainError):
        domains.acquire_domain([7], owner="blocked")
    holder.kill()
    holder.wait()
    assert domains.process_alive(child_pid), "the orphan should still run until reaped"
    reaped = domains.reap_leftovers()
    assert any(str(child_pid) in r for r in reaped)
    deadline = time.monotonic() + 5
    while domains.process_alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not domains.process_alive(child_pid)
    with domains.acquire_domain([7], owner="next") as lease:
        assert lease.domain_id == 7
