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
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import yaml

from exporter.basicauth import BasicAuth
from exporter.yamlload import MAX_CONFIG_BYTES, ReadError, load_yaml, read_limited

log = logging.getLogger(__name__)

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

CLIENT_AUTH_TYPES = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# Go accepts these without verifying the client's certificate against a CA; Python's ssl module can
# only ask for a certificate it then verifies, so they cannot be honoured (and Go's docs call them insecure).
UNSUPPORTED_CLIENT_AUTH_TYPES = frozenset({"RequestClientCert", "RequireAnyClientCert", "RequireClientCert"})

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
TLS_KEYS = frozenset(
    {
        "cert_file",
        "key_file",
        "cert",
        "key",
        "client_ca_file",
        "client_ca",
        "client_auth_type",
        "client_allowed_sans",
        "min_version",
        "max_version",
        "cipher_suites",
        "curve_preferences",
        "prefer_server_cipher_suites",
    }
)
# Go-specific tuning; OpenSSL's defaults are sound, and the Go names do not map onto OpenSSL's.
IGNORED_TLS_KEYS = ("cipher_suites", "curve_preferences", "prefer_server_cipher_suites")
HTTP_KEYS = frozenset({"http2", "headers"})
RATE_LIMIT_KEYS = frozenset({"interval", "burst"})


class WebConfigError(Exception):
    """The web configuration file is invalid; str() has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class TLSSettings:
    """The parts of tls_server_config that shape the server's SSL context (paths already resolved)."""

    cert_file: str
    key_file: str
    client_auth_type: str = "NoClientCert"
    client_ca_file: str | None = None
    client_ca: str | None = field(default=None, repr=False)
    min_version: str = "TLS12"
    max_version: str = "TLS13"


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


# --- loading --------------------------------------------------------------------------------------


class _Problems:
    """Collects every problem in the file so the user can fix them in one go."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.lines.append(f"{self.path}: {where}: {message}" if where else f"{self.path}: {message}")


def _section(value: object, where: str, allowed: frozenset[str], problems: _Problems) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(where, f"expected a mapping, got {_kind(value)}")
        return {}
    for key in value:
        if key not in allowed:
            prefix = f"{where}." if where else ""
            problems.add(f"{prefix}{key}", f"unknown key (known: {', '.join(sorted(allowed))})")
    return value


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def _string(section: dict[str, Any], key: str, where: str, problems: _Problems) -> str | None:
    value = section.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        problems.add(f"{where}.{key}", f"expected a string, got {_kind(value)}")
        return None
    return value


def _read(path: str, where: str, problems: _Problems) -> bytes | None:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        problems.add(where, f"cannot read {path}: {exc.strerror or exc}")
        return None


def load_web_config(path: str) -> WebConfig:
    """Read and validate a web configuration file, loading its certificates; raise WebConfigError."""
    problems = _Problems(path)
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

    top = _section(document, "", TOP_KEYS, problems)
    base = os.path.dirname(path)
    tls = _tls_settings(
        _section(top.get("tls_server_config"), "tls_server_config", TLS_KEYS, problems), base, problems
    )
    headers = _headers(
        _section(top.get("http_server_config"), "http_server_config", HTTP_KEYS, problems), problems
    )
    users = _users(top.get("basic_auth_users"), problems)
    if _section(top.get("rate_limit"), "rate_limit", RATE_LIMIT_KEYS, problems):
        log.warning("%s: rate_limit is not supported by this exporter and is ignored", path)

    context = None
    if tls is not None:
        # Run even when other keys are wrong, so unreadable files are reported in the same go.
        context = _ssl_context(tls, problems)
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


def _tls_settings(section: dict[str, Any], base: str, problems: _Problems) -> TLSSettings | None:
    where = "tls_server_config"
    if not section:
        return None
    for key in IGNORED_TLS_KEYS:
        if key in section:
            log.warning(
                "%s: %s.%s is ignored: the Go names do not apply, OpenSSL's defaults are used",
                problems.path,
                where,
                key,
            )
    for key in ("cert", "key"):
        if section.get(key):
            problems.add(
                f"{where}.{key}", f"inline PEM is not supported here; put it in a file and use {key}_file"
            )
    if section.get("client_allowed_sans"):
        # Ignoring it would let in clients the file means to keep out.
        problems.add(f"{where}.client_allowed_sans", "not supported by this exporter")

    def resolve(key: str) -> str | None:
        value = _string(section, key, where, problems)
        # Relative to the web config file, as exporter-toolkit does, so the file works from any directory.
        return None if value is None else os.path.normpath(os.path.join(base, value))

    cert_file, key_file, ca_file = resolve("cert_file"), resolve("key_file"), resolve("client_ca_file")
    ca_text = _string(section, "client_ca", where, problems)
    if cert_file is None and not section.get("cert"):
        problems.add(f"{where}.cert_file", "missing: TLS needs cert_file and key_file")
    if key_file is None and not section.get("key"):
        problems.add(f"{where}.key_file", "missing: TLS needs cert_file and key_file")
    if ca_file is not None and ca_text is not None:
        problems.add(f"{where}.client_ca", "give client_ca or client_ca_file, not both")

    auth = _string(section, "client_auth_type", where, problems) or "NoClientCert"
    if auth in UNSUPPORTED_CLIENT_AUTH_TYPES:
        problems.add(
            f"{where}.client_auth_type",
            f"{auth} is not supported (it accepts unverified certificates); "
            "use RequireAndVerifyClientCert or VerifyClientCertIfGiven",
        )
    elif auth not in CLIENT_AUTH_TYPES:
        problems.add(
            f"{where}.client_auth_type", f"unknown value {auth!r} (known: {', '.join(CLIENT_AUTH_TYPES)})"
        )
    elif auth == "NoClientCert" and (ca_file or ca_text):
        problems.add(
            f"{where}.client_auth_type", "a client CA is set, so set a client_auth_type that verifies it"
        )
    elif auth != "NoClientCert" and not (ca_file or ca_text):
        problems.add(
            f"{where}.client_ca_file", f"missing: client_auth_type {auth} needs a CA to verify clients"
        )

    versions = []
    for key, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        value = _string(section, key, where, problems) or default
        if value not in TLS_VERSIONS:
            problems.add(f"{where}.{key}", f"unknown value {value!r} (known: {', '.join(TLS_VERSIONS)})")
            value = default
        versions.append(value)
    if TLS_VERSIONS[versions[0]] > TLS_VERSIONS[versions[1]]:
        problems.add(f"{where}.min_version", f"{versions[0]} is above max_version {versions[1]}")
    if versions[0] in ("TLS10", "TLS11"):
        log.warning(
            "%s: %s.min_version %s is deprecated and OpenSSL may refuse it anyway",
            problems.path,
            where,
            versions[0],
        )

    if cert_file is None or key_file is None:
        return None
    return TLSSettings(
        cert_file=cert_file,
        key_file=key_file,
        client_auth_type=auth,
        client_ca_file=ca_file,
        client_ca=ca_text,
        min_version=versions[0],
        max_version=versions[1],
    )


class _EncryptedKey(Exception):
    """OpenSSL asked for a key passphrase; raised instead of letting it prompt on the terminal."""


def _no_passphrase() -> bytes:
    raise _EncryptedKey


def _ssl_context(tls: TLSSettings, problems: _Problems) -> ssl.SSLContext | None:
    where = "tls_server_config"
    # Read first: OSError says plainly what is wrong, where OpenSSL would only say "PEM lib".
    cert = _read(tls.cert_file, f"{where}.cert_file", problems)
    key = _read(tls.key_file, f"{where}.key_file", problems)
    if tls.client_ca_file is not None:
        _read(tls.client_ca_file, f"{where}.client_ca_file", problems)
    if cert is None or key is None or problems.lines:
        return None

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        # TLS 1.0/1.1 raise a DeprecationWarning; the user was already warned in the log.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = TLS_VERSIONS[tls.min_version]
        context.maximum_version = TLS_VERSIONS[tls.max_version]
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file, password=_no_passphrase)
    except _EncryptedKey:
        problems.add(f"{where}.key_file", f"{tls.key_file} is encrypted; give an unencrypted key")
        return None
    except ssl.SSLError as exc:
        if b"-----BEGIN CERTIFICATE-----" not in cert:
            problems.add(f"{where}.cert_file", f"no PEM certificate in {tls.cert_file}")
        elif not re.search(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----", key):
            problems.add(f"{where}.key_file", f"no PEM private key in {tls.key_file}")
        elif exc.reason == "KEY_VALUES_MISMATCH":
            problems.add(
                f"{where}.key_file", f"{tls.key_file} does not match the certificate in {tls.cert_file}"
            )
        else:
            problems.add(
                where, f"cannot load {tls.cert_file} and {tls.key_file}: {exc.reason or exc.strerror or exc}"
            )
        return None

    if tls.client_auth_type != "NoClientCert":
        try:
            if tls.client_ca_file is not None:
                context.load_verify_locations(cafile=tls.client_ca_file)
            else:
                context.load_verify_locations(cadata=tls.client_ca)
        except ssl.SSLError:
            source = tls.client_ca_file or "client_ca"
            key_name = "client_ca_file" if tls.client_ca_file else "client_ca"
            problems.add(f"{where}.{key_name}", f"no PEM certificate in {source}")
            return None
        context.verify_mode = CLIENT_AUTH_TYPES[tls.client_auth_type]
    return context


def _headers(section: dict[str, Any], problems: _Problems) -> dict[str, str]:
    where = "http_server_config"
    http2 = section.get("http2")
    if http2 is not None and not isinstance(http2, bool):
        problems.add(f"{where}.http2", f"expected true or false, got {_kind(http2)}")
    # http2 needs no warning: the server speaks HTTP/1.1, which every client falls back to.
    raw = section.get("headers")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add(f"{where}.headers", f"expected a mapping, got {_kind(raw)}")
        return {}
    headers = {}
    for name, value in raw.items():
        at = f"{where}.headers.{name}"
        if name not in ALLOWED_HEADERS:
            problems.add(at, f"this header cannot be configured (allowed: {', '.join(ALLOWED_HEADERS)})")
        elif not isinstance(value, str):
            problems.add(at, f"expected a string, got {_kind(value)}")
        elif "\r" in value or "\n" in value:
            problems.add(at, "must be a single line")
        elif (allowed := ALLOWED_HEADERS[name]) is not None and value not in allowed:
            problems.add(at, f"expected one of {', '.join(allowed)}, got {value!r}")
        elif value:
            headers[name] = value
    return headers


def _users(value: object, problems: _Problems) -> dict[str, str]:
    where = "basic_auth_users"
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(where, f"expected a mapping of usernames to bcrypt hashes, got {_kind(value)}")
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
