"""Assertion helpers: pass/fail decisions, message content, metric recording, hidden frames."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_simtwin.errors import ConfigError
from pytest_simtwin.helpers.assertions import (
    MetricRecorder,
    assert_metric,
    assert_within_tolerance,
    record_metric,
)
from pytest_simtwin.results.metrics import ValidationMetric
from pytest_simtwin.results.records import TestRecord, bind_record, current_record


@pytest.fixture
def rec() -> object:
    assert current_record() is not None  # the plugin binds one for every test
    with bind_record(TestRecord(nodeid="t::x")) as record:
        yield record


def test_scalar_within_tolerance_passes_at_the_boundary() -> None:
    assert_within_tolerance(1.01, 1.0, 0.01 + 1e-12)
    assert_within_tolerance(0.99, 1.0, 0.02, unit="m")
    assert_within_tolerance(5, 5, 0)


def test_scalar_failure_names_expected_actual_tolerance_unit_and_margin() -> None:
    with pytest.raises(AssertionError) as info:
        assert_within_tolerance(1.05, 1.0, 0.01, metric="distance", unit="m")
    text = str(info.value)
    assert text.startswith("distance: actual 1.05 m, expected 1 m ± 0.01 m")
    assert "(0.99 m .. 1.01 m)" in text
    assert "off by 0.05 m" in text
    assert "0.04 m beyond tolerance" in text


def test_relative_tolerance() -> None:
    assert_within_tolerance(104.0, 100.0, 0.05, relative=True)
    with pytest.raises(AssertionError, match=r"± 0.05 × \|expected\|"):
        assert_within_tolerance(106.0, 100.0, 0.05, relative=True)
    with pytest.raises(AssertionError, match="worst at index 1"):
        assert_within_tolerance([1.0, 2.2], [1.0, 2.0], 0.05, relative=True)


def test_nan_never_passes() -> None:
    with pytest.raises(AssertionError, match="actual is NaN"):
        assert_within_tolerance(math.nan, 1.0, 100.0)
    with pytest.raises(AssertionError, match=r"1 of 3 elements .* worst at index 2: actual nan"):
        assert_within_tolerance([1.0, 1.0, math.nan], 1.0, 0.1)


def test_array_failure_reports_worst_element_index_and_count() -> None:
    actual = np.array([0.0, 0.02, 0.5, 0.03, 0.0])
    with pytest.raises(AssertionError) as info:
        assert_within_tolerance(actual, np.zeros(5), 0.025, metric="lateral error", unit="m")
    text = str(info.value)
    assert "lateral error: 2 of 5 elements out of tolerance ± 0.025 m" in text
    assert "worst at index 2: actual 0.5 m, expected 0 m, off by 0.5 m, 0.475 m beyond tolerance" in text


def test_two_dimensional_arrays_report_a_tuple_index() -> None:
    actual = np.zeros((3, 2))
    actual[1, 1] = 1.0
    with pytest.raises(AssertionError, match=r"1 of 6 elements .* index \(1, 1\)"):
        assert_within_tolerance(actual, 0.0, 0.1)
    assert_within_tolerance(np.ones((3, 2)), np.ones((3, 2)), 0.0)


def test_shape_mismatch_is_explained() -> None:
    with pytest.raises(AssertionError, match=r"shapes differ, actual \(3,\) vs expected \(2,\)"):
        assert_within_tolerance([1, 2, 3], [1, 2], 0.1)


@pytest.mark.parametrize("tol", [-0.1, math.inf, math.nan, "1"])
def test_bad_tolerance_is_a_config_error(tol: object) -> None:
    with pytest.raises(ConfigError, match="tolerance must be a finite number"):
        assert_within_tolerance(1.0, 1.0, tol)  # type: ignore[arg-type]


def test_within_tolerance_records_the_worst_deviation_as_a_metric(rec: TestRecord) -> None:
    assert_within_tolerance([1.0, 1.004], [1.0, 1.0], 0.01, metric="final_x", unit="m")
    (m,) = rec.metrics
    assert (m.name, m.unit, m.tolerance, m.passed) == ("final_x", "m", 0.01, True)
    assert m.value == pytest.approx(0.004)
    with pytest.raises(AssertionError):
        assert_within_tolerance(2.0, 1.0, 0.01, metric="final_x", unit="m")
    (m,) = rec.metrics  # the later value replaces the earlier one
    assert m.value == pytest.approx(1.0) and m.passed is False


def test_assert_metric_uses_standard_tolerances_and_records(rec: TestRecord) -> None:
    assert_metric("position_error", 0.009)
    with pytest.raises(AssertionError) as info:
        assert_metric("velocity_tracking", 0.08)
    assert str(info.value) == (
        "metric velocity_tracking: actual 0.08 ratio, expected <= 0.05 ratio (tolerance 0.05 ratio); misses by 0.03 ratio"
    )
    with pytest.raises(AssertionError, match=r"sensor_latency: actual 0\.011 s, expected <= 0\.01 s"):
        assert_metric("sensor_latency", 0.011)
    assert_metric("collision_detection", 0.03, tolerance=0.05)
    by_name = {m.name: m for m in rec.metrics}
    assert by_name["position_error"].passed is True and by_name["position_error"].unit == "m"
    assert by_name["velocity_tracking"].passed is False  # failed values are recorded too
    assert by_name["sensor_latency"].value == 0.011
    assert by_name["collision_detection"].tolerance == 0.05


def test_assert_metric_custom_and_directions(rec: TestRecord) -> None:
    score = ValidationMetric("twin_score", 0.9, "", "higher")
    assert_metric(score, 0.95)
    with pytest.raises(AssertionError, match=r"expected >= 0\.9"):
        assert_metric(score, 0.5)
    assert_metric("heading_bias", -0.01, 0.02, unit="rad", direction="two-sided")
    with pytest.raises(AssertionError, match=r"expected \|value\| <= 0.02 rad"):
        assert_metric("heading_bias", -0.03, 0.02, unit="rad", direction="two-sided")
    with pytest.raises(AssertionError, match="is NaN"):
        assert_metric("position_error", math.nan)
    with pytest.raises(ConfigError, match="unknown metric 'bogus'"):
        assert_metric("bogus", 1.0)


def test_record_metric_and_recorder() -> None:
    record = TestRecord(nodeid="t::y")
    recorder = MetricRecorder(record)
    m = recorder("rmse", 0.02, "m", 0.05)
    assert m.passed is True and record.metrics == [m]
    recorder("latency", 0.2, "s", 0.1, "lower", "stop latency")
    assert record.metrics[-1].passed is False and record.metrics[-1].description == "stop latency"
    with pytest.raises(ConfigError, match="direction must be one of"):
        recorder("x", 1.0, direction="up")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="expected a number"):
        recorder("x", "fast")  # type: ignore[arg-type]
    # Without an active record the value is returned but stored nowhere.
    with bind_record(None):
        assert record_metric("free", 1.0).value == 1.0
        assert current_record() is None


def test_failures_hide_plugin_frames(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_simtwin.helpers.assertions import assert_metric, assert_within_tolerance

        def test_scalar():
            assert_within_tolerance(2.0, 1.0, 0.1, unit="m")

        def test_array():
            assert_within_tolerance([1.0, 3.0], [1.0, 1.0], 0.1)

        def test_metric():
            assert_metric("position_error", 0.5)
        """
    )
    result = pytester.runpytest("-p", "no:simtwin", "-p", "no:cacheprovider", "--tb=long")
    result.assert_outcomes(failed=3)
    out = result.stdout.str()
    assert "assertions.py" not in out
    assert "raise AssertionError" not in out
    result.stdout.fnmatch_lines(
        [
            '*assert_within_tolerance(2.0, 1.0, 0.1, unit="m")*',
            "*AssertionError: value: actual 2 m, expected 1 m ± 0.1 m*",
            "*AssertionError: value: 1 of 2 elements out of tolerance ± 0.1; worst at index 1*",
            "*AssertionError: metric position_error: actual 0.5 m, expected <= 0.01 m*",
        ]
    )


def test_helper_waits_hide_plugin_frames(pytester: pytest.Pytester) -> None:
    # The real ros_node fixture (a leased domain and a private RosSession; no simulator needed).
    pytester.makepyfile(
        """
        def test_nothing_arrives(ros_node):
            ros_node.wait_for_message("/never_published", "std_msgs/msg/String", timeout=0.2)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--tb=long")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    for internal in ("nodes.py", "waiting.py", "assertions.py"):
        assert internal not in out
    result.stdout.fnmatch_lines(
        [
            '*ros_node.wait_for_message("/never_published", "std_msgs/msg/String", timeout=0.2)*',
            "*WaitTimeout: timed out after 0.20 s waiting for a String on /never_published; ROS_DOMAIN_ID *",
        ]
    )
