"""EventStore contract: insert-once events, newest-first listing with exclusive bounds."""

from __future__ import annotations

from wayline.engine.ports import Store

from .conftest import make_event, unset_fields


def test_event_round_trips(store: Store) -> None:
    event = make_event("01HEVT0000000000000000000A", v="2024-01-01.1", user={"id": "u"})
    assert unset_fields(event) == set()
    store.events.put_events([event])
    assert store.events.get_event(event.internal_id) == event


def test_event_without_version_round_trips(store: Store) -> None:
    event = make_event("01HEVT0000000000000000000A")
    store.events.put_events([event])
    got = store.events.get_event(event.internal_id)
    assert got is not None
    assert got.v is None
    assert got == event


def test_get_missing_event(store: Store) -> None:
    assert store.events.get_event("nope") is None


def test_put_is_insert_only(store: Store) -> None:
    first = make_event("e1", data={"n": 1})
    store.events.put_events([first])
    store.events.put_events([make_event("e1", data={"n": 2}), make_event("e2")])
    assert store.events.get_event("e1") == first
    assert store.events.get_event("e2") == make_event("e2")


def test_put_nothing(store: Store) -> None:
    store.events.put_events([])
    assert store.events.list_events() == []


def _ids(store: Store, **kw: object) -> list[str]:
    return [e.internal_id for e in store.events.list_events(**kw)]  # type: ignore[arg-type]


def test_list_newest_first_with_limit(store: Store) -> None:
    store.events.put_events([make_event(f"e{i}") for i in (3, 1, 4, 0, 2)])
    assert _ids(store) == ["e4", "e3", "e2", "e1", "e0"]
    assert _ids(store, limit=2) == ["e4", "e3"]
    assert _ids(store, limit=0) == []


def test_list_by_name(store: Store) -> None:
    store.events.put_events([make_event("e1", "a"), make_event("e2", "b"), make_event("e3", "a")])
    assert _ids(store, name="a") == ["e3", "e1"]
    assert _ids(store, name="c") == []


def test_before_id_is_an_exclusive_cursor(store: Store) -> None:
    store.events.put_events([make_event(f"e{i}") for i in range(7)])
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = _ids(store, limit=3, before_id=cursor)
        if not page:
            break
        pages.append(page)
        cursor = page[-1]
    assert pages == [["e6", "e5", "e4"], ["e3", "e2", "e1"], ["e0"]]


def test_received_bounds_are_exclusive(store: Store) -> None:
    store.events.put_events([make_event(f"e{i}", received_at=i * 10) for i in range(5)])
    assert _ids(store, received_after=10) == ["e4", "e3", "e2"]
    assert _ids(store, received_before=30) == ["e2", "e1", "e0"]
    assert _ids(store, received_after=10, received_before=30) == ["e2"]


def test_filters_combine(store: Store) -> None:
    store.events.put_events(
        [make_event(f"e{i}", "a" if i % 2 else "b", received_at=i) for i in range(8)]
    )
    assert _ids(store, name="a", before_id="e7", received_after=1, limit=1) == ["e5"]
