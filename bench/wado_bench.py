"""WADO-URI throughput and latency through a real gunicorn on loopback, 1 and 8 concurrent clients.

Imports the real ProstateX T2 (19 instances, ~295 kB each) into a temporary SQLite + media folder,
starts `gunicorn mritrus_site.wsgi` (2 workers × 4 threads, like `make run`), logs a coordinator in
with a session cookie and fetches the instances round-robin over keep-alive connections.

    python bench/wado_bench.py [--requests 400] [--port 8765]
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import PROSTATEX_T2, ROOT, django_fresh, prostatex_manifest  # noqa: E402


def _prepare(var: Path) -> tuple[str, list[str]]:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.models import User
    from registration.importing.run import cohort_import
    from registration.models import ImageSeries

    run = cohort_import(path=prostatex_manifest(var / "in"), cohort_name="bench")
    if run.accepted != 1:
        sys.exit(f"import failed: {run.error or run.report}")
    user = User.objects.create_user("bench-coordinator", password=None, role="coordinator")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    series = ImageSeries.objects.get()
    urls = [
        "/wado?"
        + urlencode(
            {
                "requestType": "WADO",
                "studyUID": series.study_instance_uid,
                "seriesUID": series.series_instance_uid,
                "objectUID": inst.sop_instance_uid,
                "contentType": "application/dicom",
            }
        )
        for inst in series.instances.order_by("instance_number")
    ]
    return str(session.session_key), urls


def _client(
    port: int, cookie: str, urls: list[str], count: int, out: list[float], errors: list[str]
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for n in range(count):
        t0 = time.perf_counter()
        conn.request("GET", urls[n % len(urls)], headers={"Cookie": f"sessionid={cookie}"})
        response = conn.getresponse()
        body = response.read()
        out.append(time.perf_counter() - t0)
        if response.status != 200 or body[128:132] != b"DICM":
            errors.append(f"{response.status} {body[:80]!r}")
    conn.close()


def _wait_up(port: int, proc: subprocess.Popen) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            sys.exit("gunicorn exited early")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/accounts/login/")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("gunicorn did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    if not PROSTATEX_T2.is_dir():
        sys.exit(f"{PROSTATEX_T2} missing: the bench needs ../shared/data")
    var = django_fresh("mritrus-wado-bench-")
    cookie, urls = _prepare(var)
    env = {**os.environ, "MRITRUS_VAR_DIR": str(var), "MRITRUS_MEDIA_ROOT": str(var / "media")}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    proc = subprocess.Popen(
        [
            str(gunicorn),
            "mritrus_site.wsgi:application",
            "--bind",
            f"127.0.0.1:{args.port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        _wait_up(args.port, proc)
        _client(args.port, cookie, urls, 20, [], [])  # warm-up: imports, DB connections
        print(
            f"WADO-URI, ProstateX T2 instances ({len(urls)} × ~{295} kB), gunicorn 2×4 on loopback, {os.cpu_count()} CPU(s)"
        )
        for clients in (1, 8):
            latencies: list[float] = []
            errors: list[str] = []
            per = max(1, args.requests // clients)
            threads = [
                threading.Thread(
                    target=_client, args=(args.port, cookie, urls, per, latencies, errors)
                )
                for _ in range(clients)
            ]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            if errors:
                sys.exit(f"{len(errors)} failed requests, first: {errors[0]}")
            lat = sorted(latencies)
            print(
                f"{clients} client(s): {len(lat)} requests in {wall:.2f} s -> {len(lat) / wall:.1f} req/s; "
                f"median {statistics.median(lat) * 1000:.1f} ms, p95 {lat[int(0.95 * (len(lat) - 1))] * 1000:.1f} ms"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=20)


if __name__ == "__main__":
    main()
