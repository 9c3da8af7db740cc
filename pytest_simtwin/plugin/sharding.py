"""``--simtwin-shard K/N``: run one of N deterministic slices of the test suite (1-based K).

N CI jobs or N Kubernetes pods each run ``pytest --simtwin-shard K/N``; together they run every
selected test exactly once. The split depends only on the selected node ids (and on the durations
file, when given), so every shard and every xdist worker computes the same plan without talking
to the others:

* without durations, tests are ordered by a stable hash of their node id (sha1, not Python's
  salted ``hash``) and dealt round-robin, so shard sizes differ by at most one;
* with a durations file (``--simtwin-shard-durations``: a previous ``--simtwin-metrics-json``,
  a ``simtwin merge`` output, or a ``{nodeid: seconds}`` map as pytest-split writes), the longest
  tests are placed first on the least loaded shard (LPT); unknown tests count as the median.

Every shard must see the same durations file, or the shards may overlap.
Tests outside this shard are reported through ``pytest_deselected`` like ``-k`` does.

The durations file also orders the tests of an xdist run longest first (every worker computes
the same order, as xdist requires), and the controller then hands them out one at a time
(``--maxschedchunk 1`` unless given): its scheduler hands tests out in collection order, so a long
test collected last would otherwise run alone at the end while the other workers idle.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_simtwin.errors import ConfigError
from pytest_simtwin.runtime.options import get_option


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``total``."""

    index: int
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def parse_shard(text: str) -> Shard:
    """``"2/3"`` -> ``Shard(2, 3)``; a clear :class:`ConfigError` otherwise."""
    raw = text.strip()
    parts = raw.split("/")
    try:
        if len(parts) != 2:
            raise ValueError
        index, total = int(parts[0]), int(parts[1])
    except ValueError:
        raise ConfigError(
            f"invalid --simtwin-shard {text!r}: expected K/N with whole numbers, e.g. 2/3 (shard 2 of 3, "
            "counting from 1)"
        ) from None
    if total < 1 or not 1 <= index <= total:
        raise ConfigError(
            f"invalid --simtwin-shard {text!r}: expected 1 <= K <= N and N >= 1, found K={index}, N={total}. "
            "Shards count from 1; in a Kubernetes Indexed Job use $((JOB_COMPLETION_INDEX + 1))/N"
        )
    return Shard(index, total)


def stable_hash(nodeid: str) -> int:
    """A hash of the node id that is the same in every process and on every machine."""
    return int.from_bytes(hashlib.sha1(nodeid.encode("utf-8")).digest()[:8], "big")


def _durations_from(data: Any, source: Path) -> dict[str, float]:
    def bad(found: str) -> ConfigError:
        return ConfigError(
            f"durations file {source}: expected a --simtwin-metrics-json / `simtwin merge` file "
            f"(an object with a 'tests' list of records with 'nodeid' and 'wall_duration'), a list of such "
            f"records, or a {{nodeid: seconds}} object; found {found}. Point --simtwin-shard-durations at "
            "the metrics JSON of a previous run"
        )

    records: Any = data
    if isinstance(data, dict) and "tests" in data:
        records = data["tests"]
        if isinstance(records, dict):  # keyed by node id
            records = [
                {"nodeid": k, **v} if isinstance(v, dict) else {"nodeid": k, "wall_duration": v}
                for k, v in records.items()
            ]
    out: dict[str, float] = {}
    if isinstance(records, list):
        for rec in records:
            if not isinstance(rec, dict) or "nodeid" not in rec:
                raise bad(f"a list entry {str(rec)[:80]!r} without 'nodeid'")
            seconds = rec.get("wall_duration", rec.get("duration"))
            if isinstance(seconds, (int, float)) and seconds >= 0:
                out[str(rec["nodeid"])] = out.get(str(rec["nodeid"]), 0.0) + float(seconds)
        return out
    if isinstance(records, dict):
        for key, value in records.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise bad(f"{key!r}: {str(value)[:60]!r} (not a number of seconds)")
            out[str(key)] = float(value)
        return out
    raise bad(f"a JSON {type(data).__name__}")


def load_durations(path: Path) -> dict[str, float]:
    """Per-test durations in seconds from a metrics JSON, a merge output or a ``{nodeid: s}`` map."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"durations file {path} cannot be read ({exc.strerror or exc}); expected the metrics JSON of a "
            "previous run (--simtwin-metrics-json); drop --simtwin-shard-durations to split by node id only"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"durations file {path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "expected the metrics JSON of a previous run"
        ) from None
    return _durations_from(data, path)


def expected_durations(nodeids: Sequence[str], durations: Mapping[str, float] | None) -> list[float]:
    """Each node id's recorded duration; unknown ones count as the median (all 1.0 without data)."""
    known = [durations[n] for n in nodeids if durations and n in durations]
    default = statistics.median(known) if known else 1.0
    return [durations.get(n, default) if durations else 1.0 for n in nodeids]


def plan(nodeids: Sequence[str], total: int, durations: Mapping[str, float] | None = None) -> list[int]:
    """The 1-based shard of each node id (same order as ``nodeids``), balanced by expected duration."""
    if total < 1:
        raise ConfigError(f"shard count must be >= 1, found {total}")
    weights = expected_durations(nodeids, durations)
    # Heaviest first; ties (all of them without durations) in stable-hash order, then position.
    order = sorted(range(len(nodeids)), key=lambda i: (-weights[i], stable_hash(nodeids[i]), i))
    loads = [0.0] * total
    counts = [0] * total
    result = [0] * len(nodeids)
    for i in order:
        k = min(range(total), key=lambda s: (loads[s], counts[s], s))
        loads[k] += weights[i]
        counts[k] += 1
        result[i] = k + 1
    return result


def configured_shard(config: pytest.Config) -> Shard | None:
    """The shard asked for on the command line or in the ini file (validated), or None."""

    text = get_option(config, "shard")
    if not text:
        return None
    try:
        return parse_shard(str(text))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def configured_durations(config: pytest.Config) -> dict[str, float] | None:
    """The recorded per-test durations (``--simtwin-shard-durations``), or None."""

    path = get_option(config, "shard-durations")  # a Path, already resolved against cwd / ini dir
    if path is None or (not path.exists() and get_option(config, "store-durations")):
        return None  # the first --simtwin-store-durations run creates it
    try:
        return load_durations(path)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def longest_first(
    items: list[pytest.Item], durations: Mapping[str, float], workers: int = 1, maxschedchunk: int | None = None
) -> None:
    """Order ``items`` for xdist's ``load`` scheduler: the longest tests start first, on different workers.

    That scheduler gives each of the ``workers`` an initial chunk of consecutive tests (a quarter
    of its share, at least 2), then hands out the rest as workers free up. So each initial chunk
    gets one of the longest tests followed by the shortest ones, and the remaining tests follow
    longest first. Unknown tests count as the median; ties keep their collection order.
    """
    weights = expected_durations([item.nodeid for item in items], durations)
    order = sorted(range(len(items)), key=lambda i: (-weights[i], i))
    ranked = [items[i] for i in order]
    workers = max(1, workers)
    chunk = max(2, min(len(items) // workers // 4, maxschedchunk or len(items)))
    if len(items) < 2 * workers or len(items) < workers * chunk:
        items[:] = ranked
        return
    heads, rest = ranked[:workers], ranked[workers:]
    fillers = rest[len(rest) - workers * (chunk - 1) :][::-1]  # the shortest, shortest first
    rest = rest[: len(rest) - workers * (chunk - 1)]
    ordered: list[pytest.Item] = []
    for w, head in enumerate(heads):
        ordered += [head, *fillers[w * (chunk - 1) : (w + 1) * (chunk - 1)]]
    items[:] = ordered + rest


def select(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep only this shard's items in ``items`` (in collection order); deselect the rest.

    Under xdist with a durations file, the kept items are then ordered longest first.
    """
    shard = configured_shard(config)
    durations = configured_durations(config) if shard is not None or hasattr(config, "workerinput") else None
    if shard is not None:
        _keep_shard(config, items, shard, durations)
    workerinput = getattr(config, "workerinput", None)
    # on a worker "dist" reads "no" unless another mode was asked for explicitly
    if durations and workerinput is not None and config.getoption("dist", "no") in ("load", "no"):
        workers = int(workerinput.get("workercount", 1))
        # the controller hands tests out one at a time unless told otherwise (hand_out_singly)
        longest_first(items, durations, workers, config.getoption("maxschedchunk", None) or 1)


def hand_out_singly(config: pytest.Config) -> None:
    """On an xdist controller with recorded durations: ``--maxschedchunk 1`` unless one was given.

    Its ``load`` scheduler otherwise refills a worker with up to a quarter of the pending tests at
    once: ordered longest first, one worker gets the next few long tests in a row while the other
    runs the short ones (example suite, -n 2: 48-53 s against 35-37 s handed out singly). A worker
    re-parses the command line, so :func:`select` applies the same default there.
    """
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", None):
        return
    if config.getoption("dist", "no") == "load" and config.getoption("maxschedchunk", None) is None:
        config.option.maxschedchunk = 1


def _keep_shard(
    config: pytest.Config, items: list[pytest.Item], shard: Shard, durations: dict[str, float] | None
) -> None:
    shards = plan([item.nodeid for item in items], shard.total, durations)
    keep = [item for item, k in zip(items, shards, strict=True) if k == shard.index]
    dropped = [item for item, k in zip(items, shards, strict=True) if k != shard.index]
    config.stash[_SUMMARY] = (shard, len(keep), len(items), durations is not None)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep


_SUMMARY = pytest.StashKey[tuple[Shard, int, int, bool]]()


def summary(config: pytest.Config) -> str | None:
    """One line for the terminal: which shard ran and how many tests it kept."""
    info = config.stash.get(_SUMMARY, None)
    if info is None:
        return None
    shard, kept, total, balanced = info
    how = "balanced by recorded durations" if balanced else "split by node id hash"
    return f"simtwin shard {shard}: {kept} of {total} selected tests ({how})"


class ShardPlugin:
    """The hooks; ``plugin/hooks.py`` registers an instance (``config.pluginmanager.register``)."""

    @pytest.hookimpl(trylast=True)  # after -k/-m and other plugins: split exactly what would run
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        select(config, items)

    def pytest_report_collectionfinish(self, config: pytest.Config) -> str | None:
        return summary(config)
