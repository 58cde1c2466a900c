"""The exporter-toolkit web configuration (--web.config.file): TLS and basic auth for the HTTP server.

The file format is the one the Prometheus project's Go exporters take, described in
https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md,
so one file can serve a fleet of exporters. Everything is checked when the file is loaded:
a typo or an unreadable certificate stops the exporter at start, not at the first scrape.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import yaml

from exporter.config.yamlload import MAX_CONFIG_BYTES, ReadError, load_yaml, read_limited
from exporter.web.basicauth import BasicAuth
from exporter.web.check import Problems, kind, section
from exporter.web.tls import TLS_KEYS, TLSSettings, ssl_context, tls_settings

log = logging.getLogger(__name__)

# Same rules as exporter-toolkit, so a file valid for a Go exporter is valid here:
# only these headers, and for some of them only these values (None means any value).
ALLOWED_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}

# $2a$, $2b$ and $2y$ (htpasswd's) are the same algorithm; $2x$ is the buggy crypt_blowfish variant.
# The salt's 22nd character carries 2 padding bits, so bcrypt only takes the four that leave them zero.
BCRYPT_HASH = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{21}[.Oeu][./A-Za-z0-9]{31}")

TOP_KEYS = frozenset({"tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"})
HTTP_KEYS = frozenset({"http2", "headers"})
RATE_LIMIT_KEYS = frozenset({"interval", "burst"})


class WebConfigError(Exception):
    """The web configuration file is invalid; str() has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


class ServerOptions(TypedDict, total=False):
    """The keyword arguments of web.start_server that a web config sets."""

    ssl_context: ssl.SSLContext
    authenticate: Callable[[str | None, str], bool]
    headers: dict[str, str]


@dataclass(frozen=True)
class WebConfig:
    """A loaded, validated web configuration; server_options() feeds exporter.web.start_server."""

    path: str
    tls: TLSSettings | None = None
    users: Mapping[str, str] = field(default_factory=dict, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    authenticator: BasicAuth | None = field(default=None, repr=False, compare=False)

    def server_options(self) -> ServerOptions:
        """Keyword arguments for start_server: ssl_context, authenticate and headers, when configured."""
        options: ServerOptions = {}
        if self.headers:
            options["headers"] = dict(self.headers)
        if self.ssl_context is not None:
            options["ssl_context"] = self.ssl_context
        if self.authenticator is not None:
            options["authenticate"] = self.authenticator
        return options


def load_web_config(path: str) -> WebConfig:
    """Read and validate a web configuration file, loading its certificates; raise WebConfigError."""
    problems = Problems(path)
    try:
        text = read_limited(path, MAX_CONFIG_BYTES)[0].decode("utf-8")
    except (ReadError, UnicodeDecodeError, ValueError) as exc:
        reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc
        raise WebConfigError([f"{path}: cannot read: {reason}"]) from None
    try:
        document = load_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise WebConfigError([f"{path}: invalid YAML: {at}{exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise WebConfigError([f"{path}: invalid YAML: {exc}"]) from None

    top = section(document, "", TOP_KEYS, problems)
    base = os.path.dirname(path)
    tls = tls_settings(
        section(top.get("tls_server_config"), "tls_server_config", TLS_KEYS, problems), base, problems
    )
    headers = _headers(
        section(top.get("http_server_config"), "http_server_config", HTTP_KEYS, problems), problems
    )
    users = _users(top.get("basic_auth_users"), problems)
    if section(top.get("rate_limit"), "rate_limit", RATE_LIMIT_KEYS, problems):
        log.warning("%s: rate_limit is not supported by this exporter and is ignored", path)

    context = None
    if tls is not None:
        # Run even when other keys are wrong, so unreadable files are reported in the same go.
        context = ssl_context(tls, problems)
    if problems.lines:
        raise WebConfigError(problems.lines)
    return WebConfig(
        path=path,
        tls=tls,
        users=users,
        headers=headers,
        ssl_context=context,
        authenticator=BasicAuth(users) if users else None,
    )


def _headers(section: dict[str, Any], problems: Problems) -> dict[str, str]:
    where = "http_server_config"
    http2 = section.get("http2")
    if http2 is not None and not isinstance(http2, bool):
        problems.add(f"{where}.http2", f"expected true or false, got {kind(http2)}")
    # http2 needs no warning: the server speaks HTTP/1.1, which every client falls back to.
    raw = section.get("headers")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add(f"{where}.headers", f"expected a mapping, got {kind(raw)}")
        return {}
    headers = {}
    for name, value in raw.items():
        at = f"{where}.headers.{name}"
        if name not in ALLOWED_HEADERS:
            problems.add(at, f"this header cannot be configured (allowed: {', '.join(ALLOWED_HEADERS)})")
        elif not isinstance(value, str):
            problems.add(at, f"expected a string, got {kind(value)}")
        elif "\r" in value or "\n" in value:
            problems.add(at, "must be a single line")
        elif (allowed := ALLOWED_HEADERS[name]) is not None and value not in allowed:
            problems.add(at, f"expected one of {', '.join(allowed)}, got {value!r}")
        elif value:
            headers[name] = value
    return headers


def _users(value: object, problems: Problems) -> dict[str, str]:
    where = "basic_auth_users"
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(where, f"expected a mapping of usernames to bcrypt hashes, got {kind(value)}")
        return {}
    users = {}
    for name, hashed in value.items():
        if not isinstance(name, str):
            problems.add(where, f"username {name!r} is not a string; quote it")
            continue
        at = f"{where}.{name}"
        if ":" in name:
            problems.add(at, "usernames cannot contain ':' (basic auth splits on the first one)")
        # The value is never echoed: a plain password put here by mistake must not end up in logs.
        elif not isinstance(hashed, str) or not BCRYPT_HASH.fullmatch(hashed):
            problems.add(
                at,
                "not a bcrypt hash (expected $2a$, $2b$ or $2y$, a cost of 04-31 and 53 characters; "
                "value not shown)",
            )
        else:
            users[name] = hashed
    return users
