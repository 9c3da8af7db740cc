"""Reliability campaign: the example suite N times under ``-n 8``; any non-green run or flaky test fails it.

A flake is a test whose outcome is not the same in every run, or a run that is not green. Each
run keeps its log, JUnit XML and metrics file under ``--out`` (default a temp folder) so a red run
can be read afterwards; campaign.json there summarises every run.

    .venv/bin/python benchmarks/campaign.py --runs 50            # the issue's 50 x -n 8 campaign
    .venv/bin/python benchmarks/campaign.py --runs 3 -k motion    # a short one

Exit code 0 only if every run was green with identical outcomes. Processes of a run still
alive after it ended (simulators, nodes) make the run red.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import EXAMPLE, SuiteRun, _cmdline, _proc_table, progress, run_suite

TAG = "SIMTWIN_CAMPAIGN_RUN"


def leftovers(tag: str) -> list[str]:
    """Processes still running that inherited ``SIMTWIN_CAMPAIGN_RUN=tag`` (simulators, nodes, workers)."""
    needle = f"{TAG}={tag}".encode()
    found = []
    for pid in _proc_table():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(f"{pid} {_cmdline(pid)[:80]}")
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("-k", dest="keyword", help="pytest -k expression (a subset of the suite)")
    ap.add_argument("--out", type=Path, help="keep each run's log/JUnit/metrics here (default: a temp folder)")
    ap.add_argument("--keep-going", action="store_true", help="do not stop at the first red run")
    ap.add_argument("--project", type=Path, default=EXAMPLE, help="the suite's folder (default example_project)")
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="simtwin-campaign-"))
    out.mkdir(parents=True, exist_ok=True)
    extra = ["-k", args.keyword] if args.keyword else []
    runs: list[SuiteRun] = []
    summary: list[dict[str, object]] = []
    t0 = time.monotonic()
    ok = True
    for k in range(1, args.runs + 1):
        tag = f"{os.getpid()}-{k}"
        env = {**os.environ, TAG: tag}
        run = run_suite(args.workers, out / f"run-{k:03d}", extra, cwd=args.project, env=env)
        runs.append(run)
        deadline = time.monotonic() + 5.0  # a process may still be exiting when pytest returns
        while (stray := leftovers(tag)) and time.monotonic() < deadline:
            time.sleep(0.1)
        bad = {n: o for n, o in run.outcomes.items() if o not in ("passed", "skipped", "xfailed")}
        green = run.returncode == 0 and not bad and run.tests > 0 and not stray
        summary.append(
            {
                "run": k,
                "green": green,
                "returncode": run.returncode,
                "wall_s": round(run.wall, 2),
                "tests": run.tests,
                "not_passed": bad,
                "leftover_processes": stray,
                "log": str(run.log),
            }
        )
        progress(
            f"run {k}/{args.runs}: {'green' if green else 'RED'} in {run.wall:.1f} s ({run.summary() or 'no results'})"
            + (f"; not passed: {', '.join(f'{n} {o}' for n, o in bad.items())}" if bad else "")
            + (f"; leftover processes {stray}" if stray else "")
            + ("" if green else f"; log {run.log}")
        )
        ok = ok and green
        if not green and not args.keep_going:
            break
    nodeids = sorted({n for r in runs for n in r.outcomes})
    flaky = {
        n: sorted({r.outcomes.get(n, "absent") for r in runs})
        for n in nodeids
        if len({r.outcomes.get(n, "absent") for r in runs}) > 1
    }
    greens = sum(1 for s in summary if s["green"])
    doc = {"runs": summary, "flaky": flaky, "green": greens, "total": len(summary), "workers": args.workers}
    (out / "campaign.json").write_text(json.dumps(doc, indent=1))
    progress(
        f"campaign: {greens}/{len(summary)} runs green, {len(flaky)} flaky test(s), {len(nodeids)} tests, "
        f"{(time.monotonic() - t0) / 60:.1f} min; details in {out / 'campaign.json'}"
    )
    for n, outcomes in flaky.items():
        print(f"  FLAKY {n}: {' / '.join(outcomes)}")
    return 0 if ok and not flaky and greens == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
