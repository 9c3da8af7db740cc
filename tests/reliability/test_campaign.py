"""The reliability campaign (benchmarks/campaign.py) on the example suite: a few repeats under -n 8.

Marked ``slow`` (minutes): run it as its own stage with ``pytest -m slow tests/reliability``. The
full 50-run campaign is ``.venv/bin/python benchmarks/campaign.py --runs 50``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_example_suite_three_times_under_n8_without_flakes(tmp_path: Path) -> None:
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "campaign.py"),
            "--runs",
            "3",
            "--workers",
            "8",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"  # per-run lines name the tests that were not green
    doc = json.loads((tmp_path / "campaign.json").read_text())
    assert doc["green"] == doc["total"] == 3 and not doc["flaky"], doc
    assert all(run["tests"] > 20 and not run["leftover_processes"] for run in doc["runs"]), doc
