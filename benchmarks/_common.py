"""Shared helpers of the comparison benchmarks (bench_*.py) and of run_all.py / campaign.py.

Every bench script measures one thing against its comparison in one run and reports ``Ratio``
records (printed, and written as JSON with ``--json`` so run_all.py can collect them). Nothing here
touches ROS at import time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "example_project"
PYTHON = sys.executable

# The measured processes cache bytecode as a user's Python does. Some sandboxes (this one) export
# PYTHONDONTWRITEBYTECODE=1: every pytest process then recompiles the plugin and pytest re-rewrites
# its modules (~0.3 s per process here), a cost no installed plugin pays (pip compiles a wheel's
# modules; pytest caches what it rewrote). Removed for every process the benchmarks start.
BYTECODE_FLAG_REMOVED = os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None


@dataclass
class Ratio:
    """One measured comparison: ``value`` (a ratio) against ``target``; ``skipped`` says why not measured."""

    key: str
    label: str
    value: float | None
    target: float | None
    higher_is_better: bool = True
    detail: str = ""
    skipped: str | None = None
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.skipped is not None or self.value is None:
            return "skipped"
        if self.target is None:
            return "info"
        ok = self.value >= self.target if self.higher_is_better else self.value <= self.target
        return "meets" if ok else "MISSES"

    def line(self) -> str:
        if self.skipped is not None or self.value is None:
            return f"{self.label}: skipped ({self.skipped})"
        target = ""
        if self.target is not None:
            target = f"; target {'>=' if self.higher_is_better else '<='} {self.target:g} -> {self.verdict}"
        return f"{self.label}: {self.value:.2f}{target}" + (f"  [{self.detail}]" if self.detail else "")


def arg_parser(doc: str | None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few iterations: checks the script, numbers are rough")
    ap.add_argument("--json", type=Path, help="also write the results as JSON (run_all.py collects them)")
    return ap


def emit(results: Sequence[Ratio], json_path: Path | None, extra: Mapping[str, Any] | None = None) -> None:
    print("\n== results ==")
    for r in results:
        print(f"  {r.line()}")
    if json_path is not None:
        doc = {"results": [asdict(r) for r in results], "load_end": os.getloadavg()[0], **(extra or {})}
        tmp = json_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.replace(json_path)


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {message}", flush=True)


def stats(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "median": statistics.median(ordered),
        "p90": p90,
        "min": ordered[0],
        "max": ordered[-1],
    }


def fmt_stats(s: Mapping[str, float], unit: str = "s") -> str:
    if not s.get("n"):
        return "no samples"
    return f"median {s['median']:.3f} {unit}, p90 {s['p90']:.3f}, max {s['max']:.3f} (n={int(s['n'])})"


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def machine_facts() -> dict[str, Any]:
    """CPU model, cores, RAM, OS, Python and the versions that the numbers depend on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)),
        "ram_gib": round(ram, 1),
        "os": os_name,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "mujoco": _version("mujoco"),
        "rclpy": _version("ros-kilted-rclpy"),
        "pytest": _version("pytest"),
        "pytest_xdist": _version("pytest-xdist"),
        "pytest_simtwin": _version("pytest-simtwin"),
        "loadavg": os.getloadavg(),
        "bytecode_flag_removed": BYTECODE_FLAG_REMOVED,
        **speed_reference(),
    }


def speed_reference() -> dict[str, float]:
    """Two fixed workloads that tell machines of one kind apart (their speed differs ~3x on these VMs).

    ``python_loop_ms``: best of 3 of summing ``range(5_000_000)`` in this process; ``python_start_ms``:
    median of 5 ``python -c pass`` in the venv (the ROS wheels' .pth re-executes Python once).
    """
    loops = []
    for _ in range(3):
        t0, total = time.perf_counter(), 0
        for i in range(5_000_000):
            total += i
        loops.append(time.perf_counter() - t0)
    starts = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([PYTHON, "-c", "pass"], check=False, capture_output=True)
        starts.append(time.perf_counter() - t0)
    return {"python_loop_ms": round(min(loops) * 1000), "python_start_ms": round(statistics.median(starts) * 1000)}


def settings(backend: str, sim: Any, artifacts: Path, timeout: float = 60.0) -> Any:
    """Plugin Settings for a SimSession outside pytest (the default domain range, leased)."""
    from pytest_simtwin.ros.domains import DEFAULT_DOMAIN_RANGE, parse_domain_range
    from pytest_simtwin.runtime.settings import Settings

    return Settings(
        backend=backend,
        sim=sim,
        domain_ids=tuple(parse_domain_range(DEFAULT_DOMAIN_RANGE)),
        reset="test",
        timeout=timeout,
        artifacts=artifacts,
    )


# -- process-tree memory sampling ---------------------------------------------------------------
def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, comm) for every process (one pass over /proc)."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.find("(") + 1 : raw.rfind(")")]
        fields = raw[raw.rfind(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), comm)
    return table


def _rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` so far (/proc/<pid>/stat), None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, ValueError, IndexError):
        return None


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def classify(cmdline: str) -> str:
    if "pytest_simtwin.sim.forkserver" in cmdline:
        return "fork server"
    if "pytest_simtwin.sim" in cmdline or "simtwin-sim" in cmdline:
        return "simulator"
    if "execnet" in cmdline or "exec(eval(sys.stdin.readline()))" in cmdline or "xdist" in cmdline:
        return "worker"
    if "pytest" in cmdline:
        return "controller"
    return "other"


@dataclass
class TreeSample:
    """Peak RSS (MiB) and CPU seconds (as last sampled) per process of a process tree, with each process's kind."""

    peaks: dict[int, float] = field(default_factory=dict)
    kinds: dict[int, str] = field(default_factory=dict)
    cpu: dict[int, float] = field(default_factory=dict)
    peak_total: float = 0.0

    def cpu_by_kind(self) -> dict[str, float]:
        """CPU seconds per kind of process (each process's last sample: up to one interval is missed)."""
        out: dict[str, float] = {}
        for pid, seconds in self.cpu.items():
            kind = self.kinds.get(pid, "other")
            out[kind] = out.get(kind, 0.0) + seconds
        return out

    def by_kind(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for pid, peak in self.peaks.items():
            out.setdefault(self.kinds.get(pid, "other"), []).append(peak)
        return out


@contextmanager
def sample_tree(root: int, interval: float = 0.25) -> Iterator[TreeSample]:
    """Sample the RSS of ``root`` and all its descendants in a thread until the block ends."""
    result = TreeSample()
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            table = _proc_table()
            children: dict[int, list[int]] = {}
            for pid, (ppid, _) in table.items():
                children.setdefault(ppid, []).append(pid)
            todo, tree = [root], []
            while todo:
                pid = todo.pop()
                tree.append(pid)
                todo.extend(children.get(pid, []))
            total = 0.0
            for pid in tree:
                rss = _rss_mib(pid)
                if rss is None:
                    continue
                total += rss
                if pid not in result.kinds:
                    result.kinds[pid] = classify(_cmdline(pid))
                result.peaks[pid] = max(result.peaks.get(pid, 0.0), rss)
                cpu = _cpu_s(pid)
                if cpu is not None:
                    result.cpu[pid] = cpu
            result.peak_total = max(result.peak_total, total)
            stop.wait(interval)

    thread = threading.Thread(target=loop, name="rss-sampler", daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()


# -- running the example suite -------------------------------------------------------------------
@dataclass
class SuiteRun:
    """One pytest run of a suite: wall time, exit code, per-test outcomes and metric values."""

    workers: int
    wall: float
    returncode: int
    outcomes: dict[str, str]
    metrics: dict[str, dict[str, dict[str, Any]]]  # nodeid -> name -> MetricRecord.to_dict()
    memory: TreeSample
    log: Path

    @property
    def tests(self) -> int:
        return len(self.outcomes)

    @property
    def per_minute(self) -> float:
        return 60.0 * self.tests / self.wall if self.wall > 0 else 0.0

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for outcome in self.outcomes.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        return ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))


def run_suite(
    workers: int,
    out_dir: Path,
    args: Sequence[str] = (),
    cwd: Path = EXAMPLE,
    timeout: float = 900.0,
    env: Mapping[str, str] | None = None,
) -> SuiteRun:
    """Run pytest (``-n workers``; 0 = no xdist) in ``cwd`` with its metrics file, artifacts and log in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / "metrics.json"
    log = out_dir / "pytest.log"
    argv = [PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    if workers:
        argv += ["-n", str(workers)]
    argv += [
        "--simtwin-metrics-json",
        str(metrics_path),
        "--simtwin-artifacts",
        str(out_dir / "artifacts"),
        "--junitxml",
        str(out_dir / "junit.xml"),
        *args,
    ]
    with log.open("wb") as fh:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, env=dict(env or os.environ))
        with sample_tree(proc.pid) as memory:
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
        wall = time.monotonic() - t0
    outcomes: dict[str, str] = {}
    metrics: dict[str, dict[str, dict[str, Any]]] = {}
    if metrics_path.exists():
        doc = json.loads(metrics_path.read_text())
        for test in doc.get("tests", []):
            outcomes[test["nodeid"]] = test["outcome"]
            metrics[test["nodeid"]] = {m["name"]: m for m in test.get("metrics", [])}
    return SuiteRun(workers, wall, rc, outcomes, metrics, memory, log)


def compare_runs(a: SuiteRun, b: SuiteRun) -> list[str]:
    """Differences between two runs: outcomes per test, and metric values outside the baseline band.

    The band is the baseline module's (``baseline.band_for``): max(5 % of the value, 1 % of the
    tolerance) unless the metric sets ``baseline_rtol`` / ``baseline_atol`` (noisy sensors do).
    """
    from pytest_simtwin.results.baselines import band_for
    from pytest_simtwin.results.metrics import MetricRecord

    diffs: list[str] = []
    for nodeid in sorted(set(a.outcomes) | set(b.outcomes)):
        oa, ob = a.outcomes.get(nodeid, "absent"), b.outcomes.get(nodeid, "absent")
        if oa != ob:
            diffs.append(f"{nodeid}: {oa} with -n {a.workers}, {ob} with -n {b.workers}")
            continue
        ma, mb = a.metrics.get(nodeid, {}), b.metrics.get(nodeid, {})
        for name in sorted(set(ma) | set(mb)):
            if name not in ma or name not in mb:
                diffs.append(f"{nodeid}: metric {name} only in one run")
                continue
            ra, rb = MetricRecord.from_dict(ma[name]), MetricRecord.from_dict(mb[name])
            va, vb, band = ra.value, rb.value, band_for(ra, rb)
            if abs(va - vb) > band:
                diffs.append(
                    f"{nodeid}: {name} {va:.6g} (-n {a.workers}) vs {vb:.6g} (-n {b.workers}), band {band:.3g}"
                )
    return diffs
