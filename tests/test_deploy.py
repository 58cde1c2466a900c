"""Kubernetes manifests and the compose stack, validated without a cluster or Docker.

Built-in kinds are checked against the Kubernetes OpenAPI schemas (kubernetes-validate, strict, so
misspelt fields fail); the Prometheus Operator CRDs and the Kustomization, which it does not know,
are checked structurally here. The wiring between objects (labels, port names, mounts, flags) is
checked against the exporter's real argument parser and configuration loader.
"""

from __future__ import annotations

import base64
import re
import shlex
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml

from exporter.cli import build_parser
from exporter.config import load_config

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "kubernetes"
sys.path.insert(0, str(ROOT / "tools"))
import gen_prometheusrule  # noqa: E402

Json = dict[str, Any]
# The oldest Kubernetes still commonly run, and the newest the installed schemas know.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "Kustomization"}
# The exporter's image: the same name in the compose file, every manifest and the README.
IMAGE = "ghcr.io/btcturk-exporter/btcturk-exporter:0.1.0"
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


# --- docker-compose ------------------------------------------------------------------------------


COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
LIVE = yaml.safe_load((ROOT / "deploy" / "compose" / "live.yml").read_text(encoding="utf-8"))


def host_mounts(service: Json) -> dict[str, str]:
    """container path -> host path for the service's bind mounts (named volumes left out)."""
    out = {}
    for spec in service.get("volumes", []):
        source, target = spec.split(":")[:2]
        if source.startswith((".", "/")):
            out[target] = source
    return out


def command(service: Json) -> list[str]:
    cmd = service["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def test_compose_services() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"exporter", "prometheus", "grafana"}
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    for service in services.values():
        if "image" in service and "build" not in service:
            assert not service["image"].endswith(":latest"), "pin image versions"


def published_ports(service: Json) -> list[tuple[str, str, str]]:
    """(host address, host port, container port) for each published port, short or long syntax."""
    out = []
    for spec in service.get("ports", []):
        if isinstance(spec, dict):
            out.append((str(spec.get("host_ip", "")), str(spec.get("published", "")), str(spec["target"])))
            continue
        parts = str(spec).split(":")
        host_ip = ":".join(parts[:-2]) if len(parts) > 2 else ""
        host_port = parts[-2] if len(parts) > 1 else ""
        out.append((host_ip.strip("[]"), host_port, parts[-1]))
    return out


def test_compose_ports_are_published_on_loopback_only() -> None:
    """The stack shows balances: by default nothing is reachable from another machine."""
    published = {name: published_ports(s) for name, s in COMPOSE["services"].items()}
    assert published == {
        "exporter": [("127.0.0.1", "9788", "9788")],
        "prometheus": [("127.0.0.1", "9090", "9090")],
        "grafana": [("127.0.0.1", "3000", "3000")],
    }


@pytest.mark.parametrize(
    ("spec", "loopback"),
    [("9788:9788", False), ("0.0.0.0:9788:9788", False), ("127.0.0.1:9788:9788", True), (9788, False)],
)
def test_published_ports_reads_every_form(spec: object, loopback: bool) -> None:
    ((host_ip, _, _),) = published_ports({"ports": [spec]})
    assert (host_ip == "127.0.0.1") is loopback


def test_compose_grafana_has_no_anonymous_admin() -> None:
    environment = COMPOSE["services"]["grafana"]["environment"]
    if environment.get("GF_AUTH_ANONYMOUS_ENABLED") == "true":
        assert environment["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert environment.get("GF_AUTH_DISABLE_LOGIN_FORM", "false") == "false"
    assert environment.get("GF_AUTH_BASIC_ENABLED", "true") == "true"
    # The admin password comes from the environment, with the documented default.
    assert environment["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD:-admin}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "GRAFANA_ADMIN_PASSWORD" in readme and "GRAFANA_ADMIN_PASSWORD" in COMPOSE_TEXT


# --- one image name everywhere -------------------------------------------------------------------


def readme_docker_images() -> list[str]:
    """The image named by each `docker build -t`, `docker push` and `docker run` in the README."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    images = []
    for block in re.findall(r"^```\w*\n(.*?)^```", readme, flags=re.MULTILINE | re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            if not line.startswith("docker "):
                continue
            words = shlex.split(line, comments=True)
            if len(words) < 3 or words[0] != "docker" or words[1] not in {"build", "push", "run"}:
                continue
            if words[1] == "build":
                images.append(words[words.index("-t") + 1])
            elif words[1] == "push":
                images.append(words[2])
            else:  # the first argument that is neither an option nor an option's value
                rest = iter(words[2:])
                for word in rest:
                    if word in {"-p", "-v", "-e", "--name", "--env-file"}:
                        next(rest)
                    elif not word.startswith("-"):
                        images.append(word)
                        break
    return images


def image_references() -> dict[str, str]:
    """Every place that names the exporter's image, and the name it uses."""
    refs = {"docker-compose.yml": COMPOSE["services"]["exporter"]["image"]}
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            for number, item in enumerate(
                doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
            ):
                if "image" in item:
                    refs[f"{path.relative_to(ROOT)} container {number}"] = item["image"]
    for number, name in enumerate(readme_docker_images()):
        refs[f"README.md docker command {number}"] = name
    return refs


def test_one_image_name_everywhere() -> None:
    from exporter import __version__

    refs = image_references()
    assert len(refs) >= 5, refs  # compose, the Deployment, and the README's build, push and run
    assert set(refs.values()) == {IMAGE}, refs
    assert IMAGE.endswith(":" + __version__), "the image tag is the package version"


def test_readme_shows_build_and_push() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"docker build -t {IMAGE} ." in readme
    assert f"docker push {IMAGE}" in readme


# --- the build context ---------------------------------------------------------------------------


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(is an exception, regex) per line of .dockerignore, as Docker reads it."""
    out = []
    for raw in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = str(PurePosixPath(line.lstrip("!").strip().lstrip("/")))
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                regex += ".*"
                i += 2
            elif pattern[i] == "*":
                regex += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                regex += "[^/]"
                i += 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex += pattern[i : end + 1]
                i = end + 1
            else:
                regex += re.escape(pattern[i])
                i += 1
        out.append((negate, re.compile(regex)))
    return out


def in_build_context(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negate, regex in patterns:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negate
    return not excluded


def test_dockerignore_keeps_only_what_the_image_is_built_from() -> None:
    patterns = dockerignore_patterns()
    needed = [*(ROOT / "exporter").glob("*.py"), ROOT / "pyproject.toml", ROOT / "README.md"]
    for path in needed:
        assert in_build_context(str(path.relative_to(ROOT)), patterns), path
    for path in (
        ".git/HEAD",
        ".venv/bin/python",
        ".ci/venv/bin/python",
        "exporter/__pycache__/cli.cpython-312.pyc",
        ".pytest_cache/v/cache/nodeids",
        ".ruff_cache/CACHEDIR.TAG",
        ".mypy_cache/3.10/exporter/cli.data.json",
        ".hypothesis/examples/x",
        ".coverage",
        "btcturk_exporter.egg-info/PKG-INFO",
        "config.yml",
        "private-key",
        "tests/test_config.py",
        "benchmarks/run.py",
    ):
        assert not in_build_context(path, patterns), path


def test_dockerfile_copies_only_what_the_context_holds() -> None:
    patterns = dockerignore_patterns()
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, flags=re.MULTILINE):
        *sources, _destination = line.split()
        for source in sources:
            assert in_build_context(source.rstrip("/"), patterns), f"COPY {source} is ignored"


def test_dockerignore_reader_follows_docker_rules() -> None:
    """Exceptions re-include, later lines win, and a matched folder takes its contents with it."""
    rules = [(False, re.compile("[^/]*")), (True, re.compile("keep")), (False, re.compile("(?:.*/)?junk"))]
    assert in_build_context("keep/a.py", rules)
    assert not in_build_context("other/a.py", rules)
    assert not in_build_context("keep/junk/a.py", rules)


def test_compose_exporter_builds_the_dockerfile_and_runs_the_demo() -> None:
    exporter = COMPOSE["services"]["exporter"]
    context = exporter["build"] if isinstance(exporter["build"], str) else exporter["build"]["context"]
    assert (ROOT / context).resolve() == ROOT
    assert (ROOT / "Dockerfile").is_file()
    args = build_parser().parse_args(command(exporter))
    assert args.demo and args.listen_address == ":9788"


def test_compose_live_override_drops_demo_and_passes_the_keys_as_secrets() -> None:
    exporter = LIVE["services"]["exporter"]
    args = build_parser().parse_args(command(exporter))
    assert not args.demo
    secrets = LIVE["secrets"]
    assert {s["environment"] for s in secrets.values()} == {"BTCTURK_PUBLIC_KEY", "BTCTURK_PRIVATE_KEY"}
    assert set(exporter["secrets"]) == set(secrets)
    assert exporter["environment"] == {
        "BTCTURK_PUBLIC_KEY_FILE": "/run/secrets/btcturk_public_key",
        "BTCTURK_PRIVATE_KEY_FILE": "/run/secrets/btcturk_private_key",
    }
    assert {f"/run/secrets/{name}" for name in secrets} == set(exporter["environment"].values())


def test_compose_prometheus_gets_the_rules() -> None:
    prometheus = COMPOSE["services"]["prometheus"]
    mounts = host_mounts(prometheus)
    config_flag = next(a for a in command(prometheus) if a.startswith("--config.file="))
    config_path = PurePosixPath(config_flag.split("=", 1)[1])
    host_dir = ROOT / mounts[str(config_path.parent)]
    config = yaml.safe_load((host_dir / config_path.name).read_text())
    for rule_file in config["rule_files"]:
        assert (host_dir / rule_file).is_file(), rule_file
    (scrape,) = [j for j in config["scrape_configs"] if j["job_name"] == "btcturk"]
    (target,) = scrape["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host in COMPOSE["services"] and port == "9788"


def test_compose_grafana_gets_provisioning_and_dashboards() -> None:
    grafana = COMPOSE["services"]["grafana"]
    mounts = host_mounts(grafana)
    for source in mounts.values():
        assert (ROOT / source).exists(), source
    provisioning = ROOT / mounts["/etc/grafana/provisioning"]
    provider = yaml.safe_load((provisioning / "dashboards" / "btcturk.yml").read_text())["providers"][0]
    dashboards = ROOT / mounts[provider["options"]["path"]]
    assert sorted(p.name for p in dashboards.glob("*.json")) == [
        "btcturk-exporter-health.json",
        "btcturk-overview.json",
    ]
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][
        0
    ]
    assert datasource["url"] == "http://prometheus:9090"
    environment = grafana["environment"]
    home = PurePosixPath(environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert (ROOT / mounts[str(home.parent)] / home.name).is_file()


def test_compose_named_volumes_are_declared() -> None:
    used = {
        spec.split(":")[0]
        for service in COMPOSE["services"].values()
        for spec in service.get("volumes", [])
        if not spec.startswith((".", "/"))
    }
    assert used == set(COMPOSE["volumes"])
