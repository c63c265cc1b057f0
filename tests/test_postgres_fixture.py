"""The throwaway server the suite relies on really starts, serves, and stops."""

from __future__ import annotations

import subprocess

import pytest

from tests.postgres import PostgresServer


def test_server_creates_isolated_databases(postgres_server: PostgresServer) -> None:
    first = postgres_server.create_database()
    second = postgres_server.create_database()
    assert first != second
    database = first.rsplit("/", 1)[1]
    postgres_server.psql_command(
        "CREATE TABLE probe (x int); INSERT INTO probe VALUES (1)", database
    )
    with pytest.raises(subprocess.CalledProcessError):
        postgres_server.psql_command("SELECT * FROM probe", second.rsplit("/", 1)[1])
