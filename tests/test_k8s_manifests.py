"""k8s/: the manifests pass a Kubernetes schema check, and the pods' scripts shard and merge for real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

K8S = Path(__file__).resolve().parent.parent / "k8s"
MANIFESTS = ("test-shards-job.yaml", "merge-job.yaml")

def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def _job(name: str, job: str) -> dict[str, Any]:
    (doc,) = [d for d in _docs(name) if d["kind"] == "Job" and d["metadata"]["name"] == job]
    return doc


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_matches_the_kubernetes_schema(name: str) -> None:
    kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (in the dev extras)")
    version = "1.31.0"  # backoffLimitPerIndex / FailIndex are GA from 1.33, beta (on) from 1.29
    for doc in _docs(name):
        kv.validate(doc, version, strict=True)  # raises ValidationError naming the bad field
        kv.validate(doc, kv.latest_version(), strict=True)


def test_schema_check_catches_mistakes() -> None:
    """The check above can fail: a misspelt field and a wrong type are rejected."""
    kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (in the dev extras)")
    job = _job("test-shards-job.yaml", "simtwin-tests")
    bad = json.loads(json.dumps(job))
    bad["spec"]["completionsMode"] = bad["spec"].pop("completionMode")
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, kv.latest_version(), strict=True)
    bad = json.loads(json.dumps(job))
    bad["spec"]["completions"] = "three"
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, kv.latest_version(), strict=True)


def test_indexed_job_shape() -> None:
    job = _job("test-shards-job.yaml", "simtwin-tests")
    spec = job["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == int(env["SIMTWIN_SHARDS"])
    assert pod["restartPolicy"] == "Never"  # required by podFailurePolicy
    script = container["args"][0]
    assert "K=$((JOB_COMPLETION_INDEX + 1))" in script  # 1-based shards, documented in the file
    assert '--simtwin-shard="$K/$SIMTWIN_SHARDS"' in script
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]}
    (pvc,) = [d for d in _docs("test-shards-job.yaml") if d["kind"] == "PersistentVolumeClaim"]
    assert mounts["results"] == "/results" and claims["results"] == pvc["metadata"]["name"]
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]  # every shard pod writes at once
    merge = _job("merge-job.yaml", "simtwin-merge")
    assert (
        merge["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    )


def test_kustomization_builds() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the kustomization is checked where it is")
    out = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    (job,) = [d for d in docs if d["kind"] == "Job"]
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == int(env["SIMTWIN_SHARDS"])


SUITE = """
import pytest

@pytest.mark.parametrize("n", range(8))
def test_n(n, record_metric):
    record_metric("position_error", n / 1000.0, unit="m", tolerance=0.01)
"""


def _run_script(script: str, cwd: Path, results: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a pod's shell script here: /results -> a temp folder, the venv's pytest/simtwin on PATH."""
    bindir = str(Path(sys.executable).parent)
    full_env = {**os.environ, **env, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run(
        ["/bin/sh", "-c", script.replace("/results", str(results))],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_pod_scripts_shard_and_merge_for_real(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """Each shard pod's command on a small suite, then the merge pod's: every test exactly once."""
    pytester.makepyfile(test_suite=SUITE)
    results = tmp_path / "results"
    job = _job("test-shards-job.yaml", "simtwin-tests")
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    shards = int(env["SIMTWIN_SHARDS"])
    env["SIMTWIN_WORKERS"] = "0"  # no xdist here: the point is the shard split, not the parallelism
    env["SIMTWIN_STATE_DIR"] = str(tmp_path / "state")
    env["MPLCONFIGDIR"] = str(tmp_path / "mpl")
    for index in range(shards):
        run = _run_script(container["args"][0], pytester.path, results, {**env, "JOB_COMPLETION_INDEX": str(index)})
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert f"shard {index + 1}/{shards}" in run.stdout
        for name in ("metrics.json", "junit.xml", "report.html"):
            assert (results / f"shard-{index + 1}" / name).is_file()
    merge = _job("merge-job.yaml", "simtwin-merge")["spec"]["template"]["spec"]["containers"][0]
    run = _run_script(merge["args"][0], pytester.path, results, {})
    assert run.returncode == 0, run.stdout + run.stderr
    merged = json.loads((results / "merged" / "metrics.json").read_text())
    nodeids = [t["nodeid"] for t in merged["tests"]]
    assert sorted(nodeids) == sorted(f"test_suite.py::test_n[{n}]" for n in range(8))
    assert merged["summary"]["outcomes"] == {"passed": 8}
    assert (results / "merged" / "junit.xml").is_file()
    assert "test_suite.py::test_n[7]" in (results / "merged" / "report.html").read_text()
