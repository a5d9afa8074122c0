"""Durability: what one connection wrote, a later one reads back."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wayline.errors import StoreError
from wayline.store.sqlite import SqliteStore

from .conftest import (
    Backend,
    make_app,
    make_event,
    make_full_run,
    make_function,
    make_item,
    make_wait,
)


def test_everything_survives_reopen(durable: Backend) -> None:
    store = durable.open()
    run = make_full_run()
    store.runs.create_run(run)
    store.events.put_events([make_event("e1")])
    store.apps.put_app(make_app(), [make_function("shop-a")])
    store.queue.enqueue([make_item("1", at=5)])
    store.waits.add_wait(make_wait("w1"))
    store.idempotency.claim("k", now=0, ttl_ms=100)
    durable.close()

    store = durable.open()
    assert store.runs.get_run(run.id) == run
    assert store.events.get_event("e1") == make_event("e1")
    assert store.apps.get_app("shop") == make_app()
    assert store.apps.list_functions() == [make_function("shop-a")]
    assert store.queue.next_due() == 5
    assert store.waits.waits_for("shop/paid") == [make_wait("w1")]
    assert store.idempotency.claim("k", now=50, ttl_ms=100) is False


def test_leases_survive_reopen(durable: Backend) -> None:
    store = durable.open()
    store.queue.enqueue([make_item("1")])
    assert store.queue.claim(now=0, lease_ms=100, limit=1)
    durable.close()
    store = durable.open()
    assert store.queue.claim(now=50, lease_ms=100, limit=1) == []
    assert store.queue.claim(now=100, lease_ms=100, limit=1) == [make_item("1")]


def test_sqlite_commit_survives_process_kill(tmp_path: Path) -> None:
    """SQLite-only: a process killed right after a write loses nothing (WAL, no close)."""
    path = tmp_path / "killed.db"
    script = textwrap.dedent(
        f"""
        import os, signal
        from wayline.engine.model import Run, RunStatus
        from wayline.store.sqlite import SqliteStore
        store = SqliteStore({str(path)!r}).store()
        run = Run("r1", "f", "a", RunStatus.QUEUED, (), (), 0, memos={{"s": 1}})
        store.runs.create_run(run)
        store.queue.enqueue([])
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -9
    with SqliteStore(path) as db:
        run = db.store().runs.get_run("r1")
    assert run is not None
    assert dict(run.memos) == {"s": 1}


def test_sqlite_refuses_newer_schema(tmp_path: Path) -> None:
    """SQLite-only: a store written by a newer Wayline is not silently misread."""
    import sqlite3

    path = tmp_path / "new.db"
    SqliteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    conn.close()
    with pytest.raises(StoreError, match="99"):
        SqliteStore(path)


def test_sqlite_closed_store_raises_store_error(tmp_path: Path) -> None:
    db = SqliteStore(tmp_path / "closed.db")
    db.close()
    with pytest.raises(StoreError):
        db.store().runs.get_run("r1")
