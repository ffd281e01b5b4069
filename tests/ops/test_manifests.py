"""Every rendered Kubernetes manifest is schema-valid (Kubernetes and CRDs, offline) and safe by default."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from services.ingest.config import load_sources
from services.scoring.config import load_config
from shared import topics
from tests.ops.conftest import DEPLOY

OVERLAYS = ["dev", "prod"]
WORKLOADS = {"Deployment", "StatefulSet"}
COMMANDS = {
    "mews-ingest": ["ingest", "api"],
    "mews-ingest-poller": ["ingest", "api", "--sources", "/etc/mews/sources.toml"],
    "mews-scoring": ["scoring", "run"],
    "mews-notify": ["notify", "run"],
}
PORTS = {"mews-ingest": 8001, "mews-ingest-poller": 8001, "mews-scoring": 8002, "mews-notify": 8003}


KUBERNETES_LAYOUT = "{{ .ResourceKind }}{{ .KindSuffix }}.json"  # kubeconform's own naming
CRD_LAYOUT = "{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"  # as crd_schemas.py writes


def kubeconform(tools: dict[str, Path], path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(tools["kubeconform"]),
            "-strict",
            "-summary",
            "-output",
            "text",
            "-schema-location",
            f"{tools['kubernetes_schemas']}/{KUBERNETES_LAYOUT}",
            "-schema-location",
            f"{tools['crd_schemas']}/{CRD_LAYOUT}",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def documents(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_overlay_passes_schema_validation(
    overlay: str, render: Callable[[str], str], tools: dict[str, Path], tmp_path: Path
) -> None:
    rendered = tmp_path / f"{overlay}.yaml"
    rendered.write_text(render(overlay))
    result = kubeconform(tools, rendered)
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = {doc["kind"] for doc in documents(rendered.read_text())}
    # Every kind we ship was checked against a schema, none skipped for lack of one.
    assert "Skipped: 0" in result.stdout, result.stdout
    assert "Errors: 0" in result.stdout, result.stdout
    assert {
        "Kafka",
        "KafkaNodePool",
        "KafkaTopic",
        "ServiceMonitor",
        "PrometheusRule",
        "StatefulSet",
        "Deployment",
        "NetworkPolicy",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    } <= kinds


def test_validation_rejects_an_unknown_field_and_a_wrong_type(tools: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicaz: 1\n"
        "  selector: {matchLabels: {a: b}}\n"
        "  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}\n---\n"
        "apiVersion: kafka.strimzi.io/v1\nkind: KafkaTopic\nmetadata: {name: t}\nspec: {partitions: six}\n---\n"
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: s}\n"
        "spec: {selector: {}, endpoints: [{port: http, intervall: 30s}]}\n"
    )
    result = kubeconform(tools, broken)
    assert result.returncode != 0
    assert "replicaz" in result.stdout
    assert "partitions" in result.stdout
    assert "intervall" in result.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workloads_run_non_root_with_read_only_root_and_writable_tmp(
    overlay: str, render: Callable[[str], str]
) -> None:
    for doc in documents(render(overlay)):
        if doc["kind"] not in WORKLOADS:
            continue
        pod = doc["spec"]["template"]["spec"]
        name = doc["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["automountServiceAccountToken"] is False, name
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod.get("initContainers", []) + pod["containers"]:
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["capabilities"]["drop"] == ["ALL"], name
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert tmp, f"{name}/{container['name']} lacks /tmp"
            assert "emptyDir" in volumes[tmp[0]["name"]], f"{name}/{container['name']}: /tmp is not an emptyDir"
            assert container["resources"]["requests"], name
            assert container["resources"]["limits"]["memory"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_run_their_command_with_probes_on_their_port(overlay: str, render: Callable[[str], str]) -> None:
    workloads = {doc["metadata"]["name"]: doc for doc in documents(render(overlay)) if doc["kind"] in WORKLOADS}
    assert set(workloads) == set(COMMANDS)
    for name, doc in workloads.items():
        container = doc["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == COMMANDS[name]
        assert container["ports"][0]["containerPort"] == PORTS[name]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        env = {e["name"]: e for e in container["env"]}
        port_var = {
            "mews-ingest": "MEWS_INGEST_PORT",
            "mews-ingest-poller": "MEWS_INGEST_PORT",
            "mews-scoring": "MEWS_SCORING_PORT",
            "mews-notify": "MEWS_NOTIFY_PORT",
        }[name]
        assert env[port_var]["value"] == str(PORTS[name])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_values_in_manifests(overlay: str, render: Callable[[str], str]) -> None:
    docs = documents(render(overlay))
    assert not [d for d in docs if d["kind"] == "Secret"], "secrets are created out of band, never from git"
    for doc in docs:
        if doc["kind"] not in WORKLOADS:
            continue
        pod = doc["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            for var in container.get("env", []):
                if any(word in var["name"] for word in ("KEY", "TOKEN", "PASSWORD", "DATABASE_URL", "SECRET")):
                    assert "secretKeyRef" in var.get("valueFrom", {}), f"{var['name']} is not from a Secret"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scoring_is_a_statefulset_with_a_volume_per_pod_and_no_more_replicas_than_partitions(
    overlay: str, render: Callable[[str], str]
) -> None:
    scoring = by_kind(documents(render(overlay)), "StatefulSet")["mews-scoring"]
    assert scoring["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    mounts = scoring["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "data", "mountPath": "/var/lib/mews/scoring"} in mounts
    assert 1 <= scoring["spec"]["replicas"] <= topics.MATERIAL_PARTITIONS


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_scoring_pod_joins_its_group_as_a_static_member_named_after_the_pod(
    overlay: str, render: Callable[[str], str]
) -> None:
    scoring = by_kind(documents(render(overlay)), "StatefulSet")["mews-scoring"]
    env = {e["name"]: e for e in scoring["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MEWS_SCORING_GROUP_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_dev_scoring_changelog_replication_fits_its_single_broker(render: Callable[[str], str]) -> None:
    docs = documents(render("dev"))
    env = {
        e["name"]: e.get("value")
        for e in by_kind(docs, "StatefulSet")["mews-scoring"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MEWS_SCORING_REPLICATION_FACTOR"] == "1"
    assert env["MEWS_SCORING_CONFIG"] == "/etc/mews/scoring.toml"  # the patch replaced only its own entry
    assert by_kind(docs, "KafkaNodePool")["dual-role"]["spec"]["replicas"] == 1
    assert {t["spec"]["replicas"] for t in by_kind(docs, "KafkaTopic").values()} == {1}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_has_a_disruption_budget_and_stateless_ones_an_autoscaler(
    overlay: str, render: Callable[[str], str]
) -> None:
    docs = documents(render(overlay))
    budgets = [d["spec"]["selector"]["matchLabels"] for d in docs if d["kind"] == "PodDisruptionBudget"]
    components = {b["app.kubernetes.io/component"] for b in budgets}
    assert {"ingest", "scoring", "notify"} <= components
    scaled = {d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    assert scaled == {"mews-ingest", "mews-notify"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_monitoring_resources_carry_the_kube_prometheus_stack_release_label(
    overlay: str, render: Callable[[str], str]
) -> None:
    docs = documents(render(overlay))
    monitors = [d for d in docs if d["kind"] in ("ServiceMonitor", "PrometheusRule")]
    assert len(monitors) == 4
    for doc in monitors:
        assert doc["metadata"]["labels"]["release"] == "kube-prometheus-stack", doc["metadata"]["name"]
    jobs = {
        e["relabelings"][0]["replacement"]
        for d in monitors
        if d["kind"] == "ServiceMonitor"
        for e in d["spec"]["endpoints"]
    }
    assert jobs == {"mews-ingest", "mews-scoring", "mews-notify"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dashboards_ship_as_sidecar_configmaps_identical_to_the_json_files(
    overlay: str, render: Callable[[str], str]
) -> None:
    maps = {
        name: doc
        for name, doc in by_kind(documents(render(overlay)), "ConfigMap").items()
        if doc["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    }
    files = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
    shipped = {key: value for doc in maps.values() for key, value in doc["data"].items()}
    assert set(shipped) == {f.name for f in files}
    for f in files:
        assert json.loads(shipped[f.name]) == json.loads(f.read_text())


def test_network_policies_deny_by_default_and_open_only_named_flows(render: Callable[[str], str]) -> None:
    policies = by_kind(documents(render("prod")), "NetworkPolicy")
    deny = policies["mews-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny
    assert "egress" not in deny
    for name, policy in policies.items():
        for rule in policy["spec"].get("ingress", []):
            assert rule.get("from"), f"{name} admits traffic from anywhere"
        for rule in policy["spec"].get("egress", []):
            assert rule.get("ports"), f"{name} lets traffic out on any port"


def test_configmap_sources_and_scoring_rules_pass_the_services_own_validation() -> None:
    sources = load_sources(DEPLOY / "k8s" / "base" / "config" / "sources.toml")
    assert sources
    assert load_config(DEPLOY / "k8s" / "base" / "config" / "scoring.toml")
