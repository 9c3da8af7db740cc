"""SimNode's publishing survives a DDS writer that refuses a sample (rmw "cannot publish data")."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from pytest_simtwin.ros.domains import DEFAULT_DOMAIN_RANGE, acquire_domain, parse_domain_range
from pytest_simtwin.sim.node import SimNode


class RefusingPublisher:
    """Stands in for one writer only: Fast DDS refuses writes this way when a reliable reader's
    acknowledgements fall behind (rmw_fastrtps issues 310, 317); it cannot be triggered on demand."""

    topic_name = "/clock"

    def __init__(self) -> None:
        self.calls = 0

    def publish(self, msg: Any) -> None:
        self.calls += 1
        raise RuntimeError("Failed to publish: cannot publish data, at rmw_publish.cpp:68")


def test_a_refused_write_is_counted_logged_and_survived(caplog: pytest.LogCaptureFixture) -> None:
    from rosgraph_msgs.msg import Clock

    with acquire_domain(parse_domain_range(DEFAULT_DOMAIN_RANGE), owner="tests/sim node") as lease:
        node = SimNode(domain_id=lease.domain_id)
        try:
            refusing = RefusingPublisher()
            node.pub_clock, node.msg_clock = refusing, Clock()
            with caplog.at_level(logging.WARNING, logger="simtwin.sim"):
                for i in range(1001):
                    node.publish_clock(i * 0.01)
            assert refusing.calls == 1001
            assert node.dropped == {"/clock": 1001}
            # the first refusal and every thousandth are logged, not each one
            lines = [r.getMessage() for r in caplog.records if "not sent" in r.getMessage()]
            assert len(lines) == 2 and lines[0].startswith("1 message(s) on /clock not sent"), lines
        finally:
            node.close()
