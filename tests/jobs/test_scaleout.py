"""Scale-out for real: two worker processes share 20 queued jobs on PostgreSQL (db_worker) and on
Redis (django-tasks-rq rqworker); each job runs exactly once. Skips outside CI only when the server
is absent. SYNTHETIC cases, `initial` stand-in inference."""

from __future__ import annotations

import socket
import uuid

import pytest

from tests.conftest import require_service
from tests.jobs.deployment import Deployment

pytestmark = pytest.mark.slow

N_JOBS = 20
DUPLICATES = 5


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _check_exactly_once(final: dict) -> None:  # type: ignore[type-arg]
    jobs = final["jobs"]
    assert len(jobs) == N_JOBS
    assert all(j["status"] == "succeeded" for j in jobs), [
        j for j in jobs if j["status"] != "succeeded"
    ]
    assert all(j["attempt"] == 1 for j in jobs)  # claimed once, even the 5 delivered twice
    assert sorted(final["registered_per_case"].values()) == [1] * N_JOBS
    assert len(final["output_dirs"]) == N_JOBS and final["tmp"] == []
    assert len({j["worker_id"] for j in jobs}) == 2  # both workers took a share


def _run(d: Deployment, kind: str) -> dict:  # type: ignore[type-arg]
    d.harness("init", str(N_JOBS), "--labels")
    workers = [d.worker_start(kind, f"{kind}-w{i}-{uuid.uuid4().hex[:6]}") for i in (1, 2)]
    ready = "Starting worker" if kind == "db" else "Listening on"
    for w in workers:
        d.wait_for_log(w, ready)
    d.harness("queue", "--dup", str(DUPLICATES))
    return d.wait_finished(timeout=60)


@pytest.mark.postgres
def test_two_db_workers_on_postgresql_run_each_job_once(tmp_path):
    require_service("PostgreSQL", _reachable(5432))
    import psycopg

    name = f"mritrus_jobs_{uuid.uuid4().hex[:10]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    d = Deployment(
        tmp_path / "pg",
        MRITRUS_TASKS_BACKEND="db",
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:5432/{name}",
    )
    try:
        d.harness("migrate", timeout=300)
        final = _run(d, "db")
        _check_exactly_once(final)
    finally:
        d.stop()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.redis
def test_two_rq_workers_on_redis_run_each_job_once(tmp_path, sqlite_template):
    require_service("Redis", _reachable(6379))
    import redis

    # A Redis database of its own, emptied before and after: never another test's queue.
    url = "redis://127.0.0.1:6379/13"
    client = redis.Redis.from_url(url)
    client.flushdb()
    d = Deployment(
        tmp_path / "rq", sqlite_template=sqlite_template, MRITRUS_TASKS_BACKEND="rq", REDIS_URL=url
    )
    try:
        final = _run(d, "rq")
        _check_exactly_once(final)
    finally:
        d.stop()
        client.flushdb()
