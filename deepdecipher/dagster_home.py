"""The Dagster instance's ``dagster.yaml``, chosen by the environment: SQLite or PostgreSQL.

With ``DAGSTER_PG_URL`` set (``postgresql+psycopg2://user:password@host:5432/db``: the driver
dagster-postgres installs; SQLAlchemy 2.1 would pick psycopg 3 for a bare ``postgresql://``), runs, events and
schedules go to PostgreSQL, so that run workers on other machines, the daemon and the UI share one
instance; without it, Dagster's SQLite files in ``DAGSTER_HOME``. The URL stays in the environment
(the file only names the variable), so no password is written to disk. A ``dagster.yaml`` the user
wrote is never touched: only files that start with `MARKER` are rewritten.
"""

from __future__ import annotations

import os
from pathlib import Path

MARKER = "# written by deepdecipher: edit freely (then it is no longer rewritten)\n"

POSTGRES = (
    MARKER
    + """storage:
  postgres:
    postgres_url:
      env: DAGSTER_PG_URL
"""
)


def instance_yaml() -> str:
    """The dagster.yaml the environment asks for."""
    return POSTGRES if os.environ.get("DAGSTER_PG_URL") else MARKER


def prepare(home: Path) -> Path:
    """Create `home` and (re)write its dagster.yaml unless the user owns it; return the file."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    current = path.read_text() if path.exists() else ""
    if not current.strip() or current.startswith(MARKER):
        wanted = instance_yaml()
        if current != wanted:
            path.write_text(wanted)
    return path
