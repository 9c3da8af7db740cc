"""The durations file kept current: ``--simtwin-store-durations`` and a note when it is stale.

``--simtwin-shard-durations FILE`` balances shards and orders an xdist run longest first (see
:mod:`pytest_simtwin.plugin.sharding`); a test the file does not know counts as the median. When a
suite grows, its new long tests then start last and run alone while the other workers idle. So the
terminal summary says how many of the run's tests the file lacks, and ``--simtwin-store-durations``
writes this run's per-test durations (setup + call + teardown, as pytest-split stores them) into
FILE as a ``{nodeid: seconds}`` map. Entries of tests this run did not run are kept, so a ``-k``
run or one shard refreshes its part without losing the rest. Under xdist the controller writes it:
it receives every worker's reports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_simtwin.errors import ConfigError
from pytest_simtwin.plugin.sharding import load_durations
from pytest_simtwin.results.records import atomic_write_text
from pytest_simtwin.runtime.options import get_option

_PHASES = ("setup", "call", "teardown")


def read_map(path: Path) -> dict[str, float] | None:
    """The ``{nodeid: seconds}`` map in ``path``; {} when it does not exist; None when it holds something else."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "tests" in data:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data.values()):
        return None
    return {str(k): float(v) for k, v in data.items()}


def merged(old: dict[str, float], measured: dict[str, float]) -> str:
    """The file's new text: ``old`` updated with ``measured`` (ms resolution, sorted: diff-friendly)."""
    out = {**old, **{k: round(v, 3) for k, v in measured.items()}}
    return json.dumps(dict(sorted(out.items())), indent=1) + "\n"


class DurationsPlugin:
    """Collects each test's duration from its reports; at the end stores them and/or reports staleness."""

    def __init__(self, config: pytest.Config) -> None:
        self.path: Path | None = get_option(config, "shard-durations")
        self.store: bool = bool(get_option(config, "store-durations"))
        self.measured: dict[str, float] = {}
        self.note: str | None = None
        if self.store and self.path is None:
            raise pytest.UsageError(
                "--simtwin-store-durations: expected a file to store the durations in, found none; name it with "
                "--simtwin-shard-durations FILE or the ini key simtwin_shard_durations (it is created if missing)"
            )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when in _PHASES:
            self.measured[report.nodeid] = self.measured.get(report.nodeid, 0.0) + float(report.duration)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(session.config, "workerinput") or self.path is None or not self.measured:
            return  # an xdist worker: its controller has every report
        if self.store:
            old = read_map(self.path)
            if old is None:
                self.note = (
                    f"simtwin durations: not stored: {self.path} is not a {{nodeid: seconds}} map (a metrics JSON?); "
                    "point --simtwin-shard-durations at a file of its own to store durations in"
                )
                return
            atomic_write_text(self.path, merged(old, self.measured))
            self.note = f"simtwin durations: stored {len(self.measured)} tests' durations in {self.path}"
            return
        known = _known(self.path)  # any format --simtwin-shard-durations reads
        missing = sorted(n for n in self.measured if n not in known)
        if missing:
            shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            self.note = (
                f"simtwin durations: {len(missing)} of {len(self.measured)} tests are not in {self.path} ({shown}); "
                "they were scheduled as if of median length. Refresh the file: add --simtwin-store-durations"
            )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.note:
            terminalreporter.write_line(self.note)


def _known(path: Path) -> dict[str, float]:
    try:
        return load_durations(path)
    except ConfigError:
        return {}
