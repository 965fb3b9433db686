"""The timings of a session's life: warnings before the end, activity records, log durations."""

from __future__ import annotations

import pytest

from playground.sandboxes import timings as lifecycle


def test_a_long_session_is_warned_five_minutes_and_one_minute_before_its_end() -> None:
    assert lifecycle.warning_leads(14400) == [("early", 300.0), ("final", 60.0)]


def test_a_five_second_session_gets_both_warnings_scaled_down() -> None:
    assert lifecycle.warning_leads(5) == [("early", 2.5), ("final", 1.0)]


@pytest.mark.parametrize(
    "left,due", [(400, []), (300, ["early"]), (61, ["early"]), (60, ["early", "final"]), (0.5, ["early", "final"])]
)
def test_stages_fall_due_as_the_end_nears(left: float, due: list[str]) -> None:
    assert lifecycle.due_stages(left, 14400) == due


def test_the_consumer_sleeps_until_the_next_unsent_stage_or_the_end() -> None:
    assert lifecycle.next_wake(1000, 14400, set()) == 700
    assert lifecycle.next_wake(200, 14400, {"early"}) == 140
    assert lifecycle.next_wake(30, 14400, {"early", "final"}) == 30
    assert lifecycle.next_wake(-3, 14400, set()) == 0


@pytest.mark.parametrize(
    "seconds,text",
    [
        (0.2, "1 second"),
        (2.5, "3 seconds"),
        (59.9, "1 minute"),
        (299.6, "5 minutes"),
        (3600, "60 minutes"),
        (28800, "8 hours"),
    ],
)
def test_durations_read_naturally(seconds: float, text: str) -> None:
    assert lifecycle.humanize(seconds) == text


def test_the_warning_says_whether_extend_helps() -> None:
    assert lifecycle.warning_message(60, True) == "This session ends in 1 minute. Press Extend to add time."
    assert "cannot be extended further" in lifecycle.warning_message(60, False)


@pytest.mark.parametrize("idle,interval", [(1800, 30), (60, 15), (6, 1.5), (2, 1)])
def test_a_connected_viewer_records_activity_well_within_the_idle_timeout(idle: int, interval: float) -> None:
    assert lifecycle.activity_interval(idle) == interval


@pytest.mark.parametrize("seconds,text", [(14400, "4h00m"), (3725, "1h02m"), (720, "12m"), (7.9, "7s")])
def test_log_durations_are_short(seconds: float, text: str) -> None:
    assert lifecycle.duration(seconds) == text
