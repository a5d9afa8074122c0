"""One ``wayline dev`` per port and per database (issue 12, item 6).

Before the fix a second server on a busy port logged "listening", resumed the first
server's runs, released its leases and called its apps on the shared SQLite file, then
died with a traceback. Now it claims the port and the database before anything else and
stops with one line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from .harness import DevServer, free_port

SECOND_START_TIMEOUT = 30.0


def start_first(tmp_path: Path, db: Path) -> DevServer:
    server = DevServer(
        port=free_port(),
        db_path=db,
        log_path=tmp_path / "first.log",
        app_urls=[],
        retry_interval=1.0,
        cwd=tmp_path,
    )
    server.start()
    return server


def run_second(tmp_path: Path, *, port: int, db: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "wayline", "dev", "--port", str(port), "--db", str(db)]
    return subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, timeout=SECOND_START_TIMEOUT
    )


def assert_refused(result: subprocess.CompletedProcess[str], line: str) -> None:
    assert result.returncode != 0
    assert result.stderr.strip() == line, result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_a_second_server_on_the_same_database_stops_with_one_line(tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite3"
    first = start_first(tmp_path, db)
    try:
        result = run_second(tmp_path, port=free_port(), db=db)
        assert_refused(
            result, f"wayline dev: database {db} is in use by another wayline dev (pid {first.pid})"
        )
        assert httpx.get(f"{first.url}/health").status_code == 200
    finally:
        first.stop()
    # The lock dies with its holder: the same database can be served again.
    again = start_first(tmp_path, db)
    again.stop()


def test_a_second_server_on_a_busy_port_stops_with_one_line(tmp_path: Path) -> None:
    first = start_first(tmp_path, tmp_path / "first.sqlite3")
    other_db = tmp_path / "second.sqlite3"
    try:
        result = run_second(tmp_path, port=first.port, db=other_db)
        assert_refused(result, f"wayline dev: port {first.port} is in use (on 127.0.0.1)")
        assert not other_db.exists()  # refused before the store was opened
        assert httpx.get(f"{first.url}/health").status_code == 200
    finally:
        first.stop()
