"""Certificates made at test time, for the TLS tests (no fixed keys in the repository)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Pki:
    """PEM files: a self-signed server certificate, a client CA with a client, and a rogue client."""

    directory: Path
    server_cert: Path
    server_key: Path
    other_key: Path
    encrypted_key: Path
    client_ca: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str | None = None,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer or subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


def _write(
    path: Path,
    cert: x509.Certificate | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    password: bytes | None = None,
) -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        encryption = (
            serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
        )
        path.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        )
    return path


def make_pki(directory: Path) -> Pki:
    """Write a fresh set of certificates and keys into `directory`."""
    server_key, other_key, ca_key, client_key, rogue_key = (
        ec.generate_private_key(ec.SECP256R1()) for _ in range(5)
    )
    ca = _certificate("test client CA", ca_key, ca=True)
    return Pki(
        directory=directory,
        server_cert=_write(directory / "server.crt", _certificate("127.0.0.1", server_key, server=True)),
        server_key=_write(directory / "server.key", key=server_key),
        other_key=_write(directory / "other.key", key=other_key),
        encrypted_key=_write(directory / "encrypted.key", key=server_key, password=b"passphrase"),
        client_ca=_write(directory / "ca.crt", ca),
        client_cert=_write(
            directory / "client.crt", _certificate("client", client_key, "test client CA", ca_key)
        ),
        client_key=_write(directory / "client.key", key=client_key),
        rogue_cert=_write(directory / "rogue.crt", _certificate("client", rogue_key)),
        rogue_key=_write(directory / "rogue.key", key=rogue_key),
    )
