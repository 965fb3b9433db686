"""A channel layer that loses Redis: the one failure mode of the channel layer the fast tests provoke.

:class:`LosingLayer` is Channels' in-memory layer until :meth:`LosingLayer.lose` is called; from
then on each ``receive`` (one waiting already included) raises ``redis.exceptions.ConnectionError``,
as ``channels_redis`` does while Redis restarts.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.layers import InMemoryChannelLayer
from redis.exceptions import ConnectionError as RedisConnectionError

REFUSED = "Error 111 connecting to 127.0.0.1:6379. Connection refused."


class LosingLayer(InMemoryChannelLayer):
    """Channels' in-memory layer whose receives fail once :meth:`lose` was called."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lost = asyncio.Event()

    def lose(self) -> None:
        """Redis is gone: every receive, waiting or to come, raises."""
        self.lost.set()

    async def receive(self, channel: str) -> dict[str, Any]:
        message = asyncio.ensure_future(super().receive(channel))
        lost = asyncio.ensure_future(self.lost.wait())
        await asyncio.wait({message, lost}, return_when=asyncio.FIRST_COMPLETED)
        if message.done():
            lost.cancel()
            return message.result()
        message.cancel()
        raise RedisConnectionError(REFUSED)
