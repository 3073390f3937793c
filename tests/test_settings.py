"""Production settings are checked; migrations match the models."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

BASE_DIR = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "x7Qm2vR9pL4tK8wZ1nB6cY3hJ5fD0gS7aE2uI9oP4rT6yW1qX8zC3vN5mB0kL2jH",
    "ALLOWED_HOSTS": "fleetops.example.com",
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_env():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("secret", ["", "short", "django-insecure-fleetops-local-development-only"])
def test_production_refuses_to_start_without_a_real_secret_key(secret):
    result = _manage("check", env={**PRODUCTION_ENV, "SECRET_KEY": secret})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_only_postgresql_is_accepted():
    result = _manage("check", env={"DATABASE_URL": "sqlite:///tmp/fleetops.db"})
    assert result.returncode != 0
    assert "PostgreSQL is the only database" in result.stderr


@pytest.mark.django_db
def test_migrations_match_the_models():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()
