"""AppStore contract: put_app replaces the app and its whole function list."""

from __future__ import annotations

from dataclasses import replace

import pytest

from wayline.engine.model import Trigger
from wayline.engine.ports import Store

from .conftest import make_app, make_function, unset_fields


def test_new_app_round_trips(store: Store) -> None:
    app = make_app(framework="fastapi", synced_at=5)
    both = (Trigger(event="shop/x", expression="event.data.n > 1"), Trigger(cron="* * * * *"))
    fns = [make_function("shop-b", triggers=both), make_function("shop-a")]
    assert unset_fields(app) == set()
    assert unset_fields(fns[0]) == set()
    assert store.apps.put_app(app, fns) is True
    assert store.apps.get_app("shop") == app
    assert store.apps.list_functions("shop") == sorted(fns, key=lambda f: f.id)
    assert store.apps.get_function("shop-a") == fns[1]


def test_missing_app_and_function(store: Store) -> None:
    assert store.apps.get_app("nope") is None
    assert store.apps.get_function("nope") is None
    assert store.apps.list_apps() == []
    assert store.apps.list_functions() == []


def test_identical_resync_is_unchanged_but_moves_synced_at(store: Store) -> None:
    fns = [make_function("shop-a")]
    store.apps.put_app(make_app(synced_at=1), fns)
    assert store.apps.put_app(make_app(synced_at=2), fns) is False
    assert store.apps.get_app("shop") == make_app(synced_at=2)


def test_config_key_order_is_not_a_change(store: Store) -> None:
    store.apps.put_app(make_app(), [make_function("shop-a", config={"a": 1, "b": 2})])
    assert (
        store.apps.put_app(make_app(), [make_function("shop-a", config={"b": 2, "a": 1})]) is False
    )


@pytest.mark.parametrize(
    "change",
    [
        {"url": "http://other"},
        {"sdk": "py:v0.6"},
        {"framework": "flask"},
    ],
)
def test_app_change_is_a_change(store: Store, change: dict[str, str]) -> None:
    store.apps.put_app(make_app(), [make_function("shop-a")])
    assert store.apps.put_app(make_app(**change), [make_function("shop-a")]) is True
    assert store.apps.get_app("shop") == make_app(**change)


def test_function_change_is_a_change(store: Store) -> None:
    store.apps.put_app(make_app(), [make_function("shop-a")])
    new = make_function("shop-a", retries=0)
    assert store.apps.put_app(make_app(), [new]) is True
    assert store.apps.get_function("shop-a") == new


def test_added_function_is_a_change(store: Store) -> None:
    store.apps.put_app(make_app(), [make_function("shop-a")])
    fns = [make_function("shop-a"), make_function("shop-b")]
    assert store.apps.put_app(make_app(), fns) is True
    assert store.apps.list_functions("shop") == fns


def test_removed_functions_are_deleted(store: Store) -> None:
    store.apps.put_app(make_app(), [make_function("shop-a"), make_function("shop-b")])
    assert store.apps.put_app(make_app(), [make_function("shop-b")]) is True
    assert store.apps.get_function("shop-a") is None
    assert store.apps.list_functions() == [make_function("shop-b")]
    assert store.apps.put_app(make_app(), []) is True
    assert store.apps.list_functions() == []
    assert store.apps.get_app("shop") == make_app()


def test_apps_are_independent_and_sorted(store: Store) -> None:
    store.apps.put_app(make_app("zoo"), [make_function("zoo-a", "zoo")])
    store.apps.put_app(
        make_app("ant"), [make_function("ant-b", "ant"), make_function("ant-a", "ant")]
    )
    assert store.apps.put_app(make_app("ant"), []) is True
    assert [a.id for a in store.apps.list_apps()] == ["ant", "zoo"]
    assert store.apps.list_functions() == [make_function("zoo-a", "zoo")]
    assert store.apps.list_functions("ant") == []


def test_list_functions_sorted_by_id(store: Store) -> None:
    store.apps.put_app(make_app("b"), [make_function("b-2", "b"), make_function("b-1", "b")])
    store.apps.put_app(make_app("a"), [make_function("a-9", "a")])
    assert [f.id for f in store.apps.list_functions()] == ["a-9", "b-1", "b-2"]
    assert [f.id for f in store.apps.list_functions("b")] == ["b-1", "b-2"]


def test_function_of_another_app_is_rejected(store: Store) -> None:
    with pytest.raises(ValueError, match="other"):
        store.apps.put_app(make_app("shop"), [make_function("x", app_id="other")])
    assert store.apps.get_app("shop") is None


def test_unchanged_after_replacing_with_same_content(store: Store) -> None:
    fn = make_function("shop-a")
    store.apps.put_app(make_app(), [fn])
    assert store.apps.put_app(make_app(), [replace(fn, config=dict(fn.config))]) is False
