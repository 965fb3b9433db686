"""Sandbox hosts of other machines, in the web tier alone (docs/hosts.md): placement by room,
``manage.py hosts``, a host that stops answering, and where a port link of such a host goes.
Against no agent of another host: one that does not answer is what these tests need."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from pytest_django import Settings

from playground.celery import app as celery_app
from playground.hosts import certificates
from playground.hosts.models import SandboxHost
from playground.ports.access import decide, load_session
from playground.sandboxes import agentclient, placement, queues, tasks
from playground.sandboxes.models import EndReason, Instance, Session
from sandbox.wire import client as client_module
from tests.waiting import eventually

pytestmark = pytest.mark.django_db


def host(name: str, limit: int, state: str = SandboxHost.State.ACTIVE, seen: float = 0) -> SandboxHost:
    """A host record as if it answered ``seen`` seconds ago (an address where nothing listens)."""
    last_seen = timezone.now() - timedelta(seconds=seen)
    address = f"127.0.0.1:{1 + SandboxHost.objects.count()}"
    return SandboxHost.objects.create(name=name, address=address, state=state, limit=limit, last_seen=last_seen)


def session_on(where: SandboxHost | None, nodes: int = 1) -> Session:
    session, _key = Session.start("busybox", 600, None, host=where)
    for n in range(2, nodes + 1):
        Instance.objects.create(session=session, name=f"node{n}", image="busybox")
    return session


def test_a_new_session_goes_where_there_is_most_room_this_machine_winning_a_tie(settings: Settings) -> None:
    settings.PLAYGROUND = replace(settings.PLAYGROUND, host_max_sandboxes=3)
    big = host("big", 5)
    assert placement.choose() == big  # 5 against 3
    session_on(big, nodes=2)
    assert placement.choose() is None  # 3 against 3
    session_on(None)
    assert placement.choose() == big  # 3 against 2


def test_here_first_keeps_a_session_on_this_machine_while_all_its_nodes_fit(settings: Settings) -> None:
    settings.PLAYGROUND = replace(settings.PLAYGROUND, host_max_sandboxes=3)
    roomy = host("roomy", 50)
    assert placement.choose(here_first=True) is None  # 3 free here against 50 there
    session_on(None, nodes=2)
    assert placement.choose(1, here_first=True) is None
    assert placement.choose(2, here_first=True) == roomy  # one free here: two nodes do not fit


def test_a_draining_lost_or_silent_host_gets_no_new_session(settings: Settings) -> None:
    settings.PLAYGROUND = replace(settings.PLAYGROUND, host_max_sandboxes=1, host_lost_after=60)
    host("draining", 50, state=SandboxHost.State.DRAINING)
    host("lost", 50, state=SandboxHost.State.LOST)
    host("silent", 50, seen=61)
    assert placement.choose() is None


def test_a_host_that_missed_a_heartbeat_gets_no_new_session_until_it_answers_again(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.PLAYGROUND = replace(settings.PLAYGROUND, host_max_sandboxes=1, host_lost_after=60)
    hung = host("hung", 50, seen=1)
    assert placement.choose() == hung
    tasks._not_answering(hung, "timeout", timezone.now())  # the reaper's heartbeat, missed
    hung.refresh_from_db()
    assert hung.state == SandboxHost.State.ACTIVE  # not lost: its sessions live on
    assert placement.choose() is None
    call_command("hosts", "list")
    assert "\tnot answering since " in capsys.readouterr().out
    tasks.host_answered(hung, 50, 0, timezone.now())
    assert placement.choose() == hung


def test_the_hosts_command_adds_lists_drains_resumes_and_removes_a_host(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("hosts", "list")
    assert "every session runs on this machine" in capsys.readouterr().out
    call_command("hosts", "add", "sandbox-2", "127.0.0.1:9")  # nothing answers there
    added = capsys.readouterr().out
    assert "does not answer yet" in added
    assert "the workers cannot be told of sandbox-2's queue now" in added  # Redis is not there either
    call_command("hosts", "drain", "sandbox-2")
    assert SandboxHost.objects.get(name="sandbox-2").state == SandboxHost.State.DRAINING
    call_command("hosts", "list")
    assert "sandbox-2\t127.0.0.1:9\tdraining\t0/0 sandboxes\t0 live session(s)\tlast answered never" in (
        capsys.readouterr().out
    )
    call_command("hosts", "resume", "sandbox-2")
    assert SandboxHost.objects.get(name="sandbox-2").state == SandboxHost.State.ACTIVE
    call_command("hosts", "remove", "sandbox-2")
    assert not SandboxHost.objects.exists()


def test_a_hosts_tasks_go_to_its_own_queue_and_this_machines_and_the_others_to_the_default_one() -> None:
    there, here = session_on(host("far", 5)), session_on(None)

    def queue_of(task: str, *args: object) -> str:
        return str(celery_app.amqp.router.route({}, task, args, {})["queue"].name)

    node = there.instances.get()
    assert queue_of("playground.sandboxes.tasks.provision_instance", str(node.pk)) == "sandboxes.far"
    assert queue_of("playground.sandboxes.tasks.remove_instance", str(node.pk)) == "sandboxes.far"
    assert queue_of("playground.sandboxes.tasks.destroy_session", str(there.pk)) == "sandboxes.far"
    assert queue_of("playground.sessiontemplates.tasks.run_setup", str(there.pk)) == "sandboxes.far"
    assert queue_of("playground.sandboxes.tasks.destroy_session", str(here.pk)) == "celery"
    assert queue_of("playground.sandboxes.tasks.provision_instance", str(here.instances.get().pk)) == "celery"
    assert queue_of("playground.sandboxes.tasks.reap_expired") == "celery"


@pytest.fixture
def redis_up(socket_dir: Path, settings: Settings) -> Iterator[None]:
    """A Redis of its own on a unix socket, as the web tier's (PLAYGROUND_REDIS_URL)."""
    path = socket_dir / "redis.sock"
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(path), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        eventually(path.exists, "Redis listens", 10, 0.01)
        settings.PLAYGROUND = replace(settings.PLAYGROUND, redis_url=f"unix://{path}")
        queues._redis.cache_clear()
        yield
    finally:
        server.terminate()
        server.wait()
        queues._redis.cache_clear()


def test_a_host_runs_at_most_half_the_workers_processes_of_tasks_and_a_slot_given_back_is_taken_again(
    redis_up: None, settings: Settings
) -> None:
    settings.PLAYGROUND = replace(settings.PLAYGROUND, worker_concurrency=4)
    assert [queues.take_slot("sandboxes.far", task) for task in ("a", "b", "c")] == [True, True, False]
    assert queues.take_slot("sandboxes.near", "c")  # another host's slots are its own
    assert queues.take_slot("sandboxes.far", "b")  # a task that holds one (delivered again) keeps it
    queues.give_back("sandboxes.far", "a")
    assert queues.take_slot("sandboxes.far", "c")
    assert not queues.take_slot("sandboxes.far", "d")


def test_one_reaper_pass_runs_at_a_time_and_one_runs_again_once_it_ended(redis_up: None) -> None:
    with queues.alone("reaper", hold=60) as first:
        with queues.alone("reaper", hold=60) as second:
            assert (first, second) == (True, False)
        with queues.alone("another", hold=60) as other:
            assert other
    with queues.alone("reaper", hold=60) as again:
        assert again


def test_without_redis_a_hosts_task_and_the_reaper_run_and_say_so(caplog: pytest.LogCaptureFixture) -> None:
    assert queues.take_slot("sandboxes.far", "a")
    with queues.alone("reaper", hold=60) as first:
        assert first
    assert "cannot count the running tasks of sandboxes.far" in caplog.text
    assert "cannot tell whether another reaper runs" in caplog.text


@pytest.mark.parametrize(
    "args, words",
    [
        (["add", "Sandbox_2", "127.0.0.1:9"], "is not a host name"),
        (["add", "sandbox-2", "127.0.0.1"], "is not host:port"),
        (["drain", "nowhere"], "there is no sandbox host 'nowhere'"),
    ],
)
def test_a_bad_hosts_request_is_refused_with_a_sentence(args: list[str], words: str) -> None:
    with pytest.raises(CommandError, match=words):
        call_command("hosts", *args)
    assert not SandboxHost.objects.exists()


def test_a_host_with_a_live_session_cannot_be_removed() -> None:
    session_on(host("busy", 5))
    with pytest.raises(CommandError, match="still has 1 live session"):
        call_command("hosts", "remove", "busy")


def test_a_host_silent_past_the_grace_ends_its_sessions_as_host_lost_and_no_other(settings: Settings) -> None:
    settings.PLAYGROUND = replace(settings.PLAYGROUND, host_lost_after=30)
    recent, gone = host("recent", 5, seen=10), host("gone", 5, seen=31)
    on_recent, on_gone, here = session_on(recent), session_on(gone, nodes=2), session_on(None)
    now = timezone.now()
    for each in (recent, gone):
        tasks._not_answering(each, "connection refused", now)
    assert SandboxHost.objects.get(pk=recent.pk).state == SandboxHost.State.ACTIVE  # within its grace
    assert SandboxHost.objects.get(pk=gone.pk).state == SandboxHost.State.LOST
    ended = Session.objects.get(pk=on_gone.pk)
    assert (ended.state, ended.ended_reason) == (Session.State.ENDED, EndReason.HOST_LOST)
    assert set(ended.instances.values_list("state", flat=True)) == {Instance.State.DESTROYED}
    for untouched in (on_recent, here):
        assert Session.objects.get(pk=untouched.pk).state == Session.State.ACTIVE


def test_a_lost_host_that_answers_again_takes_new_sessions(settings: Settings) -> None:
    settings.PLAYGROUND = replace(settings.PLAYGROUND, host_max_sandboxes=1)
    lost = host("back", 5, state=SandboxHost.State.LOST, seen=600)
    assert placement.choose() is None
    tasks.host_answered(lost, 7, 2, timezone.now())
    back = SandboxHost.objects.get(pk=lost.pk)
    assert (back.state, back.limit, back.sandboxes) == (SandboxHost.State.ACTIVE, 7, 2)
    assert placement.choose() == back


def test_an_answer_does_not_undo_a_drain_made_meanwhile() -> None:
    draining = host("draining", 5)
    SandboxHost.objects.filter(pk=draining.pk).update(state=SandboxHost.State.DRAINING)  # after the reaper read it
    tasks.host_answered(draining, 5, 0, timezone.now())
    assert SandboxHost.objects.get(pk=draining.pk).state == SandboxHost.State.DRAINING


def test_a_drained_host_that_is_lost_and_answers_again_drains_again(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    settings.PLAYGROUND = replace(settings.PLAYGROUND, host_max_sandboxes=1)  # less room here than there
    drained = host("drained", 5)
    call_command("hosts", "drain", "drained")
    SandboxHost.objects.filter(pk=drained.pk).update(state=SandboxHost.State.LOST)  # as the reaper marks it
    tasks.host_answered(drained, 5, 0, timezone.now())
    assert SandboxHost.objects.get(pk=drained.pk).state == SandboxHost.State.DRAINING
    assert placement.choose() is None
    # Resumed while lost: once back, it takes sessions.
    SandboxHost.objects.filter(pk=drained.pk).update(state=SandboxHost.State.LOST)
    call_command("hosts", "resume", "drained")
    assert "is lost; it takes new sessions once it answers again" in capsys.readouterr().out
    assert SandboxHost.objects.get(pk=drained.pk).state == SandboxHost.State.LOST
    tasks.host_answered(drained, 5, 0, timezone.now())
    assert SandboxHost.objects.get(pk=drained.pk).state == SandboxHost.State.ACTIVE
    assert placement.choose() == SandboxHost.objects.get(pk=drained.pk)


def test_a_port_link_of_a_node_on_another_host_goes_through_that_hosts_agent() -> None:
    far = host("far", 5)
    session = session_on(far)
    Instance.objects.filter(session=session).update(state=Instance.State.RUNNING, address="10.89.0.2")
    verdict = decide(load_session(session.short_id), "node1", 8080, owner=lambda: True)
    node = Instance.objects.get(session=session)
    assert (verdict.status, verdict.address, verdict.via, verdict.sandbox_id) == (
        0,
        "10.89.0.2",
        far.address,
        node.sandbox_id,
    )
    here = session_on(None)
    Instance.objects.filter(session=here).update(state=Instance.State.RUNNING, address="10.89.0.3")
    assert decide(load_session(here.short_id), "node1", 8080, owner=lambda: True).via is None


def test_the_reaper_asks_the_other_hosts_at_once_so_hung_ones_do_not_hold_back_the_others(
    settings: Settings, socket_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls_dir = socket_dir / "tls"
    certificates.make_authority(tls_dir)
    certificates.make_site(tls_dir)
    settings.PLAYGROUND = replace(settings.PLAYGROUND, tls_dir=tls_dir)
    agentclient.site_context.cache_clear()
    monkeypatch.setattr(client_module, "CONNECT_TIMEOUT", 1.0)
    hung = []  # ports that take connections and never answer: a machine that hangs
    for n in range(3):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        hung.append(listener)
        SandboxHost.objects.create(name=f"hung-{n}", address=f"127.0.0.1:{listener.getsockname()[1]}")
    try:
        started = time.monotonic()
        tasks._reconcile_with_agents(timezone.now())
        took = time.monotonic() - started
    finally:
        for listener in hung:
            listener.close()
        agentclient.site_context.cache_clear()
    assert took < 2.5, f"asking three hung hosts took {took:.1f} s: one after the other (3 s), not at once (1 s)"
    assert not SandboxHost.objects.filter(last_seen__isnull=False).exists()
