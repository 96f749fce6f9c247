"""Garbage-collector pauses are measured, and surviving objects can be frozen out of full collections."""

from __future__ import annotations

import gc

from prometheus_client import REGISTRY

from csms.observability.gc_pauses import (
    YOUNG_COLLECTIONS_PER_OLDER,
    collect_young_every,
    freeze_after_full_collections,
    freeze_survivors,
    stop_freezing_after_full_collections,
    stop_watching_gc_pauses,
    watch_gc_pauses,
)


def _collections(generation: int) -> float:
    value = REGISTRY.get_sample_value("csms_gc_pause_seconds_count", {"generation": str(generation)})
    return value or 0.0


def test_every_collection_is_timed_by_generation() -> None:
    watch_gc_pauses()
    watch_gc_pauses()  # a second call adds no second hook
    try:
        before = _collections(2)
        gc.collect(2)
        assert _collections(2) == before + 1
    finally:
        stop_watching_gc_pauses()


def test_surviving_objects_are_frozen_out_of_full_collections() -> None:
    survivors = [[index] for index in range(1000)]  # long-lived containers the collector tracks
    try:
        freeze_survivors()
        assert gc.get_freeze_count() >= len(survivors)
    finally:
        gc.unfreeze()


def test_the_survivors_of_a_full_collection_are_frozen() -> None:
    survivors = [[index] for index in range(1000)]
    gc.unfreeze()
    freeze_after_full_collections()
    freeze_after_full_collections()  # a second call adds no second hook
    try:
        gc.collect(1)
        assert gc.get_freeze_count() == 0  # a young collection freezes nothing
        gc.collect(2)
        assert gc.get_freeze_count() >= len(survivors)
        assert all(item is not survivors[0] for item in gc.get_objects(2))  # out of the old generation
    finally:
        stop_freezing_after_full_collections()
        gc.unfreeze()


def test_young_collections_run_every_so_many_objects() -> None:
    before = gc.get_threshold()
    try:
        collect_young_every(20_000)
        assert gc.get_threshold() == (20_000, YOUNG_COLLECTIONS_PER_OLDER, before[2])
    finally:
        gc.set_threshold(*before)
