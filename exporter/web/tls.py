"""The TLS part of the web configuration: tls_server_config checked into TLSSettings, and its SSL context."""

from __future__ import annotations

import logging
import os
import re
import ssl
import warnings
from dataclasses import dataclass, field
from typing import Any

from exporter.web.check import Problems, read_file, string

# Its warnings are about the web config file, and have always been logged under this name.
log = logging.getLogger("exporter.web.config")

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


def tls_settings(section: dict[str, Any], base: str, problems: Problems) -> TLSSettings | None:
    """The checked tls_server_config section, paths resolved against `base`; None when absent or unusable."""
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
        value = string(section, key, where, problems)
        # Relative to the web config file, as exporter-toolkit does, so the file works from any directory.
        return None if value is None else os.path.normpath(os.path.join(base, value))

    cert_file, key_file, ca_file = resolve("cert_file"), resolve("key_file"), resolve("client_ca_file")
    ca_text = string(section, "client_ca", where, problems)
    if cert_file is None and not section.get("cert"):
        problems.add(f"{where}.cert_file", "missing: TLS needs cert_file and key_file")
    if key_file is None and not section.get("key"):
        problems.add(f"{where}.key_file", "missing: TLS needs cert_file and key_file")
    if ca_file is not None and ca_text is not None:
        problems.add(f"{where}.client_ca", "give client_ca or client_ca_file, not both")

    auth = string(section, "client_auth_type", where, problems) or "NoClientCert"
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
        value = string(section, key, where, problems) or default
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


def ssl_context(tls: TLSSettings, problems: Problems) -> ssl.SSLContext | None:
    """The server's SSL context, its files read and checked; None (with the problems added) if unusable."""
    where = "tls_server_config"
    # Read first: OSError says plainly what is wrong, where OpenSSL would only say "PEM lib".
    cert = read_file(tls.cert_file, f"{where}.cert_file", problems)
    key = read_file(tls.key_file, f"{where}.key_file", problems)
    if tls.client_ca_file is not None:
        read_file(tls.client_ca_file, f"{where}.client_ca_file", problems)
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
