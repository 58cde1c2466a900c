"""The image definition: linted with hadolint, and holding what a careful operator expects."""

import json
import re
import subprocess
from pathlib import Path

from support import require_binary

DOCKERFILE = Path(__file__).resolve().parents[2] / "Dockerfile"
TEXT = DOCKERFILE.read_text(encoding="utf-8")


def test_hadolint_is_clean() -> None:
    hadolint = require_binary("hadolint")
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_on_a_slim_base() -> None:
    stages = re.findall(r"^FROM (\S+)", TEXT, flags=re.MULTILINE)
    assert len(stages) >= 2
    assert all("slim" in image for image in stages)


def test_runs_as_non_root() -> None:
    users = re.findall(r"^USER (\S+)", TEXT, flags=re.MULTILINE)
    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_exposes_the_default_port_and_checks_health() -> None:
    assert re.search(r"^EXPOSE 9788$", TEXT, flags=re.MULTILINE)
    healthcheck = re.search(r"^HEALTHCHECK .*\n?.*CMD (\[.*\])$", TEXT, flags=re.MULTILINE)
    assert healthcheck, "no HEALTHCHECK"
    # No fixed port or address: the probe follows the flags the exporter was started with.
    assert json.loads(healthcheck.group(1)) == ["python", "-m", "exporter.healthcheck"]


def test_no_config_or_secrets_baked_in() -> None:
    copied = re.findall(r"^COPY (?!--from)(.+)$", TEXT, flags=re.MULTILINE)
    for line in copied:
        assert "config" not in line and "secret" not in line.lower() and ".yml" not in line, line
    assert not re.search(r"^ENV .*(KEY|SECRET)", TEXT, flags=re.MULTILINE)


def test_the_ledger_directory_is_a_volume_owned_by_the_user() -> None:
    entrypoint = json.loads(re.findall(r"^ENTRYPOINT (\[.*\])$", TEXT, flags=re.MULTILINE)[-1])
    assert entrypoint == ["btcturk-exporter", "--storage.path=/var/lib/btcturk-exporter"]
    assert re.search(r"^VOLUME /var/lib/btcturk-exporter$", TEXT, flags=re.MULTILINE)
    user = re.findall(r"^USER (\S+)", TEXT, flags=re.MULTILINE)[-1]
    assert f"chown {user} /var/lib/btcturk-exporter" in TEXT
