"""Kubernetes manifests, validated without a cluster (the compose stack: test_deploy_compose.py).

Built-in kinds are checked against the Kubernetes OpenAPI schemas (kubernetes-validate, strict, so
misspelt fields fail); the Prometheus Operator CRDs and the Kustomization, which it does not know,
are checked structurally here. The wiring between objects (labels, port names, mounts, flags) is
checked against the exporter's real argument parser and configuration loader.
"""

from __future__ import annotations

import base64
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml

from exporter.config.loader import load_config
from exporter.serve import build_parser
from tools import gen_prometheusrule

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"

Json = dict[str, Any]
# The oldest Kubernetes still commonly run, and the newest the installed schemas know.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "Kustomization"}
APP_LABELS = {"app.kubernetes.io/name": "btcturk-exporter", "app.kubernetes.io/component": "exporter"}


def manifests() -> dict[str, Json]:
    """Every manifest, keyed by kind (one object per kind in this bundle)."""
    out: dict[str, Json] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert doc["kind"] not in out, f"two {doc['kind']} objects"
            out[doc["kind"]] = doc
    return out


MANIFESTS = manifests()
BUILTIN = sorted(kind for kind in MANIFESTS if kind not in CUSTOM_KINDS)


def container() -> Json:
    (only,) = MANIFESTS["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only


def mount_of(path: str) -> tuple[Json, Json]:
    """The volumeMount holding `path`, and its volume."""
    pod = MANIFESTS["Deployment"]["spec"]["template"]["spec"]
    for mount in container()["volumeMounts"]:
        if PurePosixPath(path).is_relative_to(mount["mountPath"]):
            volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
            return mount, volume
    raise AssertionError(f"{path} is on no mounted volume")


def env() -> dict[str, str]:
    return {item["name"]: item["value"] for item in container().get("env", [])}


# --- schema validation ---------------------------------------------------------------------------


def test_the_bundle_is_complete() -> None:
    assert set(MANIFESTS) == {
        "ConfigMap",
        "Deployment",
        "Kustomization",
        "PrometheusRule",
        "Secret",
        "Service",
        "ServiceMonitor",
    }


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("kind", BUILTIN)
def test_builtin_kinds_match_the_kubernetes_schema(kind: str, version: str) -> None:
    kubernetes_validate.validate(MANIFESTS[kind], version, strict=True)


def test_every_object_is_labelled() -> None:
    for kind, doc in MANIFESTS.items():
        if kind != "Kustomization":
            assert APP_LABELS.items() <= doc["metadata"]["labels"].items(), kind


def test_servicemonitor_structure() -> None:
    monitor = MANIFESTS["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]) <= {"selector", "endpoints", "namespaceSelector", "jobLabel"}
    assert (
        monitor["spec"]["selector"]["matchLabels"].items()
        <= MANIFESTS["Service"]["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    service_ports = {p["name"] for p in MANIFESTS["Service"]["spec"]["ports"]}
    assert endpoint["port"] in service_ports
    assert endpoint["path"] == "/metrics"
    assert set(endpoint) <= {
        "port",
        "path",
        "interval",
        "scrapeTimeout",
        "relabelings",
        "scheme",
        "tlsConfig",
    }
    # The alerts and dashboards expect job="btcturk".
    assert {"action": "replace", "targetLabel": "job", "replacement": "btcturk"} in endpoint["relabelings"]


def test_prometheusrule_structure() -> None:
    rule = MANIFESTS["PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(rule["spec"]) == {"groups"}
    names = [g["name"] for g in rule["spec"]["groups"]]
    assert len(names) == len(set(names)), "group names must be unique"
    for group in rule["spec"]["groups"]:
        assert set(group) <= {"name", "interval", "rules"}
        for item in group["rules"]:
            assert ("record" in item) != ("alert" in item)
            allowed = (
                {"record", "expr", "labels"}
                if "record" in item
                else {"alert", "expr", "for", "labels", "annotations"}
            )
            assert set(item) <= allowed and isinstance(item["expr"], str)


def test_prometheusrule_is_generated_from_the_rule_files() -> None:
    committed = (K8S / "prometheusrule.yaml").read_text(encoding="utf-8")
    assert committed == gen_prometheusrule.render(), "stale: run python tools/gen_prometheusrule.py"
    assert MANIFESTS["PrometheusRule"]["spec"]["groups"] == gen_prometheusrule.load_groups()


def test_kustomization_lists_the_manifests_but_not_the_example_secret() -> None:
    kustomization = MANIFESTS["Kustomization"]
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    resources = kustomization["resources"]
    for name in resources:
        assert (K8S / name).is_file(), name
    assert "secret.example.yaml" not in resources
    listed = {yaml.safe_load((K8S / name).read_text())["kind"] for name in resources}
    assert listed == set(MANIFESTS) - {"Kustomization", "Secret"}


# --- the Deployment ------------------------------------------------------------------------------


def test_runs_as_non_root_with_a_read_only_root_filesystem() -> None:
    pod = MANIFESTS["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    security = container()["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]


def test_the_image_user_matches_the_dockerfile() -> None:
    dockerfile = ROOT / "Dockerfile"
    if not dockerfile.exists():
        pytest.skip("no Dockerfile")
    users = [line.split()[1] for line in dockerfile.read_text().splitlines() if line.startswith("USER ")]
    pod = MANIFESTS["Deployment"]["spec"]["template"]["spec"]
    assert users and users[-1].split(":")[0] == str(pod["securityContext"]["runAsUser"])


def test_probes_and_port() -> None:
    c = container()
    (port,) = c["ports"]
    assert port == {"name": "http-metrics", "containerPort": 9788, "protocol": "TCP"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http-metrics"}


def test_resources() -> None:
    resources = container()["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


def test_image_is_pinned() -> None:
    image = container()["image"]
    assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")


def test_arguments_are_accepted_by_the_exporter() -> None:
    args = build_parser().parse_args(container()["args"])
    assert args.listen_address == ":9788"
    assert not args.demo
    assert args.config_file


def test_config_comes_from_the_configmap() -> None:
    config_file = build_parser().parse_args(container()["args"]).config_file
    mount, volume = mount_of(config_file)
    assert mount["readOnly"] is True
    assert volume["configMap"]["name"] == MANIFESTS["ConfigMap"]["metadata"]["name"]
    key = str(PurePosixPath(config_file).relative_to(mount["mountPath"]))
    assert key in MANIFESTS["ConfigMap"]["data"]


def test_keys_come_from_the_secret_as_files() -> None:
    variables = env()
    assert set(variables) == {"BTCTURK_PUBLIC_KEY_FILE", "BTCTURK_PRIVATE_KEY_FILE"}, "keys only as *_FILE"
    secret = MANIFESTS["Secret"]
    for path in variables.values():
        mount, volume = mount_of(path)
        assert mount["readOnly"] is True
        assert volume["secret"]["secretName"] == secret["metadata"]["name"]
        assert volume["secret"]["defaultMode"] & 0o077 == 0, "key files must not be world-readable"
        assert str(PurePosixPath(path).relative_to(mount["mountPath"])) in secret["stringData"]


def test_configmap_loads_with_the_secret_mounted(tmp_path: Path) -> None:
    """The exporter's own loader accepts the ConfigMap with key files in place: one account."""
    (tmp_path / "config.yml").write_text(MANIFESTS["ConfigMap"]["data"]["config.yml"], encoding="utf-8")
    public, private = tmp_path / "public-key", tmp_path / "private-key"
    public.write_text("example-public-key\n")
    private.write_text(base64.b64encode(b"k" * 32).decode() + "\n")
    public.chmod(0o600)
    private.chmod(0o600)
    environ = {"BTCTURK_PUBLIC_KEY_FILE": str(public), "BTCTURK_PRIVATE_KEY_FILE": str(private)}
    config = load_config(str(tmp_path / "config.yml"), environ)
    assert [a.name for a in config.accounts] == ["default"]
    assert not config.warnings


def test_service_selects_the_pods() -> None:
    service = MANIFESTS["Service"]
    pod_labels = MANIFESTS["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert MANIFESTS["Deployment"]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["name"] == "http-metrics" and port["port"] == 9788 and port["targetPort"] == "http-metrics"


def test_one_replica() -> None:
    """Replicas multiply API calls against the per-IP rate limit."""
    assert MANIFESTS["Deployment"]["spec"]["replicas"] == 1


def test_the_ledger_lives_on_a_volume_at_the_images_storage_path() -> None:
    """--storage.path points at a mounted volume: a read-only root filesystem could not hold it."""
    args = build_parser().parse_args(container()["args"])
    assert args.storage_path == "/var/lib/btcturk-exporter"
    mount, volume = mount_of(args.storage_path + "/ledger.db")
    assert mount["mountPath"] == "/var/lib/btcturk-exporter"
    assert not mount.get("readOnly")
    assert "emptyDir" in volume or "persistentVolumeClaim" in volume
