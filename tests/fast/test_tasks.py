"""The provisioning task against fake agents that refuse, hang or die: each failure ends the
session with the reason its viewers are told, and no sandbox is left behind."""

from __future__ import annotations

import pytest
from pytest_django import Settings

from playground.sandboxes import tasks
from playground.sandboxes.models import Instance, Session
from tests.fakeagent import AT_CAPACITY, BusyAgent, DyingAgent, FakeAgent, FreeingAgent, NeverAgent

pytestmark = pytest.mark.django_db


def provisioned(settings: Settings, kind: type[FakeAgent]) -> tuple[Session, Instance, FakeAgent]:
    """A new session's instance after its provisioning task ran against ``kind`` of agent."""
    session, _key = Session.start("busybox", 3600, None)
    with kind.running(settings.PLAYGROUND.agent_socket) as agent:
        tasks.provision_instance(str(session.instances.get().pk))
    session.refresh_from_db()
    return session, session.instances.get(), agent


def test_a_create_refused_by_a_full_host_ends_the_session_as_out_of_resources(settings: Settings) -> None:
    session, _instance, _agent = provisioned(settings, BusyAgent)
    assert session.state == Session.State.ENDED, session.state
    assert session.ended_reason == "out_of_resources", session.ended_reason


def test_a_create_refused_by_a_full_host_keeps_the_agents_words_on_the_instance(settings: Settings) -> None:
    _session, instance, _agent = provisioned(settings, BusyAgent)
    assert instance.error == AT_CAPACITY


def test_a_full_host_is_asked_once_not_again_and_again(settings: Settings) -> None:
    _session, _instance, agent = provisioned(settings, BusyAgent)
    assert agent.ops().count("create") == 1, agent.ops()


def test_a_full_host_is_asked_again_while_an_ended_sessions_sandbox_is_due_to_be_destroyed(settings: Settings) -> None:
    # The other session's DELETE has answered, but its destruction has not reached the agent yet.
    ending, _key = Session.start("busybox", 3600, None)
    ending.instances.update(state=Instance.State.RUNNING)
    Session.objects.filter(pk=ending.pk).update(state=Session.State.ENDING)
    session, instance, agent = provisioned(settings, FreeingAgent)
    assert agent.ops().count("create") == 2, agent.ops()
    assert (session.state, instance.state) == (Session.State.ACTIVE, Instance.State.RUNNING)


def test_a_full_host_with_nothing_due_to_be_destroyed_is_not_asked_again(settings: Settings) -> None:
    session, _instance, agent = provisioned(settings, FreeingAgent)
    assert agent.ops().count("create") == 1, agent.ops()
    assert session.ended_reason == "out_of_resources", session.ended_reason


@pytest.mark.parametrize("kind", [DyingAgent, NeverAgent], ids=["dying", "never-answering"])
@pytest.mark.usefixtures("quick_give_up")
def test_an_agent_that_never_replies_to_create_ends_the_session_as_failed(
    settings: Settings, kind: type[FakeAgent]
) -> None:
    session, _instance, _agent = provisioned(settings, kind)
    assert session.ended_reason == "failed", session.ended_reason


@pytest.mark.parametrize("kind", [BusyAgent, DyingAgent], ids=["busy", "dying"])
@pytest.mark.usefixtures("quick_give_up")
def test_a_failed_create_is_followed_by_a_destroy_so_nothing_half_made_stays(
    settings: Settings, kind: type[FakeAgent]
) -> None:
    _session, instance, agent = provisioned(settings, kind)
    assert agent.ops()[-1] == "destroy", agent.ops()
    assert agent.requests[-1]["id"] == instance.sandbox_id, agent.requests[-1]
