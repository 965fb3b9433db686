"""Who a request comes from: the address per-address limits count, behind proxies or not."""

from __future__ import annotations

import uuid

import pytest
from django.test import RequestFactory

from playground.sandboxes import access


def request_from(remote: str, forwarded: str | None = None):
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=remote, **headers)


def test_without_proxies_the_address_is_the_peers_and_x_forwarded_for_is_ignored() -> None:
    assert access.client_address(request_from("203.0.113.9", "198.51.100.1"), 0) == "203.0.113.9"


@pytest.mark.parametrize(
    "forwarded,proxies,address",
    [
        ("198.51.100.1", 1, "198.51.100.1"),
        ("6.6.6.6, 198.51.100.1", 1, "198.51.100.1"),  # the left entry is the client's invention
        ("6.6.6.6, 198.51.100.1, 10.0.0.2", 2, "198.51.100.1"),
        ("2001:db8::1", 1, "2001:db8::1"),
    ],
)
def test_behind_proxies_the_address_is_the_one_the_outermost_proxy_saw(
    forwarded: str, proxies: int, address: str
) -> None:
    assert access.client_address(request_from("127.0.0.1", forwarded), proxies) == address


@pytest.mark.parametrize("forwarded", [None, "", "not-an-address", "198.51.100.1"])
def test_a_missing_short_or_bad_header_falls_back_to_the_peer(forwarded: str | None) -> None:
    assert access.client_address(request_from("127.0.0.1", forwarded), 2) == "127.0.0.1"


def test_exempt_networks_are_not_limited() -> None:
    exempt = ["127.0.0.0/8", "::1/128", "203.0.113.0/24"]
    assert not access.limited("127.0.0.1", exempt)
    assert not access.limited("203.0.113.50", exempt)
    assert access.limited("198.51.100.1", exempt)
    assert access.limited("2001:db8::1", exempt)
    assert not access.limited(None, exempt)


def test_the_session_keys_a_browser_holds_are_read_from_its_session_cookies_only() -> None:
    one, two = uuid.uuid4(), uuid.uuid4()
    cookies = {
        f"pg_{one.hex}": "key-one",
        "csrftoken": "not-a-session",
        f"pg_{two}": "a-session-id-not-in-hex",  # not the name a start sets
        "pg_nonsense": "key",
        f"pg_{two.hex}": "",
    }
    assert access.keys_from_cookies(cookies, most=10) == {one: "key-one"}


def test_at_most_so_many_session_cookies_are_read() -> None:
    cookies = {f"pg_{uuid.uuid4().hex}": f"key-{n}" for n in range(5)}
    assert list(access.keys_from_cookies(cookies, most=3).values()) == ["key-0", "key-1", "key-2"]
