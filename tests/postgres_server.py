"""A throwaway PostgreSQL server for tests: initdb in a temp dir, listen on 127.0.0.1.

Uses Debian's `postgresql` binaries (scripts/setup.sh installs them). PostgreSQL refuses
to run as root, so under root the cluster belongs to the `postgres` system user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.ports import free_port

USER = "saescope"
PASSWORD = "test-password-not-secret"


@dataclass
class PostgresServer:
    data_dir: Path
    port: int
    bin_dir: Path
    run_as: list[str]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bin_dir / tool), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )


def find_bin_dir() -> Path | None:
    """The directory holding initdb and pg_ctl: on PATH, or Debian's versioned directory."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(os.path.realpath(on_path)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def start_server() -> PostgresServer:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: run scripts/setup.sh, "
            "which installs Debian's `postgresql` package."
        )
    root = Path(tempfile.mkdtemp(prefix="saescope-pg-"))
    data_dir = root / "data"
    run_as: list[str] = []
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    (root / "pw").write_text(PASSWORD + "\n")
    os.chmod(root / "pw", 0o644)
    server = PostgresServer(data_dir, free_port(), bin_dir, run_as)
    server._run(
        "initdb",
        "-D",
        str(data_dir),
        "-U",
        USER,
        "--pwfile",
        str(root / "pw"),
        "--auth",
        "scram-sha-256",
        "-E",
        "UTF8",
        "--locale",
        "C.UTF-8",
    )
    options = (
        f"-h 127.0.0.1 -p {server.port} -k {root} -c fsync=off -c shared_buffers=64MB "
        "-c max_connections=60"
    )
    try:
        server._run(
            "pg_ctl", "-D", str(data_dir), "-o", options, "-l", str(root / "log"), "-w", "start"
        )
    except subprocess.CalledProcessError as err:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        raise RuntimeError(f"PostgreSQL did not start: {err.stderr}\n{log}") from err
    return server
