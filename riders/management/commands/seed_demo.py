"""``manage.py seed_demo``: the demo world (cities, riders in every state, orders, money, GPS)."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from riders.demo import CITIES, DEMO_PASSWORD, MAX_ORDERS_PER_RIDER, DemoSeeder, demo_logins


class Command(BaseCommand):
    help = (
        "Creates a deterministic demo world: four cities, vehicles, riders in every state with KYC, duty, "
        "orders, ledger history, tickets, SOS alerts and recent GPS. Idempotent: a second run creates nothing."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--riders", type=int, default=300, help="How many riders (default 300).")
        parser.add_argument(
            "--orders-per-rider", type=int, default=8, help="Past orders per rider who has worked (default 8)."
        )
        parser.add_argument("--seed", type=int, default=42, help="Random seed; the same seed, the same world.")
        parser.add_argument("--quiet", action="store_true", help="Print only the final summary line.")

    def handle(self, *args: Any, **options: Any) -> None:
        riders: int = options["riders"]
        orders_per_rider: int = options["orders_per_rider"]
        quiet: bool = options["quiet"]
        if riders < 0:
            raise CommandError("--riders must be zero or more")
        if not 0 <= orders_per_rider <= MAX_ORDERS_PER_RIDER:
            raise CommandError(f"--orders-per-rider must be between 0 and {MAX_ORDERS_PER_RIDER}")

        def say(line: str) -> None:
            if not quiet:
                self.stdout.write(line)

        say(
            f"Seeding the demo world: {riders} riders in {', '.join(c.code for c in CITIES)}, "
            f"{orders_per_rider} past orders per working rider, seed {options['seed']}"
        )
        started = time.monotonic()
        seeder = DemoSeeder(riders=riders, orders_per_rider=orders_per_rider, seed=options["seed"], out=say)
        created = seeder.run()
        elapsed = time.monotonic() - started

        if not quiet:
            self.stdout.write("Created:")
            for kind in (
                "cities",
                "staff users",
                "users",
                "vehicles",
                "riders",
                "kyc documents",
                "duty logs",
                "orders",
                "order events",
                "ratings",
                "ledger entries",
                "withdrawals",
                "support tickets",
                "emergency alerts",
                "gps points",
            ):
                self.stdout.write(f"  {kind:<17} {created[kind]:>7}")
            logins = demo_logins()
            if logins:
                self.stdout.write(f"Demo rider logins for the driver app (password {DEMO_PASSWORD!r}):")
                for rider in logins:
                    self.stdout.write(
                        f"  {rider.mobile}  {rider.name:<24} {rider.city.code}  {rider.status}, "
                        f"KYC {rider.kyc_status}, duty {rider.duty_status}"
                    )
        if sum(created.values()) == 0:
            self.stdout.write(self.style.SUCCESS(f"Demo world already present: nothing new created ({elapsed:.1f}s)."))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Demo world seeded in {elapsed:.1f}s: {created['riders']} riders, {created['orders']} orders, "
                    f"{created['ledger entries']} ledger entries, {created['gps points']} GPS points."
                )
            )
