"""The dashboard's rows, flags and histogram (playground/workshops/dashboard.py), computed from
objects built in memory: no database, no Channels."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from playground.labs.models import Progress
from playground.sandboxes.models import Session
from playground.workshops import dashboard
from playground.workshops.models import HelpRequest, Learner, Workshop

NOW = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=60)


def workshop(**fields: Any) -> Workshop:
    return Workshop(pk=7, title="Docker day", capacity=30, starts_at=NOW, ends_at=NOW, **fields)


def session(state: str = Session.State.ACTIVE, idle: timedelta = timedelta(seconds=5)) -> Session:
    return Session(id=uuid.UUID(int=1), state=state, last_activity=NOW - idle, expires_at=NOW + timedelta(hours=1))


def learner(name: str = "Min", pk: int = 3) -> Learner:
    return Learner(pk=pk, workshop_id=7, name=name)


def progress(current: int = 2, on_step: timedelta = timedelta(minutes=1), **fields: Any) -> Progress:
    values: dict[str, Any] = {
        "current": current,
        "passed": [1],
        "failed_checks": {},
        "step_started_at": NOW - on_step,
        "changed_at": NOW - on_step,
        **fields,
    }
    return Progress(session_id=uuid.UUID(int=1), **values)


def row(
    item: Workshop | None = None,
    state: Session | None = None,
    run: Progress | None = None,
    steps: int | None = 5,
    hand: HelpRequest | None = None,
) -> dict[str, Any]:
    return dashboard.learner_row(item or workshop(), learner(), state or session(), run, steps, hand, NOW, WINDOW)


def test_a_row_says_the_step_out_of_the_labs_steps_the_checks_and_the_times() -> None:
    run = progress(current=3, passed=[1, 2], failed_checks={"1": 2, "3": 1})
    result = row(run=run)
    assert (result["step"], result["steps"], result["finished"]) == (3, 5, False)
    assert (result["checks_passed"], result["checks_failed"], result["failed_here"]) == (2, 3, 1)
    assert result["step_started_at"] == run.step_started_at.isoformat()
    assert result["name"] == "Min" and result["learner"] == 3 and result["state"] == "active"
    assert result["watch"] == "/workshops/7/learners/3/watch/"
    assert result["connected"] is True and result["hand"] is None


def test_last_activity_is_the_later_of_the_sessions_sign_of_life_and_the_labs_last_change() -> None:
    state = session(idle=timedelta(minutes=5))
    assert (
        row(state=state, run=progress(on_step=timedelta(minutes=1)))["last_activity"]
        == (NOW - timedelta(minutes=1)).isoformat()
    )
    assert (
        row(state=state, run=progress(on_step=timedelta(minutes=9)))["last_activity"]
        == (NOW - timedelta(minutes=5)).isoformat()
    )


def test_a_learner_is_connected_only_with_recent_activity_in_a_running_session() -> None:
    assert row(state=session(idle=timedelta(seconds=59)))["connected"] is True
    assert row(state=session(idle=timedelta(seconds=61)))["connected"] is False
    assert row(state=session(state=Session.State.ENDED))["connected"] is False


def test_a_free_sandbox_learner_has_no_step_and_is_never_stuck() -> None:
    result = row(run=None)
    assert (result["step"], result["steps"], result["step_started_at"]) == (None, None, None)
    assert (result["checks_passed"], result["checks_failed"], result["stuck"], result["stuck_at"]) == (
        0,
        0,
        False,
        None,
    )


def test_the_workshops_failed_checks_on_one_step_flag_a_learner_stuck() -> None:
    item = workshop(stuck_failed_checks=3)
    assert row(item, run=progress(failed_checks={"2": 2}))["stuck"] is False
    result = row(item, run=progress(failed_checks={"2": 3}))
    assert (result["stuck"], result["stuck_reason"]) == (True, "checks")
    assert row(item, run=progress(failed_checks={"1": 5}))["stuck"] is False, "failures of another step count"


def test_the_workshops_minutes_on_a_step_not_passed_flag_a_learner_stuck_and_say_when() -> None:
    item = workshop(stuck_minutes=10)
    early = row(item, run=progress(on_step=timedelta(minutes=9)))
    assert (early["stuck"], early["stuck_reason"]) == (False, None)
    assert early["stuck_at"] == (NOW + timedelta(minutes=1)).isoformat(), "the page flags it then by itself"
    late = row(item, run=progress(on_step=timedelta(minutes=10)))
    assert (late["stuck"], late["stuck_reason"]) == (True, "time")


def test_a_passed_step_a_finished_lab_or_an_ended_session_is_not_stuck() -> None:
    long = timedelta(hours=1)
    passed = row(run=progress(current=2, passed=[1, 2], on_step=long))
    finished = row(run=progress(current=5, passed=[1, 2, 3, 4, 5], on_step=long, finished_at=NOW))
    ended = row(state=session(state=Session.State.ENDED), run=progress(on_step=long, failed_checks={"2": 9}))
    for result in (passed, finished, ended):
        assert (result["stuck"], result["stuck_at"]) == (False, None), result
    assert finished["finished"] is True


def test_a_raised_hand_is_in_the_row_with_its_sentence() -> None:
    raised = HelpRequest(pk=11, sentence="docker run says permission denied", raised_at=NOW - timedelta(minutes=2))
    assert row(hand=raised)["hand"] == {
        "id": 11,
        "raised_at": (NOW - timedelta(minutes=2)).isoformat(),
        "sentence": "docker run says permission denied",
    }


def test_the_histogram_counts_running_learners_per_step_and_the_finished_apart() -> None:
    rows = [
        {"state": "active", "step": 1, "finished": False},
        {"state": "active", "step": 3, "finished": False},
        {"state": "ending", "step": 3, "finished": False},
        {"state": "active", "step": 4, "finished": True},
        {"state": "ended", "step": 2, "finished": False},
        {"state": "active", "step": None, "finished": False},
    ]
    assert dashboard.histogram(rows, 4) == {"steps": 4, "counts": [1, 0, 2, 0], "finished": 1}


def test_a_workshop_without_a_lab_has_no_histogram() -> None:
    assert dashboard.histogram([{"state": "active", "step": None, "finished": False}], None) is None
