"""Per-address limit on starting sessions: a sliding one-minute window kept in Redis.

Redis is already the broker and the channel layer. One sorted set per address holds the times
of its recent starts: at most the limit of members, expiring a minute after the last one, so
memory is bounded. The check and the record happen in one Lua script (atomic across every web
process) using Redis's own clock. A start that is refused after it was recorded (the visitor
has their most sessions running, the site is full) is taken out again, so the window counts
only sessions that started.
"""

from __future__ import annotations

import logging
from functools import cache

import redis
from django.conf import settings
from redis.commands.core import Script

log = logging.getLogger("playground.api")

WINDOW_SECONDS = 60
KEY_PREFIX = "playground:starts:"

# KEYS[1] the address's set; ARGV window, limit, a unique member. Returns 0 when allowed (and
# records the start), else the whole seconds until the oldest start leaves the window.
SLIDING_WINDOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, math.ceil(tonumber(oldest[2]) + window - now))
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('EXPIRE', KEYS[1], window)
return 0
"""


@cache
def _script() -> Script:
    connection = redis.Redis.from_url(settings.PLAYGROUND.redis_url, socket_timeout=2, socket_connect_timeout=2)
    return connection.register_script(SLIDING_WINDOW)


def start_allowed(address: str | None, limit: int, mark: str) -> int:
    """Record a start by ``address``, as ``mark`` (unique), if it has made fewer than ``limit`` in
    the last minute.

    Returns 0 when allowed, else the seconds to wait (for ``Retry-After``). Without an address,
    or when Redis does not answer (logged), the start is allowed: the broker check that follows
    refuses it anyway if Redis is down.
    """
    return allowed(KEY_PREFIX, address, limit, mark)


def allowed(prefix: str, address: str | None, limit: int, mark: str) -> int:
    """Record an action of ``address`` in the sliding window named ``prefix`` (``KEY_PREFIX``: session
    starts; another prefix counts another kind of request apart), as ``mark`` (unique), if it made
    fewer than ``limit`` of them in the last minute.

    Returns 0 when allowed, else the seconds to wait (for ``Retry-After``). Without an address,
    or when Redis does not answer (logged), the action is allowed.
    """
    if not address:
        return 0
    try:
        return int(_script()(keys=[prefix + address], args=[WINDOW_SECONDS, limit, mark]))
    except redis.RedisError as exc:
        log.warning("cannot check the rate of %s%s: %s", prefix, address, exc)
        return 0


def forget_start(address: str | None, mark: str) -> None:
    """Take back the start recorded as ``mark``: it was refused after all (the visitor had their
    most sessions running, the site was full), and only sessions that started count."""
    if not address:
        return
    try:
        _script().registered_client.zrem(KEY_PREFIX + address, mark)
    except redis.RedisError as exc:
        log.warning("cannot take back a refused start of %s: %s", address, exc)
