"""``manage.py hostcerts``: one authority, a certificate for the site that only a TLS client can use
and one per sandbox host that only a TLS server can use, for the addresses given (docs/hosts.md)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.core.management import CommandError, call_command
from django.test import override_settings

from playground.config import load
from sandbox.wire import tls


@pytest.fixture
def tls_dir(tmp_path: Path):
    with override_settings(PLAYGROUND=load({"PLAYGROUND_TLS_DIR": str(tmp_path / "tls")})):
        yield tmp_path / "tls"


def certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_the_site_command_makes_the_authority_once_and_a_client_only_certificate(tls_dir: Path) -> None:
    call_command("hostcerts", "site")
    authority = (tls_dir / tls.CA_CERT).read_bytes()
    call_command("hostcerts", "site")  # again: a new site certificate, the same authority
    assert (tls_dir / tls.CA_CERT).read_bytes() == authority
    usage = certificate(tls_dir / tls.SITE_CERT).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert (tls_dir / tls.CA_KEY).stat().st_mode & 0o077 == 0 and (tls_dir / tls.SITE_KEY).stat().st_mode & 0o077 == 0
    tls.client_context(tls_dir)  # loads


def test_with_the_hosts_registry_address_the_site_command_also_makes_the_web_hosts_registry_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tls_dir = tmp_path / "tls"
    cfg = load({"PLAYGROUND_TLS_DIR": str(tls_dir), "PLAYGROUND_REGISTRY_HOSTS_LISTEN": "10.0.0.1:5053"})
    with override_settings(PLAYGROUND=cfg):
        call_command("hostcerts", "site")
    assert f"registry certificate {tls_dir / tls.REGISTRY_CERT} for 10.0.0.1" in capsys.readouterr().out
    made = certificate(tls_dir / tls.REGISTRY_CERT)
    names = made.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in names] == ["10.0.0.1"]  # what the sandbox hosts' fronts dial
    usage = made.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]  # no agent takes it for the site's
    assert (tls_dir / tls.REGISTRY_KEY).stat().st_mode & 0o077 == 0
    tls.registry_server_context(tls_dir)  # what the web host's registry front loads


def test_a_registry_address_of_every_interface_is_refused_with_what_to_give(tmp_path: Path) -> None:
    cfg = load({"PLAYGROUND_TLS_DIR": str(tmp_path / "tls"), "PLAYGROUND_REGISTRY_HOSTS_LISTEN": "0.0.0.0:5053"})
    with override_settings(PLAYGROUND=cfg), pytest.raises(CommandError, match="the one the sandbox hosts dial"):
        call_command("hostcerts", "site")


def test_a_host_certificate_names_its_addresses_is_for_servers_only_and_comes_with_the_authority(
    tls_dir: Path, tmp_path: Path
) -> None:
    call_command("hostcerts", "site")
    out = tmp_path / "sandbox-2"
    call_command(
        "hostcerts", "host", "sandbox-2", "--address", "10.0.0.5", "--address", "sb2.example.org", "--out", str(out)
    )
    made = certificate(out / tls.AGENT_CERT)
    names = made.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in names] == ["10.0.0.5", "sb2.example.org"]
    usage = made.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert (out / tls.CA_CERT).read_bytes() == (tls_dir / tls.CA_CERT).read_bytes()
    assert not (out / tls.CA_KEY).exists()
    context = tls.server_context(out)  # what the host's agent loads
    assert context.verify_mode == ssl.CERT_REQUIRED and context.minimum_version == ssl.TLSVersion.TLSv1_3


@pytest.mark.parametrize(
    "args, words",
    [
        (["host", "Sandbox_2", "--address", "10.0.0.5"], "is not a host name"),
        (["host", "sandbox-2", "--address", "not a name!"], "neither an IP address nor a DNS name"),
    ],
)
def test_a_bad_host_request_is_refused_with_a_sentence(tls_dir: Path, args: list[str], words: str) -> None:
    call_command("hostcerts", "site")
    with pytest.raises(CommandError, match=words):
        call_command("hostcerts", *args)


def test_a_host_certificate_needs_the_authority_which_the_site_command_makes(tls_dir: Path) -> None:
    with pytest.raises(CommandError, match="hostcerts site"):
        call_command("hostcerts", "host", "sandbox-2", "--address", "10.0.0.5")
