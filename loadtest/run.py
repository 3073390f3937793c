"""Runs one load-test scenario against a running portal and writes its report.

    make loadtest SCENARIO=heavy [HOST=http://127.0.0.1:8000] [TIME=3m]
    .venv/bin/python loadtest/run.py heavy --host http://127.0.0.1:8000 [--time 3m]

Scenarios (users; how fast they arrive; how long the run holds them):

| scenario | users | spawn/s | time |
| --- | --- | --- | --- |
| light | 50 | 10 | 2m |
| medium | 100 | 20 | 2m |
| heavy | 200 | 20 | 3m |
| stress | 500 | 50 | 3m |
| spike | 1,000 | 500 | 2m |

Accounts are prepared first when ``var/loadtest/accounts.json`` is missing (``loadtest/prepare.py``, with the
portal's DATABASE_URL and REDIS_URL). The report, ``var/loadtest/<scenario>/report.md``, gives requests/s, the
error rate and p50/p95/p99 per endpoint, from Locust's CSV statistics (kept next to it), then what was counted
without a latency: websocket messages received by event, and order steps that found the order moved on.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = {
    "light": (50, 10, "2m"),
    "medium": (100, 20, "2m"),
    "heavy": (200, 20, "3m"),
    "stress": (500, 50, "3m"),
    "spike": (1000, 500, "2m"),
}


def report(scenario: str, users: int, host: str, prefix: Path, counts: Path) -> str:
    with open(f"{prefix}_stats.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    lines = [
        f"# Load test: {scenario} ({users} users) against {host}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "| endpoint | requests | errors | error rate | req/s | p50 ms | p95 ms | p99 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        count, failures = int(row["Request Count"]), int(row["Failure Count"])
        name = "**all**" if row["Name"] == "Aggregated" else f"{row['Type']} {row['Name']}"
        lines.append(
            f"| {name} | {count:,} | {failures:,} | {failures / count if count else 0:.2%} | "
            f"{float(row['Requests/s']):,.1f} | {row['50%']} | {row['95%']} | {row['99%']} |"
        )
    if counts.exists():
        lines += ["", "| also counted | number |", "| --- | --- |"]
        lines += [f"| {name} | {number:,} |" for name, number in sorted(json.loads(counts.read_text()).items())]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--host", default=os.environ.get("HOST", "http://127.0.0.1:8000"))
    parser.add_argument("--time", default=None, help="override the scenario's run time, e.g. 30s")
    parser.add_argument(
        "--locust-python", default=str(REPO / ".venv-load" / "bin" / "python"), help="a Python with Locust"
    )
    args = parser.parse_args()
    users, spawn_rate, run_time = SCENARIOS[args.scenario]
    if not (REPO / "var" / "loadtest" / "accounts.json").exists():
        subprocess.run([sys.executable, str(REPO / "loadtest" / "prepare.py")], check=True)
    out = REPO / "var" / "loadtest" / args.scenario
    out.mkdir(parents=True, exist_ok=True)
    prefix = out / "locust"
    command = [
        args.locust_python, "-m", "locust",
        "-f", str(REPO / "loadtest" / "locustfile.py"),
        "--headless", "--host", args.host,
        "--users", str(users), "--spawn-rate", str(spawn_rate), "--run-time", args.time or run_time,
        "--csv", str(prefix), "--only-summary", "--stop-timeout", "10",
    ]  # fmt: skip
    print("$", " ".join(command), flush=True)
    counts = out / "counts.json"
    counts.unlink(missing_ok=True)
    finished = subprocess.run(command, check=False, env={**os.environ, "LOADTEST_COUNTS": str(counts)})
    text = report(args.scenario, users, args.host, prefix, counts)
    (out / "report.md").write_text(text)
    print(text)
    print(f"report: {out / 'report.md'}")
    sys.exit(finished.returncode)


if __name__ == "__main__":
    main()
