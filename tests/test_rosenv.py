"""The packaged Fast DDS profile: what it sets, and that Fast DDS really reads it."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_simtwin.errors import ConfigError
from pytest_simtwin.ros.domains import DEFAULT_DOMAIN_RANGE, acquire_domain, parse_domain_range
from pytest_simtwin.ros.environment import check_profile, default_profile_path, ros_environment

NS = {"f": "http://www.eprosima.com"}
CREATE_NODE = "import rclpy; rclpy.init(); rclpy.create_node('profile_probe').destroy_node(); rclpy.shutdown()"


def _participant_property(profile: Path, name: str) -> str | None:
    root = ET.parse(profile).getroot()
    for prop in root.iterfind(".//f:participant/f:rtps/f:propertiesPolicy/f:properties/f:property", NS):
        if prop.findtext("f:name", namespaces=NS) == name:
            return prop.findtext("f:value", namespaces=NS)
    return None


def _create_node_with(profile: Path) -> subprocess.CompletedProcess[str]:
    ids = parse_domain_range(DEFAULT_DOMAIN_RANGE)
    with acquire_domain(ids, owner="tests/profile-probe") as lease:
        env = {**ros_environment(lease.domain_id, lease.partition), "FASTDDS_DEFAULT_PROFILES_FILE": str(profile)}
        return subprocess.run([sys.executable, "-c", CREATE_NODE], env=env, capture_output=True, text=True, timeout=60)


def test_the_profile_turns_type_lookups_off() -> None:
    # registration_only: no TypeLookup requests, so no participant is destroyed while answering one
    # (a Fast DDS 3.2 crash; benchmarks/participant_churn.py measures it).
    assert _participant_property(default_profile_path(), "fastdds.type_propagation") == "registration_only"


def test_fast_dds_reads_the_profiles_participant_properties(tmp_path: Path) -> None:
    """A property in a place Fast DDS ignores would silently change nothing: prove it is read.

    Fast DDS refuses to create a participant whose type propagation value is unknown, so the same
    profile with a bogus value must fail where the packaged one works.
    """
    packaged = default_profile_path()
    ok = _create_node_with(packaged)
    assert ok.returncode == 0, ok.stderr[-2000:]
    bogus = tmp_path / "bogus.xml"
    bogus.write_text(packaged.read_text().replace("<value>registration_only</value>", "<value>bogus</value>"))
    failed = _create_node_with(bogus)
    assert failed.returncode != 0 and "failed to create participant" in failed.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("<dds><profiles>", "is not valid XML"),
        ("<other/>", "expected a <dds> or <profiles> root, found <other>"),
    ],
)
def test_a_broken_profile_is_refused_before_fast_dds_ignores_it(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "profile.xml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=expected):
        check_profile(path)
    with pytest.raises(ConfigError, match="does not exist"):
        check_profile(tmp_path / "missing.xml")
