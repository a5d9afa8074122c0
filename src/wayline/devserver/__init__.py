"""`wayline dev`: the local dev server (Starlette app, SQLite store, local workers)."""
