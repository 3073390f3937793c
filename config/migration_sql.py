"""Loads an app's ``sql/*.sql`` files for ``RunSQL`` operations.

Each file belongs to the migration whose number it carries, so a later change to the SQL is a new
file and a new migration, never an edit that would make an applied migration mean something else.
"""

from __future__ import annotations

from pathlib import Path

from django.db import migrations

BASE_DIR = Path(__file__).resolve().parent.parent


def read_sql(app_label: str, name: str) -> str:
    return (BASE_DIR / app_label / "sql" / name).read_text(encoding="utf-8")


def run_sql_file(app_label: str, name: str) -> migrations.RunSQL:
    """``RunSQL`` of ``<app>/sql/<name>.sql`` with ``<app>/sql/<name>.reverse.sql`` as its reverse."""
    return migrations.RunSQL(
        sql=read_sql(app_label, f"{name}.sql"),
        reverse_sql=read_sql(app_label, f"{name}.reverse.sql"),
    )
