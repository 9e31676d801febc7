"""dagster.yaml follows the environment (SQLite or PostgreSQL) but never overwrites the user's."""

from __future__ import annotations

import yaml

from deepdecipher import dagster_home


def test_postgres_when_the_url_is_set_and_back(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql+psycopg2://u:secret@db:5432/d")
    path = dagster_home.prepare(home)
    config = yaml.safe_load(path.read_text())
    assert config == {"storage": {"postgres": {"postgres_url": {"env": "DAGSTER_PG_URL"}}}}
    assert "secret" not in path.read_text()  # only the variable's name is written
    monkeypatch.delenv("DAGSTER_PG_URL")
    assert yaml.safe_load(dagster_home.prepare(home).read_text()) is None  # SQLite defaults


def test_a_users_dagster_yaml_is_left_alone(tmp_path, monkeypatch):
    own = "run_queue:\n  max_concurrent_runs: 2\n"
    (tmp_path / "dagster.yaml").write_text(own)
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql+psycopg2://u@db/d")
    assert dagster_home.prepare(tmp_path).read_text() == own
