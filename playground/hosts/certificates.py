"""The hosts' certificate authority and the certificates it signs (see :mod:`sandbox.wire.tls`).

:func:`make_authority` makes the authority once (its key never leaves the web host);
:func:`make_site` the site's client certificate; :func:`make_host` a sandbox host's server
certificate, naming the addresses the site dials it by. Keys are ECDSA P-256, whose handshakes
cost a fraction of RSA's; private keys are written mode 0600. ``manage.py hostcerts`` calls these.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sandbox.wire import tls

DNS_NAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")
AUTHORITY_YEARS = 10
CERTIFICATE_YEARS = 3
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH


class CertificateError(Exception):
    """A certificate could not be made; the message says why and what to do."""


def make_authority(tls_dir: Path, name: str = "Playground hosts") -> bool:
    """The authority's key and certificate in ``tls_dir``; False (and nothing changed) if there is one."""
    if (tls_dir / tls.CA_CERT).exists() or (tls_dir / tls.CA_KEY).exists():
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        _builder(subject, subject, key.public_key(), AUTHORITY_YEARS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(**_usage(key_cert_sign=True, crl_sign=True)), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    tls_dir.mkdir(parents=True, exist_ok=True)
    _write_key(tls_dir / tls.CA_KEY, key)
    (tls_dir / tls.CA_CERT).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return True


def make_site(tls_dir: Path) -> None:
    """The site's client certificate (``site.crt``, ``site.key``), signed by the authority in ``tls_dir``."""
    _issue(tls_dir, tls_dir, tls.SITE_CERT, tls.SITE_KEY, "Playground site", [], ExtendedKeyUsageOID.CLIENT_AUTH)


def make_registry(tls_dir: Path, address: str) -> None:
    """The web host's server certificate for the sandbox hosts' link to its registry front
    (``registry.crt``, ``registry.key``), naming ``address``, the one their fronts dial
    (PLAYGROUND_REGISTRY_HOSTS_LISTEN's host, docs/hosts.md)."""
    names = [_general_name("the web host", address)]
    _issue(tls_dir, tls_dir, tls.REGISTRY_CERT, tls.REGISTRY_KEY, "Playground registry", names, SERVER_AUTH)


def give_site_keys(tls_dir: Path, uid: int, gid: int) -> list[str]:
    """Make the site's keys in ``tls_dir`` (``site.key``, and ``registry.key`` if there is one) the web
    user's (``uid``, ``gid``), whose processes dial the sandbox hosts with the first and serve their
    registry link with the second, and ``tls_dir`` traversable for them; the names of those that
    were not theirs yet. ``manage.py hostcerts site`` calls it, and the launcher at every start (for
    keys made before the web user existed)."""
    given = []
    for name in (tls.SITE_KEY, tls.REGISTRY_KEY):
        key = tls_dir / name
        if key.exists() and key.stat().st_uid != uid:
            os.chown(key, uid, gid)
            given.append(name)
    if given:
        tls_dir.chmod(0o755)
    return given


def make_host(tls_dir: Path, out: Path, name: str, addresses: list[str]) -> None:
    """A sandbox host's server certificate for ``addresses`` (IP addresses or DNS names, as the site
    dials them) in ``out`` as ``agent.crt`` and ``agent.key``, with a copy of the authority's
    certificate: the directory to copy to that host's PLAYGROUND_TLS_DIR."""
    if not addresses:
        raise CertificateError(f"host {name}: give the address the site dials it by (--address), e.g. 10.0.0.5")
    names = [_general_name(name, address) for address in addresses]
    _issue(tls_dir, out, tls.AGENT_CERT, tls.AGENT_KEY, name, names, SERVER_AUTH)
    if out.resolve() != tls_dir.resolve():
        (out / tls.CA_CERT).write_bytes((tls_dir / tls.CA_CERT).read_bytes())


def _general_name(host: str, address: str) -> x509.GeneralName:
    """``address`` as a subject alternative name: an IP address, or a DNS name (IDNA-encoded)."""
    try:
        return x509.IPAddress(ipaddress.ip_address(address))
    except ValueError:
        pass
    try:
        encoded = address.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        encoded = ""
    if not DNS_NAME.match(encoded) or len(encoded) > 253:
        raise CertificateError(f"host {host}: {address!r} is neither an IP address nor a DNS name")
    return x509.DNSName(encoded)


def _issue(
    tls_dir: Path,
    out: Path,
    cert_name: str,
    key_name: str,
    common_name: str,
    names: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
) -> None:
    try:
        authority_key = serialization.load_pem_private_key((tls_dir / tls.CA_KEY).read_bytes(), password=None)
        authority = x509.load_pem_x509_certificate((tls_dir / tls.CA_CERT).read_bytes())
    except (OSError, ValueError) as exc:
        raise CertificateError(
            f"cannot read the authority in {tls_dir} ({exc}); certificates are made on the web host, "
            "where 'manage.py hostcerts site' makes the authority first"
        )
    if not isinstance(authority_key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{tls_dir / tls.CA_KEY} is not the ECDSA key 'manage.py hostcerts' makes")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        _builder(subject, authority.subject, key.public_key(), CERTIFICATE_YEARS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**_usage(digital_signature=True)), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority_key.public_key()), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    out.mkdir(parents=True, exist_ok=True)
    _write_key(out / key_name, key)
    certificate = builder.sign(authority_key, hashes.SHA256())
    (out / cert_name).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, years: int
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # a host whose clock is a little behind
        .not_valid_after(now + datetime.timedelta(days=365 * years))
    )


def _usage(**chosen: bool) -> dict[str, bool]:
    """KeyUsage's nine flags, the ``chosen`` ones set."""
    flags = ["digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement"]
    flags += ["key_cert_sign", "crl_sign", "encipher_only", "decipher_only"]
    return {flag: chosen.get(flag, False) for flag in flags}


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """``key`` as PEM in a new file readable by its owner alone."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
