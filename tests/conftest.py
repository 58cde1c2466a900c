"""Shared test helpers: external binaries are required in CI and optional locally."""

from __future__ import annotations

import os
import shutil

import pytest


def require_binary(name: str) -> str:
    """Return the path of `name`; skip the test locally when absent, fail it in CI (CI=true)."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not found on PATH (apt-get install -y prometheus provides prometheus and promtool)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)
