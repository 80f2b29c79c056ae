"""DICOMweb side by side with Orthanc: the same files, the same requests, 1 and 8 connections.

Imports the real ProstateX T2 (19 instances, ~295 kB each) into a temporary SQLite + media folder,
starts this platform under gunicorn and Orthanc 1.10 + its DICOMweb plugin (Debian packages
`orthanc`, `orthanc-dicomweb`; HTTP Basic authentication, loopback only) with the platform's stored
(de-identified) files loaded into it, so both serve byte-identical instances. Each request kind
is measured with `wrk` (`--latency`; the URLs rotate over the 19 instances) at 1 and 8
connections, one server at a time, for --seconds each.

    apt-get install orthanc orthanc-dicomweb wrk      # once
    python bench/dicomweb_bench.py [--seconds 4] [--workers 2 --threads 4 | --worker-class sync]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import PROSTATEX_T2, ROOT, django_fresh, prostatex_manifest  # noqa: E402

ORTHANC_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
USER, PASSWORD = "bench", "bench-password"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*'
MULTIPART_OCTETS = "multipart/related; type=application/octet-stream; transfer-syntax=*"
LUA = """
local paths = {}
for line in io.lines(os.getenv("WRK_PATHS")) do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def _prepare(var: Path) -> dict:
    from accounts.models import User
    from registration.importing.run import cohort_import
    from registration.models import ImageSeries
    from registration.serving import instance_path

    run = cohort_import(path=prostatex_manifest(var / "in"), cohort_name="bench")
    if run.accepted != 1:
        sys.exit(f"import failed: {run.error or run.report}")
    user = User.objects.create_user("bench-coordinator", password=PASSWORD, role="coordinator")
    series = ImageSeries.objects.get()
    instances = list(series.instances.order_by("instance_number"))
    return {
        "reader_cookie": _reader_session(user, series.case.cohort),
        "cookie": _session_for(user),
        "study": series.study_instance_uid,
        "series": series.series_instance_uid,
        "sops": [i.sop_instance_uid for i in instances],
        "files": [instance_path(i) for i in instances],
        "patient": series.case.case_code,
    }


def _session_for(user: object) -> str:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)  # type: ignore[attr-defined]
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()  # type: ignore[attr-defined]
    session.create()
    return f"sessionid={session.session_key}"


def _reader_session(coordinator: Any, cohort: Any) -> tuple[str, list[str]]:
    """A one-arm open study for one reader: (their cookie, their blinded WADO-URI paths)."""
    from accounts.models import User
    from readerstudy import services
    from readerstudy.models import Assignment
    from readerstudy.serving import view_manifest

    reader = User.objects.create_user(
        "bench-reader", password=None, role="reader", reader_level="junior"
    )
    study = services.study_create(
        name="bench",
        cohort=cohort,
        created_by=coordinator,
        arm_kinds=["original"],
        readers=[reader],
        washout_days=0,
        seed=1,
    )
    services.study_worklists_generate(study=study, user=coordinator)
    services.study_open(study=study, user=coordinator)
    view = Assignment.objects.get().views.get(role="primary")
    paths = [i.removeprefix("wadouri:") for i in view_manifest(view=view)["imageIds"]]
    return _session_for(reader), paths


def _paths(d: dict, *, dicomweb: str) -> dict[str, tuple[list[str], str]]:
    """Request kind -> (paths, Accept) for a server whose DICOMweb root is ``dicomweb``."""
    st, se = d["study"], d["series"]
    wado_uri = [
        "/wado?"
        + urlencode(
            {
                "requestType": "WADO",
                "studyUID": st,
                "seriesUID": se,
                "objectUID": sop,
                "contentType": "application/dicom",
            },
            safe="/",  # Orthanc 1.10 refuses contentType=application%2Fdicom (400)
        )
        for sop in d["sops"]
    ]
    base = f"{dicomweb}/studies/{st}/series/{se}"
    return {
        "WADO-URI instance": (wado_uri, "*/*"),
        "WADO-RS instance": ([f"{base}/instances/{s}" for s in d["sops"]], MULTIPART_DICOM),
        "WADO-RS frame": ([f"{base}/instances/{s}/frames/1" for s in d["sops"]], MULTIPART_OCTETS),
        "WADO-RS series metadata": ([f"{base}/metadata"], "application/dicom+json"),
        "QIDO-RS studies?PatientID": (
            [f"{dicomweb}/studies?PatientID={d['patient']}"],
            "application/dicom+json",
        ),
        "QIDO-RS series instances": ([f"{base}/instances"], "application/dicom+json"),
        # Orthanc has no blinded endpoint: its column repeats its WADO-URI for reference.
        "reader WADO-URI (blinded)": (
            d["reader_cookie"][1] if dicomweb == "/dicomweb" else wado_uri,
            "*/*",
        ),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, headers: dict[str, str], proc: subprocess.Popen, name: str) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"{name} exited early")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{name} did not start")


def _orthanc(tmp: Path, port: int, files: list[Path]) -> subprocess.Popen:
    config = {
        "Name": "bench",
        "StorageDirectory": str(tmp / "storage"),
        "IndexDirectory": str(tmp / "index"),
        "HttpPort": port,
        "DicomServerEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: PASSWORD},
        "Plugins": [ORTHANC_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "HttpThreadsCount": 50,
    }
    (tmp / "orthanc.json").write_text(json.dumps(config))
    proc = subprocess.Popen(
        ["Orthanc", str(tmp / "orthanc.json")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    auth = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
    _wait(f"http://127.0.0.1:{port}/system", auth, proc, "Orthanc")
    for path in files:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/instances", data=path.read_bytes(), headers=auth
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            if response.status != 200:
                sys.exit(f"Orthanc refused {path.name}")
    return proc


def _check(port: int, path: str, accept: str, auth: str) -> None:
    """One request first: a 200 of the expected kind, so a refusal is never measured as speed."""
    name, _, value = auth.partition(": ")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Accept": accept, name: value}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        kind = response.headers.get("Content-Type", "")
        body = response.read()
    want = "json" if "json" in accept else ("multipart" if "multipart" in accept else "dicom")
    if response.status != 200 or want not in kind or len(body) < 100:
        sys.exit(f"{path} on port {port}: {response.status} {kind} {len(body)} bytes")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _wrk(
    port: int, paths: list[str], accept: str, auth: str, conns: int, seconds: int, tmp: Path
) -> tuple[float, float, str]:
    (tmp / "paths.txt").write_text("\n".join(paths) + "\n")
    (tmp / "rotate.lua").write_text(LUA)
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(conns, 2)}",
            f"-c{conns}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(tmp / "rotate.lua"),
            "-H",
            f"Accept: {accept}",
            "-H",
            auth,
            f"http://127.0.0.1:{port}{paths[0]}",
        ],
        env={**os.environ, "WRK_PATHS": str(tmp / "paths.txt")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"50%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, float(value) * _UNITS[unit], f" ({bad.group(1)} non-2xx!)" if bad else ""


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--orthanc-port", type=int, default=0, help="0: a free port")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument("--only", default="", help="run only request kinds containing this text")
    parser.add_argument(
        "--no-fastpath", action="store_true", help="serve through Django's full stack (before)"
    )
    return parser.parse_args()


def _gunicorn(args: argparse.Namespace, var: Path) -> subprocess.Popen:
    """This platform under gunicorn on ``args.port``, on the bench's SQLite + media folder."""
    env = {**os.environ, "MRITRUS_VAR_DIR": str(var), "MRITRUS_MEDIA_ROOT": str(var / "media")}
    env["MRITRUS_DICOM_FASTPATH"] = "0" if args.no_fastpath else "1"
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "mritrus_site.wsgi:application",
            "--bind",
            f"127.0.0.1:{args.port}",
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--worker-class",
            args.worker_class,
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )


def _header(args: argparse.Namespace, d: dict) -> None:
    print(
        f"ProstateX T2, {len(d['sops'])} instances (~295 kB), loopback, {os.cpu_count()} CPU(s); "
        f"mritrus: gunicorn {args.worker_class} {args.workers}x{args.threads}, session cookie, "
        f"fast path {'off' if args.no_fastpath else 'on'}; "
        f"Orthanc {subprocess.run(['Orthanc', '--version'], capture_output=True, text=True).stdout.split()[1]}"
        f" + DICOMweb plugin, HTTP Basic; wrk {args.seconds} s per cell"
    )
    print(
        f"{'request':28} {'conns':>5} {'mritrus req/s':>14} {'median ms':>10} {'Orthanc req/s':>14} {'median ms':>10}"
    )


def _table(args: argparse.Namespace, d: dict, servers: dict, tmp: Path) -> None:
    """One row per request kind and connection count: both servers measured, one at a time."""
    for kind in _paths(d, dicomweb=""):
        if args.only and args.only not in kind:
            continue
        for conns in (1, 8):
            cells = []
            for name, (port, paths, auth) in servers.items():
                urls, accept = paths[kind]
                if name == "mritrus" and kind.startswith("reader"):
                    auth = f"Cookie: {d['reader_cookie'][0]}"
                _check(port, urls[0], accept, auth)
                # warm-up: caches, connections
                _wrk(port, urls, accept, auth, conns, 1, tmp)
                cells.append(_wrk(port, urls, accept, auth, conns, args.seconds, tmp))
            (r1, m1, b1), (r2, m2, b2) = cells
            print(f"{kind:28} {conns:>5} {r1:>14.0f} {m1:>10.2f} {r2:>14.0f} {m2:>10.2f}{b1}{b2}")


def main() -> None:
    args = _args()
    if not PROSTATEX_T2.is_dir():
        sys.exit(f"{PROSTATEX_T2} missing: the bench needs ../shared/data")
    missing = [t for t in ("Orthanc", "wrk") if shutil.which(t) is None]
    if missing or not Path(ORTHANC_PLUGIN).is_file():
        print(
            f"skipped: needs {missing or ORTHANC_PLUGIN}: apt-get install orthanc orthanc-dicomweb wrk"
        )
        return
    # Free ports, so that another bench on this machine is never measured by mistake.
    args.port = args.port or _free_port()
    args.orthanc_port = args.orthanc_port or _free_port()
    var = django_fresh("mritrus-dicomweb-bench-")
    d = _prepare(var)
    tmp = Path(tempfile.mkdtemp(prefix="dicomweb-bench-"))
    ours = _gunicorn(args, var)
    orthanc = None
    try:
        _wait(f"http://127.0.0.1:{args.port}/accounts/login/", {}, ours, "gunicorn")
        orthanc = _orthanc(tmp, args.orthanc_port, d["files"])
        basic = "Authorization: Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        servers = {
            "mritrus": (args.port, _paths(d, dicomweb="/dicomweb"), f"Cookie: {d['cookie']}"),
            "Orthanc": (args.orthanc_port, _paths(d, dicomweb="/dicom-web"), basic),
        }
        _header(args, d)
        _table(args, d, servers, tmp)
    finally:
        ours.terminate()
        ours.wait(timeout=20)
        if orthanc is not None:
            orthanc.terminate()
            orthanc.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
