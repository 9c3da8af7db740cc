"""--simtwin-store-durations keeps the durations file current; a stale one is named; -n hands tests out singly."""

from __future__ import annotations

import json

import pytest

SUITE = """
import time
def test_quick(): pass
def test_slow(): time.sleep(0.3)
def test_new(): pass
"""

CHUNK_PROBE = """
def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):  # the xdist controller, or a run without -n
        with open("chunk.txt", "w") as fh:
            fh.write(repr(session.config.getoption("maxschedchunk")))
"""


def _write(pytester: pytest.Pytester, name: str, doc: object) -> None:
    (pytester.path / name).write_text(json.dumps(doc))


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_store_creates_and_merges_the_map(pytester: pytest.Pytester, workers: list[str]) -> None:
    pytester.makepyfile(test_d=SUITE)
    _write(pytester, "d.json", {"gone.py::test_old": 4.0, "test_d.py::test_quick": 9.0})
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", *workers, "--simtwin-shard-durations=d.json", "--simtwin-store-durations"
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["simtwin durations: stored 3 tests' durations in *d.json"])
    stored = json.loads((pytester.path / "d.json").read_text())
    assert set(stored) == {"gone.py::test_old", "test_d.py::test_quick", "test_d.py::test_slow", "test_d.py::test_new"}
    assert stored["gone.py::test_old"] == 4.0  # a test this run did not run keeps its entry
    assert stored["test_d.py::test_quick"] < 1.0  # measured, not the old 9 s
    assert 0.3 <= stored["test_d.py::test_slow"] < 5.0  # setup + call + teardown


def test_store_creates_a_missing_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_d=SUITE)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--simtwin-shard-durations=new.json", "--simtwin-store-durations", "-k", "quick"
    )
    result.assert_outcomes(passed=1, deselected=2)
    assert list(json.loads((pytester.path / "new.json").read_text())) == ["test_d.py::test_quick"]


def test_store_leaves_a_metrics_json_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_d=SUITE)
    metrics = {"tests": [{"nodeid": "test_d.py::test_slow", "wall_duration": 2.0}]}
    _write(pytester, "metrics.json", metrics)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--simtwin-shard-durations=metrics.json", "--simtwin-store-durations"
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["simtwin durations: not stored: *metrics.json is not a {nodeid: seconds} map*"])
    assert json.loads((pytester.path / "metrics.json").read_text()) == metrics


def test_store_without_a_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_d=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--simtwin-store-durations")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--simtwin-store-durations: expected a file*--simtwin-shard-durations FILE*"])


def test_a_stale_durations_file_is_named(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_d=SUITE)
    _write(pytester, "d.json", {"test_d.py::test_quick": 0.1, "test_d.py::test_slow": 0.3})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--simtwin-shard-durations=d.json")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["simtwin durations: 1 of 3 tests are not in *d.json (test_d.py::test_new)*add --simtwin-store-durations"]
    )
    _write(pytester, "d.json", {"test_d.py::test_quick": 0.1, "test_d.py::test_slow": 0.3, "test_d.py::test_new": 0})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--simtwin-shard-durations=d.json")
    result.assert_outcomes(passed=3)
    assert "simtwin durations" not in result.stdout.str()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-n", "2", "--simtwin-shard-durations=d.json"], "1"),  # durations: handed out singly
        (["-n", "2", "--simtwin-shard-durations=d.json", "--maxschedchunk=3"], "3"),  # the user's choice stands
        (["-n", "2"], "None"),  # no durations: xdist's own batching
        (["-n", "2", "--dist=loadfile", "--simtwin-shard-durations=d.json"], "None"),  # another scheduler
    ],
    ids=["durations", "explicit", "none", "loadfile"],
)
def test_the_controller_hands_tests_out_singly_with_durations(
    pytester: pytest.Pytester, args: list[str], expected: str
) -> None:
    pytester.makepyfile(test_d=SUITE)
    pytester.makeconftest(CHUNK_PROBE)
    _write(pytester, "d.json", {"test_d.py::test_slow": 0.3})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=3)
    assert (pytester.path / "chunk.txt").read_text() == expected
