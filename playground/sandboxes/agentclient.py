"""The web tier's handle on the sandbox agent of this host."""

from django.conf import settings

from sandbox.wire.client import AgentClient


def client() -> AgentClient:
    return AgentClient(settings.PLAYGROUND.agent_socket)
