"""The pure parts of sandbox networking: names from the prefix, the nftables ruleset, the next free
address and the reading of the address set; no root, no kernel."""

from __future__ import annotations

import ipaddress
import json

import pytest

from sandbox.network.addresses import next_free, parse_elements
from sandbox.network.layout import IFNAMSIZ, NetworkConfig, NetworkError
from sandbox.network.ports import PORT_SET, mac_for
from sandbox.network.rules import ADDRESS_SET, PEER_SET, peer_pairs, render_peer_update, render_ruleset

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


def test_each_sandbox_mac_is_made_from_its_address_locally_administered_and_apart_from_bridge_and_docker() -> None:
    mac = mac_for(A("10.89.0.2"))
    assert mac == "06:70:0a:59:00:02"
    first = int(mac[:2], 16)
    assert first & 0b11 == 0b10  # locally administered, unicast
    assert not mac.startswith("02:")  # the bridge's own MAC and Docker's 02:42:... start so
    assert mac_for(A("10.89.0.3")) != mac


def test_the_bridge_table_pins_each_handed_out_address_to_its_sandboxs_port_and_mac() -> None:
    cfg = config()
    ruleset = render_ruleset(cfg, {A("10.89.0.2"): "sbx1", A("10.89.0.3"): "sbx2"}, None)
    assert "table bridge pg\ndelete table bridge pg\ntable bridge pg {" in ruleset
    assert f"set {PORT_SET} {{\n        type ifname . ether_addr . ipv4_addr\n" in ruleset
    first = f'"{cfg.veth_name("sbx1")}" . 06:70:0a:59:00:02 . 10.89.0.2 comment "sbx1"'
    second = f'"{cfg.veth_name("sbx2")}" . 06:70:0a:59:00:03 . 10.89.0.3 comment "sbx2"'
    assert f"elements = {{ {first}, {second} }}" in ruleset
    assert "elements" not in render_ruleset(cfg, {}, None).split("table bridge pg {")[1]


def chain(ruleset: str, name: str) -> list[str]:
    """The rules of chain ``name`` (continued lines joined, comments dropped)."""
    body = ruleset.split(f"chain {name} {{\n", 1)[1].split("\n    }", 1)[0].replace("\\\n", " ")
    return [" ".join(line.split("#")[0].split()) for line in body.splitlines() if line.split("#")[0].strip()]


def test_from_a_sandbox_port_only_pinned_ipv4_and_arp_pass_and_every_other_frame_is_counted_and_dropped() -> None:
    ruleset = render_ruleset(config(), {A("10.89.0.2"): "sbx1"}, None)
    assert chain(ruleset, "prerouting") == [
        "type filter hook prerouting priority filter; policy accept;",
        'iifname "pg-*" jump from_sandbox_port',
    ]
    arp_ipv4 = "arp htype 1 arp ptype 0x0800 arp hlen 6 arp plen 4"
    assert chain(ruleset, "from_sandbox_port") == [
        f"ether type ip iifname . ether saddr . ip saddr @{PORT_SET} accept",
        f"ether type arp {arp_ipv4} iifname . ether saddr . arp saddr ip @{PORT_SET} "
        f"iifname . arp saddr ether . arp saddr ip @{PORT_SET} accept",
        'ether type ip counter name "unpinned_ipv4" drop',
        'ether type arp counter name "unpinned_arp" drop',
        'counter name "not_ipv4_or_arp" drop',
    ]


def test_a_packet_the_host_gets_on_a_sandbox_port_rather_than_the_bridge_is_dropped_first() -> None:
    ruleset = render_ruleset(config(egress=True), {}, "eth0")
    for name, jump in (("input", "from_sandbox_to_host"), ("forward", "from_sandbox")):
        rules = chain(ruleset, name)
        assert rules[1:3] == ['iifname "pg-*" counter name "unbridged" drop', f'iifname "pgbr0" jump {jump}']


def test_the_peer_pairs_are_every_two_members_of_one_group_both_ways_and_never_across_groups() -> None:
    pairs = peer_pairs([[A("10.89.0.2"), A("10.89.0.3"), A("10.89.0.4")], [A("10.89.0.5")], [A("10.89.0.6")]])
    assert len(pairs) == 6  # 3 x 2 in the first group; a group of one reaches no one
    assert (A("10.89.0.2"), A("10.89.0.3")) in pairs and (A("10.89.0.3"), A("10.89.0.2")) in pairs
    assert not [p for p in pairs if A("10.89.0.5") in p or A("10.89.0.6") in p]
    assert peer_pairs([]) == []


def test_a_group_s_pairs_are_accepted_before_the_sandbox_to_sandbox_drop_and_redirects_are_dropped() -> None:
    pairs = peer_pairs([[A("10.89.0.2"), A("10.89.0.3")]])
    ruleset = render_ruleset(config(), {A("10.89.0.2"): "sbx1", A("10.89.0.3"): "sbx2"}, None, pairs)
    assert f"set {PEER_SET} {{\n        type ipv4_addr . ipv4_addr\n" in ruleset
    assert "elements = { 10.89.0.2 . 10.89.0.3, 10.89.0.3 . 10.89.0.2 }" in ruleset
    rules = chain(ruleset, "from_sandbox")
    accept = rules.index(f'oifname "pgbr0" ip saddr . ip daddr @{PEER_SET} accept')
    assert rules.index('ip saddr != @sandboxes counter name "spoofed" drop') < accept
    assert accept < rules.index('oifname "pgbr0" counter name "to_sandbox" drop')
    assert chain(ruleset, "output")[1:] == ['oifname "pgbr0" icmp type redirect counter name "redirects" drop']
    assert "elements" not in render_ruleset(config(), {}, None).split(f"set {PEER_SET} {{")[1].split("}")[0]


def test_the_peer_set_is_replaced_whole_in_one_script() -> None:
    pairs = peer_pairs([[A("10.89.0.2"), A("10.89.0.3")]])
    assert render_peer_update("pg", pairs) == (
        f"flush set inet pg {PEER_SET}\n"
        f"add element inet pg {PEER_SET} {{ 10.89.0.2 . 10.89.0.3, 10.89.0.3 . 10.89.0.2 }}\n"
    )
    assert render_peer_update("pg", []) == f"flush set inet pg {PEER_SET}\n"


def test_the_one_host_port_a_sandbox_reaches_is_the_registry_mirrors_front_on_the_gateway() -> None:
    cfg = NetworkConfig.for_prefix("pg", "10.89.0.0/29", registry_port=5050)
    to_host = render_ruleset(cfg, {}, None).split("chain from_sandbox_to_host {")[1].split("}")[0]
    accepts = [line.strip() for line in to_host.splitlines() if line.strip().endswith("front") or " accept" in line]
    assert accepts == [
        "ct state established,related accept  # replies to connections the host opened",
        "ip daddr 10.89.0.1 tcp dport 5050 accept  # the registry mirror's front",
    ]
    assert to_host.index("dport 5050") < to_host.index('counter name "to_host" drop')


def test_without_a_registry_port_no_host_port_is_open() -> None:
    to_host = render_ruleset(config(), {}, None).split("chain from_sandbox_to_host {")[1].split("}")[0]
    assert "dport" not in to_host
