"""``simtwin merge``: join the results of shards (CI jobs, Kubernetes pods) into one file.

``simtwin merge -o merged.json shard-*/metrics.json`` joins ``--simtwin-metrics-json`` files;
``simtwin merge -o merged.html shard-*/metrics.json`` renders one HTML report (plots, metrics,
baseline verdicts; the run dashboard first) from them and, when ``$GITHUB_STEP_SUMMARY`` is set,
appends the merged run's Markdown summary there; ``simtwin merge -o merged.xml shard-*/junit.xml`` joins JUnit XML
files (``--junitxml``). The kind
follows the output's extension. A test present in two inputs is an error (the shards overlapped,
or a file was given twice): silently keeping one would hide it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_simtwin.errors import DataError


def merge_metrics(inputs: Sequence[Path]) -> dict[str, Any]:
    """The metrics document of all inputs' tests; :class:`DataError` on a duplicate node id."""
    from pytest_simtwin.results.records import ResultsCollector, TestRecord, load_metrics_file

    seen: dict[str, Path] = {}
    records: dict[str, TestRecord] = {}
    sources: list[dict[str, Any]] = []
    for path in inputs:
        recs = load_metrics_file(path)
        for rec in recs:
            if rec.nodeid in seen:
                raise DataError(
                    f"test {rec.nodeid!r} is in both {seen[rec.nodeid]} and {path}: expected every test in "
                    "exactly one input. Shards overlap when they used different --simtwin-shard-durations files "
                    "or different test selections; check that each file is given once"
                )
            seen[rec.nodeid] = path
            records[rec.nodeid] = rec
        sources.append({"path": str(path), "tests": len(recs)})
    collector = ResultsCollector()
    collector.records = records
    doc = collector.to_dict()
    doc["merged_from"] = sources
    return doc


def _junit_suites(path: Path) -> list[Any]:
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise DataError(f"JUnit file {path} does not exist: expected a file written by pytest --junitxml") from None
    except (OSError, ET.ParseError) as exc:
        raise DataError(
            f"JUnit file {path} is not valid XML ({exc}): expected a file written by pytest --junitxml"
        ) from None
    if root.tag == "testsuite":
        return [root]
    if root.tag == "testsuites":
        return list(root.iter("testsuite"))
    raise DataError(f"{path} is not a JUnit XML file: expected a <testsuites> or <testsuite> root, found <{root.tag}>")


def merge_junit(inputs: Sequence[Path]) -> str:
    """One ``<testsuites>`` holding every input's suites, with totals; duplicates are an error."""
    import xml.etree.ElementTree as ET

    out = ET.Element("testsuites", {"name": "pytest tests"})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    time_total = 0.0
    seen: dict[tuple[str, str], Path] = {}
    for path in inputs:
        for suite in _junit_suites(path):
            for case in suite.iter("testcase"):
                key = (case.get("classname", ""), case.get("name", ""))
                if key in seen:
                    raise DataError(
                        f"test case {key[0]}::{key[1]} is in both {seen[key]} and {path}: expected every test in "
                        "exactly one input (overlapping shards, or a file given twice)"
                    )
                seen[key] = path
            for name in totals:
                totals[name] += int(suite.get(name, "0") or 0)
            time_total += float(suite.get("time", "0") or 0)
            out.append(suite)
    for name, value in totals.items():
        out.set(name, str(value))
    out.set("time", f"{time_total:.3f}")
    return ET.tostring(out, encoding="unicode", xml_declaration=True) + "\n"


def run(args: argparse.Namespace) -> int:
    from pytest_simtwin.results.records import atomic_write_text

    output: Path = args.output
    inputs: list[Path] = list(args.inputs)
    if output.resolve() in {p.resolve() for p in inputs}:
        raise DataError(f"the output {output} is also an input: write the merged file elsewhere")
    suffix = output.suffix.lower()
    if suffix == ".json":
        doc = merge_metrics(inputs)
        atomic_write_text(output, json.dumps(doc, indent=1, sort_keys=True) + "\n")
        summary = doc["summary"]
        outcomes = ", ".join(f"{n} {k}" for k, n in sorted(summary["outcomes"].items())) or "no tests"
        detail = "; ".join(f"{s['path']}: {s['tests']}" for s in doc["merged_from"])
        print(f"simtwin merge: {summary['tests']} tests ({outcomes}) from {len(inputs)} files -> {output} [{detail}]")
    elif suffix in (".html", ".htm"):
        from pytest_simtwin.results.dashboard import relocate_artifacts, write_step_summary
        from pytest_simtwin.results.html import standalone
        from pytest_simtwin.results.records import load_metrics_file

        merge_metrics(inputs)  # the duplicate check
        records = []
        for path in inputs:  # per input: its bundles are found next to it (a downloaded CI artifact)
            recs = load_metrics_file(path)
            relocate_artifacts(recs, path)
            records += recs
        records.sort(key=lambda r: r.nodeid)
        # the merge job's page on GitHub gets the whole run's summary (each shard's job has its own)
        write_step_summary(records)
        title = f"pytest-simtwin: {len(records)} tests from {len(inputs)} shards"
        page = standalone(
            records, title=title, source=", ".join(str(p) for p in inputs), report_dir=output.absolute().parent
        )
        atomic_write_text(output, page)
        print(f"simtwin merge: HTML report of {len(records)} tests from {len(inputs)} files -> {output}")
    elif suffix == ".xml":
        atomic_write_text(output, merge_junit(inputs))
        print(f"simtwin merge: JUnit XML of {len(inputs)} files -> {output}")
    else:
        raise DataError(
            f"cannot tell what to merge from the output name {output}: expected a .json (metrics files from "
            "--simtwin-metrics-json), .html (one report from metrics files) or .xml (JUnit files from --junitxml) output"
        )
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "merge",
        help="join the metrics JSON (or JUnit XML) files of test shards into one",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="merged file: .json (metrics), .html (report from metrics files) or .xml (JUnit)",
    )
    parser.add_argument("inputs", type=Path, nargs="+", help="the shards' files")
    parser.set_defaults(func=run)
