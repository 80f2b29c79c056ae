"""A real `db_worker` is SIGKILLed mid-job; another worker recovers the job (SYNTHETIC cases)."""

from __future__ import annotations

import pytest

from tests.jobs.deployment import Deployment

pytestmark = pytest.mark.slow


@pytest.fixture
def deployment(tmp_path, sqlite_template):  # noqa: ANN001, ANN201
    d = Deployment(tmp_path / "deploy", sqlite_template=sqlite_template, MRITRUS_TASKS_BACKEND="db")
    yield d
    d.stop()


def test_sigkill_mid_job_is_recovered_once_without_leftovers(deployment):
    d = deployment
    d.harness("init", "2", "--labels")
    queued = d.harness("queue")
    first_job = queued["jobs"][0]

    # Slow stand-in: 1 s at every stage boundary, so the kill lands while outputs are half written.
    w1 = d.worker_start("db", "w1", MRITRUS_TEST_STAGE_DELAY_SECONDS="1")
    # The harness SIGKILLs w1 within ~0.1 s of seeing the stage, well inside the 1 s delay.
    state = d.wait_stage("writing outputs", timeout=60, kill=w1)
    job = state["jobs"][0]
    assert job["pk"] == first_job and job["status"] == "running" and job["attempt"] == 1
    # Alive for longer than the stale limit (3 s) yet never re-queued: the heartbeat works.
    assert any(name.startswith(f"job{first_job}-a1-") for name in state["tmp"])
    killed_worker = job["worker_id"]
    assert w1.returncode == -9

    d.worker_start("db", "w2")
    final = d.wait_finished(timeout=45)
    jobs = {j["pk"]: j for j in final["jobs"]}
    recovered = jobs[first_job]
    assert recovered["status"] == "succeeded", recovered
    assert recovered["attempt"] == 2 and recovered["worker_id"] != killed_worker
    assert all(j["status"] == "succeeded" for j in jobs.values())
    # Exactly one registered series per case, no temp folder, no output of the killed attempt.
    assert sorted(final["registered_per_case"].values()) == [1, 1]
    assert final["tmp"] == []
    assert not any(f"job{first_job}-a1-" in p for p in final["output_dirs"])
    assert any(f"job{first_job}-a2-" in p for p in final["output_dirs"])
    # The dead worker's queue entry is closed, not left "running" forever.
    assert final["queue"] == {"FAILED": 1, "SUCCESSFUL": 2}, final["queue"]
