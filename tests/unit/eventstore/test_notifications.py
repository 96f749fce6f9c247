"""The append's notification: the new head, then the topics of the batch (migration 0009)."""

from __future__ import annotations

from csms.eventstore.subscription import parse_notification


def test_a_notification_gives_the_head_and_the_batch_topics() -> None:
    head, topics = parse_notification("1234 Charger.Booted Charger.Seen")
    assert (head, topics) == (1234, frozenset({"Charger.Booted", "Charger.Seen"}))


def test_a_head_alone_may_be_of_any_topic() -> None:
    assert parse_notification("1234") == (1234, None)


def test_an_unreadable_notification_gives_neither() -> None:
    assert parse_notification("") == (None, None)
    assert parse_notification("head Charger.Seen") == (None, None)
