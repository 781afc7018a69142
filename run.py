#!/usr/bin/env python3
"""Bootstrap and run Soundhive with nothing but Python 3.11+ installed.

    python3 run.py dev    # embedded PostgreSQL + Valkey, migrations, API + worker + scheduler
    python3 run.py test   # the whole test suite with coverage of core/ and skills/
    python3 run.py lint   # ruff, mypy, bandit, import-linter (and pip-audit, informational)

It creates ``.venv`` on first use and reinstalls only when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("SOUNDHIVE_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - run.py may be started by an older python3
        sys.exit("Soundhive needs Python 3.11 or newer")
    if not (BIN / "python").exists():
        print(f"creating {VENV} …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    sources = [ROOT / "pyproject.toml", ROOT / "examples/hello-skill/pyproject.toml"]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources) + extras.encode()).hexdigest()
    stamp = VENV / f".soundhive-installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    print("installing dependencies (first run takes a minute) …", flush=True)
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    target = f".[{extras}]" if extras else "."
    subprocess.run([*pip, "-e", target], check=True, cwd=ROOT)
    if extras == "test":
        subprocess.run([*pip, "-e", "examples/hello-skill"], check=True, cwd=ROOT)
    stamp.write_text(digest)


def main() -> None:
    command, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("help", [])
    if command == "dev":
        ensure_venv("")
        os.execv(BIN / "soundhive", [str(BIN / "soundhive"), "dev", *args])
    elif command == "test":
        ensure_venv("test")
        cov = ["--cov=core", "--cov=skills", "--cov-report=term:skip-covered", "--cov-report=xml"]
        os.chdir(ROOT)
        os.execv(BIN / "pytest", [str(BIN / "pytest"), *cov, *args])
    elif command == "lint":
        ensure_venv("test")
        os.chdir(ROOT)
        checks = [
            [str(BIN / "ruff"), "check", "."],
            [str(BIN / "mypy")],
            [str(BIN / "bandit"), "-q", "-ll", "-r", "core", "skills", "-x", "*/migrations/*"],
            [str(BIN / "lint-imports")],
        ]
        failed = [c[0] for c in checks if subprocess.run(c).returncode != 0]
        # pip-audit needs PyPI's vulnerability API; where it cannot reach it, it only reports
        subprocess.run([str(BIN / "pip-audit"), "--skip-editable", "--progress-spinner", "off"])
        if failed:
            sys.exit(f"lint failed: {', '.join(Path(f).name for f in failed)}")
    else:
        print(__doc__)
        sys.exit(0 if command == "help" else 2)


if __name__ == "__main__":
    main()
