"""A throwaway deployment in subprocesses: its own database, media, queue and worker processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class Deployment:
    def __init__(self, tmp: Path, *, sqlite_template: Path | None = None, **env: str) -> None:
        self.tmp = tmp
        (tmp / "var").mkdir(parents=True, exist_ok=True)
        if sqlite_template is not None:
            # Migrating a fresh SQLite file takes ~10 s of fsyncs; copy a migrated one instead.
            shutil.copy(sqlite_template, tmp / "var" / "mritrus.sqlite3")
        (tmp / "media").mkdir(parents=True, exist_ok=True)
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MRITRUS_", "DATABASE_URL", "REDIS_URL", "DJANGO_"))
        }
        self.env = {
            **base,
            "DJANGO_SETTINGS_MODULE": "mritrus_site.settings",
            # Settings refuse to start without a key (DEBUG off); every process shares this one.
            "DJANGO_SECRET_KEY": "test-deployment-secret-" + "k" * 40,
            "MRITRUS_VAR_DIR": str(tmp / "var"),
            "MRITRUS_MEDIA_ROOT": str(tmp / "media"),
            "MRITRUS_REGISTRATION_METHOD": "initial",
            "MRITRUS_HEARTBEAT_SECONDS": "0.5",
            "MRITRUS_HEARTBEAT_STALE_SECONDS": "3",
            "MRITRUS_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.workers: list[tuple[subprocess.Popen[bytes], Path]] = []

    @property
    def media(self) -> Path:
        return self.tmp / "media"

    def harness(self, *args: str, timeout: float = 120) -> Any:
        out = subprocess.run(
            [sys.executable, "-m", "tests.jobs.harness", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if out.returncode != 0:
            raise AssertionError(f"harness {args} failed:\n{out.stdout}\n{out.stderr}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def worker_start(self, kind: str, name: str, **env: str) -> subprocess.Popen[bytes]:
        if kind == "db":
            cmd = [
                "db_worker",
                "--queue-name",
                "registration",
                "--interval",
                "0.2",
                "--no-startup-delay",
                "--worker-id",
                name,
                "-v",
                "2",
            ]
        else:
            cmd = [
                "rqworker",
                "registration",
                "--job-class",
                "django_tasks_rq.Job",
                "--worker-class",
                "rq.worker.SimpleWorker",
                "--name",
                name,
            ]
        log = self.tmp / f"{name}.log"
        proc = subprocess.Popen(
            [sys.executable, "manage.py", *cmd],
            cwd=ROOT,
            env={**self.env, **env},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append((proc, log))
        return proc

    def wait_for_log(self, proc: subprocess.Popen[bytes], text: str, timeout: float = 30) -> None:
        log = next(log for p, log in self.workers if p is proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in log.read_text(errors="replace"):
                return
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"worker never logged {text!r}:\n{log.read_text(errors='replace')}")

    def wait_finished(self, timeout: float = 60) -> Any:
        state = self.harness("wait-finished", str(timeout), timeout=timeout + 60)
        if not state["waited"]:
            raise AssertionError(
                f"jobs not finished in {timeout} s: {json.dumps(state, indent=1)}\n{self.logs()}"
            )
        return state

    def wait_stage(
        self, stage: str, timeout: float = 40, kill: subprocess.Popen[bytes] | None = None
    ) -> Any:
        extra = ["--kill", str(kill.pid)] if kill is not None else []
        state = self.harness("wait-stage", stage, str(timeout), *extra, timeout=timeout + 60)
        if kill is not None and state.get("killed"):
            kill.wait(timeout=10)
        if not state["waited"]:
            raise AssertionError(
                f"first job never reached {stage!r}: {json.dumps(state, indent=1)}\n{self.logs()}"
            )
        return state

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for _, log in self.workers
        )

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> None:
        for proc, _ in self.workers:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc, _ in self.workers:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
