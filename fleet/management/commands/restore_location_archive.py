"""``manage.py restore_location_archive FILE``: loads a location-log archive back into its month's partition."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from fleet.partitions import ArchiveError, location_archive_restore


class Command(BaseCommand):
    help = (
        "Verifies an archive made by the archive_location_partitions task against its .sha256 file, recreates "
        "its month's partition if missing and loads its rows back; rows already present are skipped."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", type=Path, help="The .csv.gz archive; its .csv.gz.sha256 file must sit beside it.")

    def handle(self, *args: Any, file: Path, **options: Any) -> None:
        try:
            restored = location_archive_restore(path=file, progress=self.stdout.write)
        except (ArchiveError, IntegrityError) as exc:  # a bad file, or a rider deleted since the archive
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{restored.rows_in_file} rows in the archive: {restored.inserted} restored into "
                f"{', '.join(restored.partitions) or 'no partition'}, {restored.duplicates} already present"
            )
        )
