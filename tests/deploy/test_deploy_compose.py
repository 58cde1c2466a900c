"""The compose stack, the image name and the Docker build context, checked without Docker.

No Docker engine runs here, so the files are read as Docker would read them: the compose file's
services, ports, mounts and commands (the commands through the exporter's real argument parser),
the one image name that the compose file, every manifest and the README's commands must share,
and .dockerignore with Docker's matching rules against the files the Dockerfile copies.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from exporter.serve import build_parser

ROOT = Path(__file__).resolve().parents[2]
# The exporter's image: the same name in the compose file, every manifest and the README.
IMAGE = "ghcr.io/btcturk-exporter/btcturk-exporter:0.1.0"

Json = dict[str, Any]


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
    for path in sorted((ROOT / "deploy").rglob("*.yaml")):
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
    needed = [*(ROOT / "exporter").rglob("*.py"), ROOT / "pyproject.toml", ROOT / "README.md"]
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
        "tests/config/test_config.py",
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
    # The service that runs the exporter built here, on the port its --web.listen-address listens on.
    assert host in COMPOSE["services"] and "build" in COMPOSE["services"][host], target
    listen = build_parser().parse_args(command(COMPOSE["services"][host])).listen_address
    assert port == listen.rsplit(":", 1)[1], (target, listen)


def test_compose_grafana_gets_provisioning_and_dashboards() -> None:
    grafana = COMPOSE["services"]["grafana"]
    mounts = host_mounts(grafana)
    for source in mounts.values():
        assert (ROOT / source).exists(), source
    provisioning = ROOT / mounts["/etc/grafana/provisioning"]
    provider = yaml.safe_load((provisioning / "dashboards" / "btcturk.yml").read_text())["providers"][0]
    dashboards = ROOT / mounts[provider["options"]["path"]]
    assert sorted(p.name for p in dashboards.glob("*.json")) == [
        "btcturk-activity.json",
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


def test_the_exporters_ledger_is_on_a_named_volume() -> None:
    """The image's --storage.path (read_only root filesystem) is a volume, kept across restarts."""
    volumes = COMPOSE["services"]["exporter"]["volumes"]
    assert "exporter-data:/var/lib/btcturk-exporter" in volumes
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert (
        "--storage.path=/var/lib/btcturk-exporter" in re.findall(r"^ENTRYPOINT (.*)$", dockerfile, re.M)[-1]
    )
