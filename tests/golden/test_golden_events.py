"""Golden JSON samples pin the stored shape of every event type and version.

A change to an event's fields (added, removed, renamed, retyped) fails here until it is made as a new
schema version with an upcaster in `csms/domain/upcasters.py` and a new golden file.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from csms.domain.topics import EVENT_TYPES
from csms.eventstore.codec import EventCodec
from tests.golden.samples import GOLDEN_DIR, golden_path

CODEC = EventCodec(EVENT_TYPES)
SPECS = {spec.topic: spec for spec in EVENT_TYPES}


def _load(topic: str, version: int) -> dict[str, Any]:
    path = golden_path(topic, version)
    if not path.exists():
        pytest.fail(f"{path.name} is missing: run `python -m tests.golden.samples` and commit the file")
    document: dict[str, Any] = orjson.loads(path.read_bytes())
    assert (document["topic"], document["version"]) == (topic, version)
    data: dict[str, Any] = document["data"]
    return data


@pytest.mark.parametrize("topic", sorted(SPECS))
def test_current_version_round_trips_exactly(topic: str) -> None:
    spec = SPECS[topic]
    golden = _load(topic, spec.version)

    event = CODEC.decode_data(spec, uuid.uuid4(), 1, golden)

    assert orjson.loads(CODEC.encode_data(event)) == golden


@pytest.mark.parametrize(
    ("topic", "version"),
    [(spec.topic, v) for spec in EVENT_TYPES for v in range(1, spec.version)],
)
def test_older_versions_upcast_to_the_current_shape(topic: str, version: int) -> None:
    spec = SPECS[topic]
    old = _load(topic, version)

    event = CODEC.decode_data(spec, uuid.uuid4(), 1, CODEC.upcast(topic, version, old))

    assert orjson.loads(CODEC.encode_data(event)).keys() == _load(topic, spec.version).keys()


def test_every_golden_file_belongs_to_a_registered_version() -> None:
    known = {golden_path(s.topic, v).name for s in EVENT_TYPES for v in range(1, s.version + 1)}
    present = {p.name for p in GOLDEN_DIR.glob("*.json")}
    assert present - known == set(), "golden files for unregistered topics or versions"
    assert known - present == set(), "run `python -m tests.golden.samples` and commit the files"


def test_at_least_one_event_type_has_evolved_through_an_upcaster() -> None:
    assert any(spec.version > 1 for spec in EVENT_TYPES)
