"""k8s/ simulator fleet manifests: schema-valid, numeric ROS_DOMAIN_ID from the pod index, probes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

K8S = Path(__file__).resolve().parent.parent / "k8s"
FLEET = ("sim-fleet-statefulset.yaml", "sim-batch-job.yaml")


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


@pytest.mark.parametrize("name", FLEET)
def test_fleet_manifest_matches_the_kubernetes_schema(name: str) -> None:
    kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (in the dev extras)")
    for doc in _docs(name):
        kv.validate(doc, "1.31.0", strict=True)
        kv.validate(doc, kv.latest_version(), strict=True)


def _sim_container(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    (workload,) = [d for d in _docs(name) if d["kind"] in ("StatefulSet", "Job")]
    pod = workload["spec"]["template"]["spec"]
    sims = [c for c in pod.get("containers", []) + pod.get("initContainers", []) if c["name"] == "sim"]
    return workload, sims[0]


@pytest.mark.parametrize("name", FLEET)
def test_sim_has_resources_and_a_topic_readiness_probe(name: str) -> None:
    _, sim = _sim_container(name)
    assert {"cpu", "memory"} <= set(sim["resources"]["requests"]) and {"cpu", "memory"} <= set(
        sim["resources"]["limits"]
    )
    probe = sim.get("readinessProbe") or sim.get("startupProbe")
    assert probe is not None
    assert "simtwin probe" in " ".join(probe["exec"]["command"]) and "/odom" in " ".join(probe["exec"]["command"])


@pytest.mark.parametrize(("index", "domain"), [("0", "1"), ("7", "8"), ("100", "101"), ("101", "1"), ("250", "49")])
def test_domain_from_pod_index_is_a_safe_number(index: str, domain: str) -> None:
    """Run the container's own shell snippet (up to the exec) with a pod index and read the domain."""
    _, sim = _sim_container("sim-fleet-statefulset.yaml")
    script = sim["args"][0].split("exec ", 1)[0]
    env = {**os.environ, "POD_INDEX": index, "HOSTNAME": f"simtwin-fleet-{index}"}
    bindir = Path(sys.executable).parent
    env["PATH"] = f"{bindir}:{env['PATH']}"
    out = subprocess.run(
        ["/bin/sh", "-c", script + 'echo "$ROS_DOMAIN_ID $FASTDDS_DEFAULT_PROFILES_FILE $GZ_PARTITION"'],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0] == domain
    assert Path(out[1]).is_file()  # the fast-discovery profile the simulator and the workload share
    assert out[2] == f"simtwin-fleet-{index}"


def test_statefulset_reads_the_pod_index_label_not_the_name() -> None:
    workload, sim = _sim_container("sim-fleet-statefulset.yaml")
    env = {e["name"]: e for e in sim["env"]}
    assert env["POD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['apps.kubernetes.io/pod-index']"
    assert workload["spec"]["podManagementPolicy"] == "Parallel"


def test_batch_job_runs_the_sim_as_a_native_sidecar() -> None:
    job, sim = _sim_container("sim-batch-job.yaml")
    assert job["spec"]["completionMode"] == "Indexed"
    assert sim["restartPolicy"] == "Always"
    assert "JOB_COMPLETION_INDEX" in sim["args"][0]
    json.dumps(job)  # plain data, nothing YAML-specific
