"""Long schema-fuzzing run (not part of the test suite).

    .venv/bin/python bench/fuzz.py [--examples 200] [--seed N] [--keep-examples DIR]
                                   [-- <pytest arguments, e.g. -k playlists -x>]

Runs ``tests/test_fuzz_schema.py`` (schemathesis over every operation of the OpenAPI document,
with a token and without, plus the NUL / lone-surrogate and deleted/banned account sweeps)
with ``--examples`` random cases per operation instead of the suite's 8, and a random seed
unless ``--seed`` is given: each run explores new inputs, and the printed seed repeats one.
Hypothesis keeps the failing examples it found in ``--keep-examples`` (default: a folder in
the system's temporary directory) and replays them first on the next run.

The services are the test suite's: ``SOUNDHIVE_TEST_DATABASE_URL`` / ``SOUNDHIVE_TEST_REDIS_URL``
when set, else testcontainers or embedded servers (see docs/testing.md). About a minute per
50 examples on 2 cores. Exit status is pytest's.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200, help="random cases per operation")
    parser.add_argument("--seed", type=int, default=None, help="repeat a run (default: random)")
    parser.add_argument(
        "--keep-examples",
        default=str(Path(tempfile.gettempdir()) / "soundhive-fuzz-examples"),
        help="Hypothesis example database ('none' to keep nothing)",
    )
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    env = {
        **os.environ,
        "SOUNDHIVE_FUZZ_EXAMPLES": str(args.examples),
        "SOUNDHIVE_FUZZ_SEED": str(seed),
        "SOUNDHIVE_FUZZ_DATABASE": args.keep_examples,
    }
    command = [sys.executable, "-m", "pytest", "tests/test_fuzz_schema.py", "-q", "-r", "fE"]
    command += ["-p", "no:cacheprovider", *args.pytest_args]
    print(f"fuzzing with {args.examples} examples per operation, seed {seed}", flush=True)
    started = time.monotonic()
    status = subprocess.call(command, cwd=ROOT, env=env)
    minutes = (time.monotonic() - started) / 60
    outcome = "ok" if status == 0 else "FAILED"
    print(f"seed {seed}: {outcome} in {minutes:.1f} min", flush=True)
    print(f"repeat with: bench/fuzz.py --examples {args.examples} --seed {seed}")
    return status


if __name__ == "__main__":
    sys.exit(main())
