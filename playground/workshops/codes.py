"""The secrets of a workshop: its join code, a learner's PIN, and a learner's session key kept sealed.

Pure functions (no database): the join code's alphabet leaves out the characters people confuse
when reading them off a projector (0 and O, 1, I and L); codes are read case-insensitively.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from django.contrib.auth.hashers import check_password

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, no 1/I/L
CODE_LENGTH = 6
PIN_DIGITS = 4
PIN_SCHEME = "hmac-sha256"
_SEPARATORS = re.compile(r"[\s-]+")


def new_code() -> str:
    """A fresh join code: CODE_LENGTH characters of CODE_ALPHABET, from :mod:`secrets`."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(typed: str) -> str:
    """A code as a person typed it, in the form codes are stored: upper case, without spaces or dashes."""
    return _SEPARATORS.sub("", typed).upper()


def is_code(text: str) -> bool:
    """Whether ``text`` (normalised) can be a join code at all: the right length and alphabet."""
    return len(text) == CODE_LENGTH and all(c in CODE_ALPHABET for c in text)


def new_pin() -> str:
    """A fresh PIN: PIN_DIGITS decimal digits, from :mod:`secrets` (leading zeros kept)."""
    return f"{secrets.randbelow(10**PIN_DIGITS):0{PIN_DIGITS}d}"


def hash_pin(pin: str, secret_key: str) -> str:
    """The PIN as stored (never the PIN itself): ``hmac-sha256$<salt>$<digest>``, an HMAC of the
    salted PIN keyed by the site's secret key. A slow password hash would guard nothing here: a
    4-digit PIN falls to any hash in 10,000 tries, so what keeps it from a copy of the database is
    the secret key that copy lacks (as for the sealed session key), and a join costs microseconds
    instead of PBKDF2's 0.2 s of CPU, 10 s for a class of 50 joining at once."""
    salt = secrets.token_hex(16)
    return f"{PIN_SCHEME}${salt}${_pin_digest(pin, salt, secret_key)}"


def _pin_digest(pin: str, salt: str, secret_key: str) -> str:
    message = f"playground.workshops.pin\0{salt}\0{pin}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def pin_matches(pin: str, stored: str, secret_key: str) -> bool:
    """Whether ``pin`` (as typed; spaces around it ignored) is the PIN ``stored`` was made from
    (by :func:`hash_pin`, or by Django's password hashers as PINs were stored before)."""
    typed = pin.strip()
    if len(typed) != PIN_DIGITS or not typed.isdigit():
        return False
    scheme, _, rest = stored.partition("$")
    if scheme != PIN_SCHEME:
        return check_password(typed, stored)
    salt, _, digest = rest.partition("$")
    return hmac.compare_digest(_pin_digest(typed, salt, secret_key), digest)


def _pad(secret_key: str, session_id: str) -> bytes:
    """32 bytes unique to a session, from the site's secret key: the one-time pad of its sealed key."""
    return hmac.new(secret_key.encode(), b"playground.workshops.key\0" + session_id.encode(), hashlib.sha256).digest()


def seal_key(key: str, secret_key: str, session_id: str) -> str:
    """A session's key (``secrets.token_urlsafe(32)``) encrypted for the database: XOR with a pad only
    the site's secret key makes, so a copy of the database alone opens no learner's session."""
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    pad = _pad(secret_key, session_id)
    if len(raw) != len(pad):
        raise ValueError(f"a session key has {len(pad)} bytes; this one has {len(raw)}")
    return bytes(a ^ b for a, b in zip(raw, pad, strict=True)).hex()


def open_key(sealed: str, secret_key: str, session_id: str) -> str:
    """The session key ``seal_key`` sealed (with the same secret key and session id)."""
    raw = bytes(a ^ b for a, b in zip(bytes.fromhex(sealed), _pad(secret_key, session_id), strict=True))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
