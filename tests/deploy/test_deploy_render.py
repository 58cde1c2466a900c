"""The Kubernetes bundle as `kubectl apply -k` would send it: rendered by kustomize, then validated.

The other deploy tests read the files one by one; this one renders both kustomizations with the
real kustomize built into kubectl (`kubectl kustomize`, no cluster needed), so a broken overlay
(a base that contains its overlay, a patch that matches nothing, a resource that does not exist)
fails here. Every built-in object of the output is validated against the Kubernetes OpenAPI schema
(kubernetes-validate, strict); every Secret the output refers to must have an example beside the
manifests and a line in the overlay's and the README's instructions.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from support import require_binary

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZATIONS = {"base": ROOT / "deploy" / "kubernetes", "secure": ROOT / "deploy" / "kubernetes-secure"}
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())

Json = dict[str, Any]


def render(name: str) -> list[Json]:
    kubectl = require_binary("kubectl")
    result = subprocess.run(
        [kubectl, "kustomize", str(KUSTOMIZATIONS[name])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {name}: {result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=sorted(KUSTOMIZATIONS))
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Json]]:
    return request.param, render(request.param)


def by_kind(docs: list[Json]) -> dict[str, Json]:
    return {doc["kind"]: doc for doc in docs}


def test_renders_every_object(rendered: tuple[str, list[Json]]) -> None:
    _, docs = rendered
    assert sorted(doc["kind"] for doc in docs) == sorted(
        ["ConfigMap", "Deployment", "PrometheusRule", "Service", "ServiceMonitor"]
    )


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_rendered_builtin_objects_match_the_schema(rendered: tuple[str, list[Json]], version: str) -> None:
    _, docs = rendered
    for doc in docs:
        if doc["kind"] not in CUSTOM_KINDS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_validation_catches_a_misspelt_field() -> None:
    """The validator is strict: a field kustomize happily passes through is refused."""
    deployment = by_kind(render("base"))["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def test_secure_overlay_patches_the_base() -> None:
    base, secure = by_kind(render("base")), by_kind(render("secure"))
    (container,) = secure["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert any(arg.startswith("--web.config.file=") for arg in container["args"])
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    (endpoint,) = secure["ServiceMonitor"]["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    assert endpoint["relabelings"] == base["ServiceMonitor"]["spec"]["endpoints"][0]["relabelings"]
    assert base["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"] == container["image"]


def referenced_secrets(docs: list[Json]) -> set[str]:
    """Names of the Secrets the rendered objects read: pod volumes and ServiceMonitor endpoints."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "secretName" in node:
                names.add(node["secretName"])
            for key in ("secret", "username", "password"):
                ref = node.get(key)
                if isinstance(ref, dict) and "name" in ref and "key" in ref:
                    names.add(ref["name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(docs)
    return names


def examples() -> dict[str, Json]:
    out = {}
    for folder in KUSTOMIZATIONS.values():
        for path in folder.glob("*.example.yaml"):
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            if doc.get("kind") == "Secret":
                out[doc["metadata"]["name"]] = doc
    return out


def test_every_secret_is_documented(rendered: tuple[str, list[Json]]) -> None:
    name, docs = rendered
    secrets = referenced_secrets(docs)
    assert secrets, "no Secret found: the walk is broken"
    assert secrets <= set(examples()), f"{name}: Secrets without an example: {secrets - set(examples())}"
    instructions = (KUSTOMIZATIONS[name] / "kustomization.yaml").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for secret in secrets:
        assert secret in readme, f"the README does not say to create {secret}"
        if name == "secure":
            assert secret in instructions, f"{name}/kustomization.yaml does not list {secret}"


def test_every_secret_key_read_is_in_its_example(rendered: tuple[str, list[Json]]) -> None:
    _, docs = rendered
    known = examples()
    monitor = by_kind(docs)["ServiceMonitor"]
    for endpoint in monitor["spec"]["endpoints"]:
        refs = [endpoint.get("tlsConfig", {}).get("ca", {}).get("secret")]
        refs += [endpoint.get("basicAuth", {}).get(part) for part in ("username", "password")]
        for ref in filter(None, refs):
            assert ref["key"] in known[ref["name"]]["stringData"], ref


def test_tls_server_name_is_documented() -> None:
    (endpoint,) = by_kind(render("secure"))["ServiceMonitor"]["spec"]["endpoints"]
    server_name = endpoint["tlsConfig"]["serverName"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    instructions = (KUSTOMIZATIONS["secure"] / "kustomization.yaml").read_text(encoding="utf-8")
    for text in (readme, instructions):
        assert "serverName" in text and server_name in text
