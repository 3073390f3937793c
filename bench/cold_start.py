"""Measures the README's two commands from a fresh clone: `make run` cold and warm start, `make test`.

    python3 bench/cold_start.py [--keep]

Clones the committed HEAD into a temporary folder (no .venv, no var/), unsets DATABASE_URL and
REDIS_URL so the embedded servers are used, then:
1. `make run` from nothing: time to the portal answering /health/ (venv, install, servers, migrate,
   demo data, processes), then Ctrl-C and time to a clean stop;
2. `make run` again on the kept data (the warm start);
3. `make test`: the whole suite on the already-installed venv.
Prints one line per figure. Needs port 8000 free. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
READY = re.compile(r"cold start:\s+([0-9.]+) s")


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def make_run(clone: Path, log: Path, timeout_s: float = 600) -> tuple[float, float, float]:
    """Runs `make run` until the portal answers, then stops it; returns (wall to ready, launcher's figure, stop)."""
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["make", "run"], cwd=clone, env=clean_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        launcher_figure = None
        while time.monotonic() - started < timeout_s:
            match = READY.search(log.read_text(errors="replace"))
            if match:
                launcher_figure = float(match.group(1))
                break
            if proc.poll() is not None:
                raise SystemExit(f"make run exited with {proc.returncode} before answering; see {log}")
            time.sleep(0.2)
        if launcher_figure is None:
            os.killpg(proc.pid, signal.SIGKILL)
            raise SystemExit(f"make run did not answer within {timeout_s:.0f} s; see {log}")
        ready = time.monotonic() - started
        stopping = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        return ready, launcher_figure, time.monotonic() - stopping


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the clone and its logs")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="fleetops-bench-", dir="/tmp"))
    clone = workdir / "fleetops"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True).stdout
    print(f"fresh clone of {head.strip()} in {clone}", flush=True)

    ready, figure, stop = make_run(clone, workdir / "run-cold.log")
    print(f"make run, fresh clone (venv + install + servers + migrate + demo data): {ready:.1f} s to ready", flush=True)
    print(f"  of which the launcher's cold start (servers to /health/): {figure:.1f} s; clean stop {stop:.1f} s")
    ready, figure, stop = make_run(clone, workdir / "run-warm.log")
    print(f"make run, second start on kept data: {ready:.1f} s to ready (launcher {figure:.1f} s); stop {stop:.1f} s")

    started = time.monotonic()
    result = subprocess.run(
        ["make", "test"], cwd=clone, env=clean_env(), capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    elapsed = time.monotonic() - started
    summary = [line for line in result.stdout.splitlines() if " passed" in line or " failed" in line]
    print(f"make test (installed venv, embedded servers): {elapsed:.1f} s, exit {result.returncode}")
    for line in summary[-2:]:
        print(f"  {line.strip()}")

    if args.keep:
        print(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
