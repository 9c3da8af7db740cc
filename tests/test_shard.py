"""--simtwin-shard K/N and `simtwin merge`: shards partition the suite; merged results equal an unsharded run."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pytest_simtwin import cli
from pytest_simtwin.errors import ConfigError, DataError
from pytest_simtwin.plugin import sharding as shard

SUITE = """
import pytest

@pytest.mark.parametrize("n", range(7))
def test_param(n, record_metric):
    record_metric("position_error", n / 1000.0, unit="m", tolerance=0.01)

class TestGroup:
    def test_a(self): pass
    def test_b(self, record_metric):
        record_metric("velocity_tracking", 0.02, unit="ratio", tolerance=0.05)

def test_fails():
    assert 1 == 2

@pytest.mark.skip(reason="not today")
def test_skipped(): pass

def test_slow_one(): pass
"""
ALL = 12  # tests in SUITE


# -- pure functions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [("1/1", (1, 1)), ("2/3", (2, 3)), (" 3/3 ", (3, 3))])
def test_parse_shard(text: str, expected: tuple[int, int]) -> None:
    s = shard.parse_shard(text)
    assert (s.index, s.total) == expected


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "2", "a/b", "1/2/3", "-1/2", ""])
def test_parse_shard_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match=r"K/N|1 <= K <= N"):
        shard.parse_shard(text)


def _ids(n: int) -> list[str]:
    return [f"tests/test_m{i % 7}.py::test_{i}" for i in range(n)]


@pytest.mark.parametrize("total", [1, 2, 3, 5, 8])
def test_plan_partitions_evenly_without_durations(total: int) -> None:
    ids = _ids(41)
    plan = shard.plan(ids, total)
    assert set(plan) == set(range(1, min(total, len(ids)) + 1))
    sizes = [plan.count(k) for k in range(1, total + 1)]
    assert max(sizes) - min(sizes) <= 1, sizes


def test_plan_is_deterministic_and_order_independent() -> None:
    ids = _ids(30)
    first = dict(zip(ids, shard.plan(ids, 4), strict=True))
    shuffled = ids[:]
    random.Random(7).shuffle(shuffled)
    second = dict(zip(shuffled, shard.plan(shuffled, 4), strict=True))
    assert first == second
    # sha1-based, so the same on any machine / Python process (Python's hash() is salted)
    assert shard.stable_hash("tests/test_x.py::test_y") == shard.stable_hash("tests/test_x.py::test_y")
    assert shard.stable_hash("a") != shard.stable_hash("b")


def test_plan_balances_by_duration() -> None:
    ids = _ids(12)
    durations = {ids[0]: 60.0, ids[1]: 30.0, ids[2]: 30.0}
    durations.update({i: 1.0 for i in ids[3:9]})  # ids[9:] unknown: they count as the median (1 s)

    def loads(plan: list[int]) -> list[float]:
        weights = [durations.get(i, 1.0) for i in ids]
        return sorted(sum(w for w, k in zip(weights, plan, strict=True) if k == s) for s in (1, 2, 3))

    assert loads(shard.plan(ids, 3, durations)) == [34.0, 35.0, 60.0]  # the 60 s test alone: optimal
    assert max(loads(shard.plan(ids, 3))) > 60.0  # a count split puts short tests beside the 60 s one


def test_load_durations_formats(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.json"
    metrics.write_text(
        json.dumps({"format": "simtwin-metrics", "tests": [{"nodeid": "a", "wall_duration": 2.5}, {"nodeid": "b"}]})
    )
    assert shard.load_durations(metrics) == {"a": 2.5}
    mapping = tmp_path / ".test_durations"
    mapping.write_text(json.dumps({"a": 1, "b": 0.5}))
    assert shard.load_durations(mapping) == {"a": 1.0, "b": 0.5}
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match=r"not valid JSON.*line 1"):
        shard.load_durations(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"a": "slow"}))
    with pytest.raises(ConfigError, match="not a number of seconds"):
        shard.load_durations(wrong)
    with pytest.raises(ConfigError, match="cannot be read"):
        shard.load_durations(tmp_path / "missing.json")


# -- through pytest -----------------------------------------------------------------------------------


def _outcomes(reprec: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for rep in reprec.getreports("pytest_runtest_logreport"):
        if rep.when == "call" or (rep.when == "setup" and rep.outcome != "passed"):
            out[rep.nodeid] = rep.outcome
    return out


def _deselected(reprec: Any) -> list[str]:
    return [item.nodeid for call in reprec.getcalls("pytest_deselected") for item in call.items]


def test_shards_run_every_test_exactly_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    whole = _outcomes(pytester.inline_run("-p", "no:cacheprovider"))
    assert len(whole) == ALL
    seen: dict[str, str] = {}
    for k in (1, 2, 3):
        reprec = pytester.inline_run("-p", "no:cacheprovider", f"--simtwin-shard={k}/3")
        got = _outcomes(reprec)
        assert 3 <= len(got) <= 5, got  # 12 tests over 3 shards: 4 each
        assert not set(got) & set(seen), "a test ran in two shards"
        assert sorted(_deselected(reprec)) == sorted(set(whole) - set(got))
        seen.update(got)
    assert seen == whole


def test_shard_splits_what_k_selects(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    selected = set(_outcomes(pytester.inline_run("-p", "no:cacheprovider", "-k", "param")))
    assert len(selected) == 7
    union: set[str] = set()
    for k in (1, 2):
        got = set(_outcomes(pytester.inline_run("-p", "no:cacheprovider", "-k", "param", "--simtwin-shard", f"{k}/2")))
        assert got <= selected and not got & union
        union |= got
    assert union == selected


def test_shard_from_ini_and_terminal_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    pytester.makeini("[pytest]\nsimtwin_shard = 2/2\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["simtwin shard 2/2: * of 12 selected tests (split by node id hash)", "*deselected*"])


def test_bad_shard_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("-p", "no:cacheprovider", "--simtwin-shard", "4/3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--simtwin-shard '4/3'*1 <= K <= N*JOB_COMPLETION_INDEX*"])
    pytester.path.joinpath("d.json").write_text("[1, 2]")
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--simtwin-shard", "1/2", "--simtwin-shard-durations", "d.json"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*durations file*d.json*without 'nodeid'*"])


def test_same_shard_with_xdist(pytester: pytest.Pytester) -> None:
    """Every xdist worker computes the same plan, so -n 2 runs the same tests as a plain run."""
    pytester.makepyfile(test_suite=SUITE)
    plain = set(_outcomes(pytester.inline_run("-p", "no:cacheprovider", "--simtwin-shard", "2/3")))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--simtwin-shard", "2/3", "--junitxml=x.xml"
    )
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    cases = ET.parse(pytester.path / "x.xml").getroot().iter("testcase")
    ran: set[str] = set()
    for c in cases:
        module, _, cls = c.get("classname", "").partition(".")
        ran.add("::".join(p for p in (f"{module}.py", cls, c.get("name", "")) if p))
    assert ran == plain


def test_longest_first_puts_one_long_test_at_the_head_of_each_initial_chunk() -> None:
    from types import SimpleNamespace

    names = [f"t{i}" for i in range(16)]
    durations = {n: float(i) for i, n in enumerate(names)}  # t15 longest, t0 shortest
    items: list[Any] = [SimpleNamespace(nodeid=n) for n in names]
    shard.longest_first(items, durations, workers=2)
    order = [i.nodeid for i in items]
    # xdist hands each of 2 workers 2 consecutive tests first (16 // 2 // 4); each chunk gets one of
    # the two longest, filled with the shortest; the rest follow longest first.
    assert order[:4] == ["t15", "t0", "t14", "t1"]
    assert order[4:] == [f"t{i}" for i in range(13, 1, -1)]
    assert sorted(order) == sorted(names)
    few: list[Any] = [SimpleNamespace(nodeid=n) for n in ("a", "b", "c")]
    shard.longest_first(few, {"b": 2.0, "c": 1.0}, workers=2)  # too few to chunk: just longest first
    assert [i.nodeid for i in few] == ["b", "a", "c"]  # a: unknown counts as the median, 1.5


ORDER_SUITE = """
import os, time
def _mark(name):
    with open(os.environ["ORDER_LOG"], "a") as fh:
        fh.write(f"{name} {os.environ.get('PYTEST_XDIST_WORKER')}\\n")
def test_a(): _mark("a")
def test_b(): _mark("b")
def test_c(): _mark("c")
def test_d(): _mark("d"); time.sleep(0.5)
"""


def test_xdist_workers_start_the_longest_recorded_test_first(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_order=ORDER_SUITE)
    (pytester.path / "durations.json").write_text(
        json.dumps({"test_order.py::test_d": 30.0, "test_order.py::test_a": 0.1})
    )
    log = pytester.path / "order.log"
    monkeypatch.setenv("ORDER_LOG", str(log))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--simtwin-shard-durations", "durations.json"
    )
    result.assert_outcomes(passed=4)
    started = [line.split() for line in log.read_text().splitlines()]
    first_per_worker = {w: name for name, w in reversed(started)}
    assert "d" in first_per_worker.values(), started  # d (30 s recorded) opened one worker's chunk


def _stable(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The parts of a metrics file that must not depend on how the run was split."""
    volatile = {"wall_duration", "worker", "domain_id", "message"}
    return [{k: v for k, v in t.items() if k not in volatile} for t in doc["tests"]]


def test_merged_shard_metrics_equal_an_unsharded_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    pytester.inline_run("-p", "no:cacheprovider", "--simtwin-metrics-json", "whole.json")
    whole = json.loads(pytester.path.joinpath("whole.json").read_text())
    parts = []
    for k in (1, 2, 3):
        pytester.inline_run(
            "-p", "no:cacheprovider", "--simtwin-shard", f"{k}/3", "--simtwin-metrics-json", f"s{k}.json"
        )
        parts.append(pytester.path / f"s{k}.json")
    assert cli.main(["merge", "-o", str(pytester.path / "merged.json"), *map(str, parts)]) == 0
    merged = json.loads(pytester.path.joinpath("merged.json").read_text())
    assert len(whole["tests"]) == ALL
    assert _stable(merged) == _stable(whole)
    assert merged["summary"] == whole["summary"]
    assert [s["tests"] for s in merged["merged_from"]] == [4, 4, 4]
    # one HTML report of all shards, rendered from their metrics files
    assert cli.main(["merge", "-o", str(pytester.path / "merged.html"), *map(str, parts)]) == 0
    html = pytester.path.joinpath("merged.html").read_text()
    assert "<html" in html.lower() and "test_param[6]" in html and "TestGroup::test_b" in html
    # the merged file balances the next run: the shards follow the duration plan and still partition
    durations = shard.load_durations(pytester.path / "merged.json")
    assert set(durations) == {t["nodeid"] for t in whole["tests"]}
    expected = dict(zip(sorted(durations), shard.plan(sorted(durations), 3, durations), strict=True))
    union: set[str] = set()
    for k in (1, 2, 3):
        reprec = pytester.inline_run(
            "-p", "no:cacheprovider", "--simtwin-shard", f"{k}/3", "--simtwin-shard-durations", "merged.json"
        )
        got = set(_outcomes(reprec))
        assert got == {n for n, s in expected.items() if s == k}
        assert not got & union
        union |= got
    assert len(union) == ALL


def test_merge_refuses_overlapping_inputs(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    pytester.makepyfile(test_suite=SUITE)
    pytester.inline_run("-p", "no:cacheprovider", "--simtwin-shard", "1/2", "--simtwin-metrics-json", "a.json")
    a = str(pytester.path / "a.json")
    with pytest.raises(DataError, match=r"is in both .*a\.json and .*a\.json"):
        from pytest_simtwin.cli.merge import merge_metrics

        merge_metrics([Path(a), Path(a)])
    assert cli.main(["merge", "-o", str(pytester.path / "m.json"), a, a]) == 2
    assert "expected every test in exactly one input" in capsys.readouterr().err
    assert cli.main(["merge", "-o", str(pytester.path / "m.txt"), a]) == 2
    assert ".json" in capsys.readouterr().err
    assert cli.main(["merge", "-o", str(pytester.path / "m.json"), str(pytester.path / "nope.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_merge_junit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    for k in (1, 2, 3):
        pytester.inline_run("-p", "no:cacheprovider", "--simtwin-shard", f"{k}/3", f"--junitxml=j{k}.xml")
    out = pytester.path / "merged.xml"
    assert cli.main(["merge", "-o", str(out), *(str(pytester.path / f"j{k}.xml") for k in (1, 2, 3))]) == 0
    root = ET.parse(out).getroot()
    names = [c.get("name") for c in root.iter("testcase")]
    assert len(names) == len(set(names)) == ALL
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == (str(ALL), "1", "1")
    with pytest.raises(DataError, match="is in both"):
        from pytest_simtwin.cli.merge import merge_junit

        merge_junit([pytester.path / "j1.xml", pytester.path / "j1.xml"])
