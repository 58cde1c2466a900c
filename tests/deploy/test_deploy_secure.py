"""The Kubernetes overlay that puts /metrics behind TLS and basic auth, checked without a cluster."""

from __future__ import annotations

import copy
import shlex
from pathlib import Path, PurePosixPath
from typing import Any

import bcrypt
import kubernetes_validate
import pytest
import yaml
from pki import make_pki

from exporter.serve import build_parser
from exporter.web.config import load_web_config

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "kubernetes"
SECURE = ROOT / "deploy" / "kubernetes-secure"


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge as kustomize does it here: maps merge, lists of named items merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in patch)
    ):
        by_name = {item.get("name"): item for item in base if isinstance(item, dict)}
        out = [merge(by_name[item["name"]], item) if item["name"] in by_name else item for item in patch]
        patched = {item["name"] for item in patch}
        return [item for item in base if item.get("name") not in patched] + out
    return copy.deepcopy(patch)


def patched_deployment() -> dict[str, Any]:
    return merge(load(BASE / "deployment.yaml"), load(SECURE / "deployment-patch.yaml"))


def test_overlay_lists_its_patches_and_the_base() -> None:
    kustomization = load(SECURE / "kustomization.yaml")
    # The base beside the overlay, not its parent: kustomize refuses a base that contains its overlay.
    assert kustomization["resources"] == ["../kubernetes"]
    assert (SECURE / "../kubernetes").resolve() == BASE
    for patch in kustomization["patches"]:
        assert (SECURE / patch["path"]).is_file()


@pytest.mark.parametrize("version", ["1.29.0", kubernetes_validate.latest_version()])
def test_patched_deployment_and_secret_are_valid(version: str) -> None:
    kubernetes_validate.validate(patched_deployment(), version, strict=True)
    for example in ("web-config.example.yaml", "scrape-secret.example.yaml"):
        kubernetes_validate.validate(load(SECURE / example), version, strict=True)


def test_web_config_flag_points_into_the_mounted_secret() -> None:
    pod = patched_deployment()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = build_parser().parse_args(container["args"])
    web_path = PurePosixPath(args.web_config_file)
    mount = next(m for m in container["volumeMounts"] if web_path.is_relative_to(m["mountPath"]))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == load(SECURE / "web-config.example.yaml")["metadata"]["name"]
    # The base's mounts survive the patch.
    assert {m["name"] for m in container["volumeMounts"]} >= {"config", "keys", "web"}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert shlex.join(container["args"]).count("--web.config.file") == 1


def test_servicemonitor_scrapes_over_tls_with_basic_auth() -> None:
    monitor = merge(load(BASE / "servicemonitor.yaml"), load(SECURE / "servicemonitor-patch.yaml"))
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    assert endpoint["basicAuth"]["password"]["key"]
    scrape = load(SECURE / "scrape-secret.example.yaml")
    assert endpoint["tlsConfig"]["ca"]["secret"]["name"] == scrape["metadata"]["name"]
    assert endpoint["tlsConfig"]["ca"]["secret"]["key"] in scrape["stringData"]
    for part in ("username", "password"):
        assert endpoint["basicAuth"][part]["name"] == scrape["metadata"]["name"]
        assert endpoint["basicAuth"][part]["key"] in scrape["stringData"]
    assert endpoint["relabelings"][0]["replacement"] == "btcturk"


def test_example_web_config_loads_once_real_files_are_in_place(tmp_path: Path) -> None:
    """The Secret's web.yml, with a real certificate and hash, is what the exporter accepts."""
    files = load(SECURE / "web-config.example.yaml")["stringData"]
    (tmp_path / "pki").mkdir()
    pki = make_pki(tmp_path / "pki")
    web = files["web.yml"].replace(
        "$2b$12$REPLACE.WITH.A.REAL.BCRYPT.HASH.OF.YOUR.PASSWORD.xxxxxxxx",
        bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode(),
    )
    # The mounted Secret is one folder: web.yml beside tls.crt and tls.key, found relative to it.
    (tmp_path / "web.yml").write_text(web, encoding="utf-8")
    (tmp_path / "tls.crt").write_bytes(pki.server_cert.read_bytes())
    (tmp_path / "tls.key").write_bytes(pki.server_key.read_bytes())
    options = load_web_config(str(tmp_path / "web.yml")).server_options()
    assert set(options) >= {"ssl_context", "authenticate"}
