"""The pure parts of sandbox networking: names from the prefix, the nftables ruleset, the next free
address and the reading of the address set; no root, no kernel."""

from __future__ import annotations

import ipaddress
import json

import pytest

from sandbox.network.addresses import next_free, parse_elements
from sandbox.network.layout import IFNAMSIZ, NetworkConfig, NetworkError
from sandbox.network.rules import ADDRESS_SET, render_ruleset

A = ipaddress.IPv4Address


def config(subnet: str = "10.89.0.0/29", egress: bool = False) -> NetworkConfig:
    return NetworkConfig.for_prefix("pg", subnet, egress)


def test_every_name_comes_from_the_prefix() -> None:
    cfg = config()
    assert (cfg.bridge, cfg.table, cfg.gateway) == ("pgbr0", "pg", A("10.89.0.1"))
    assert cfg.netns_name("abc").startswith("pg-")
    assert len(cfg.netns_name("abc")) == 3 + 16
    assert cfg.veth_name("abc").startswith("pg-")
    assert len(cfg.veth_name("abc")) == IFNAMSIZ
    assert cfg.netns_name("abc") != cfg.netns_name("abd")


@pytest.mark.parametrize("prefix", ["", "Pg", "1pg", "pg-", "waytoolong"])
def test_a_bad_prefix_is_refused_with_the_rule(prefix: str) -> None:
    with pytest.raises(NetworkError, match="1-8 lower-case"):
        NetworkConfig.for_prefix(prefix, "10.89.0.0/16")


@pytest.mark.parametrize("subnet", ["10.89.0.0/31", "fd00::/64", "not a subnet"])
def test_a_subnet_without_room_for_a_sandbox_is_refused(subnet: str) -> None:
    with pytest.raises(NetworkError, match="subnet"):
        NetworkConfig.for_prefix("pg", subnet)


def test_the_next_free_address_follows_the_cursor_and_skips_used_ones() -> None:
    cfg = config()  # sandboxes get .2 to .6
    used = {A("10.89.0.3"): "a", A("10.89.0.4"): "b"}
    assert next_free(cfg, used, int(A("10.89.0.2"))) == A("10.89.0.5")
    assert next_free(cfg, used, int(A("10.89.0.6"))) == A("10.89.0.2")  # wraps, never the broadcast


def test_a_full_subnet_says_how_to_make_room() -> None:
    cfg = config()
    used = {A(f"10.89.0.{n}"): str(n) for n in range(2, 7)}
    with pytest.raises(NetworkError, match="no free address left in 10.89.0.0/29"):
        next_free(cfg, used, int(cfg.gateway))


def test_the_address_set_is_read_with_its_owners() -> None:
    listing = {
        "nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"set": {"name": ADDRESS_SET, "elem": [{"elem": {"val": "10.89.0.2", "comment": "sbx1"}}, "10.89.0.3"]}},
        ]
    }
    assert parse_elements(json.dumps(listing)) == {A("10.89.0.2"): "sbx1", A("10.89.0.3"): ""}
    assert parse_elements("") == {}


def test_with_egress_off_nothing_is_forwarded_and_nothing_masqueraded() -> None:
    ruleset = render_ruleset(config(), {A("10.89.0.2"): "sbx1"}, None)
    assert ruleset.startswith("table inet pg\ndelete table inet pg\n")
    assert 'counter name "egress_off" drop' in ruleset
    assert "masquerade" not in ruleset
    assert 'elements = { 10.89.0.2 comment "sbx1" }' in ruleset


def test_with_egress_on_only_public_addresses_are_reached_through_the_default_interface() -> None:
    ruleset = render_ruleset(config(egress=True), {}, "eth0")
    assert 'ip daddr @non_public counter name "to_non_public" drop' in ruleset
    assert 'ip saddr 10.89.0.0/29 oifname "eth0" masquerade' in ruleset
    assert "169.254.0.0/16" in ruleset
    assert 'counter name "egress_off" drop' not in ruleset


def test_egress_on_without_an_interface_is_refused() -> None:
    with pytest.raises(NetworkError, match="no egress interface"):
        render_ruleset(config(egress=True), {}, None)
