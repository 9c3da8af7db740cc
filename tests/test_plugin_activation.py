"""The plugin stays out of runs whose tests do not use it, and does everything in runs whose tests do.

A collected test that uses one of the plugin's fixtures or the ``simtwin`` marker activates it
(plugin/hooks.py): the settings, the backend and the reporting load then. An xdist controller
activates at the first report that carries a record; the reports it saw before are replayed. The
job summary (``$GITHUB_STEP_SUMMARY``) is written by the active reporting only, so it tells which.
"""

from __future__ import annotations

from pathlib import Path

import pytest

PLAIN = "def test_plain():\n    assert True\n"
WITH_METRIC = (
    "def test_metric(record_metric):\n"
    "    record_metric('error_m', 0.25, unit='m')\n"
    "\n"
    "def test_plain_too():\n"
    "    assert True\n"
)


def _summary(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[pytest.RunResult, Path]:
    out = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(out))
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args), out


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_a_run_using_a_fixture_reports_every_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    pytester.makepyfile(test_a=PLAIN, test_b=WITH_METRIC)
    result, out = _summary(pytester, monkeypatch, *workers, "--simtwin-metrics-json", "m.json")
    result.assert_outcomes(passed=3)
    assert out.read_text().startswith("## pytest-simtwin: 3 tests"), out.read_text()


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_the_reporting_activates_without_a_reporting_option(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    # No --simtwin-* option: the record_metric test alone activates the reporting (the controller's at its record).
    pytester.makepyfile(test_a=PLAIN, test_b=WITH_METRIC)
    result, out = _summary(pytester, monkeypatch, *workers)
    result.assert_outcomes(passed=3)
    text = out.read_text()
    assert text.startswith("## pytest-simtwin: 3 tests"), text


def test_a_run_using_nothing_of_the_plugin_leaves_no_trace(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_a=PLAIN)
    result, out = _summary(pytester, monkeypatch, "-n", "2")
    result.assert_outcomes(passed=1)
    assert not out.exists()


def test_a_bad_option_is_still_a_usage_error_without_simulation_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a=PLAIN)
    for args, expected in (
        (["--simtwin-backend", "nonsense"], "invalid choice: 'nonsense'"),
        (["--simtwin-rtf", "-1"], "expected a real-time factor >= 0"),
        (["--simtwin-backend", "process"], "needs --simtwin-command"),
        (["--simtwin-world", "missing.sdf"], "does not exist"),
        (["--simtwin-record-topics", "no-slash std_msgs/msg/String"], "expected '/topic package/msg/Type'"),
    ):
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, (args, result.stderr.str())
        assert expected in result.stderr.str(), (args, result.stderr.str())
