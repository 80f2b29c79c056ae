"""Worker-process glue for registration jobs: identity, device, model cache, heartbeat.

Everything that touches torch is imported lazily inside functions, so the web process (which
imports the job services to enqueue) never loads torch.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from django.db import connection
from django.utils import timezone

from inference.methods import method_get
from registration.models import RegistrationJob

logger = logging.getLogger(__name__)

# Test-only: seconds to sleep at each stage boundary so a test can kill a worker mid-job.
STAGE_DELAY_ENV = "MRITRUS_TEST_STAGE_DELAY_SECONDS"

# Loaded once per worker process: (method, device) -> config object handed to register_case.
_RUNNER_CACHE: dict[tuple[str, str], Any] = {}


def worker_identity() -> str:
    """Unique across the pool: host, process and (when pinned) the GPU this process may use."""
    ident = f"{socket.gethostname()}:{os.getpid()}"
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if gpu:
        ident += f":gpu{gpu}"
    return ident[:200]


def stage_delay() -> None:
    raw = os.environ.get(STAGE_DELAY_ENV, "").strip()
    if raw:
        time.sleep(float(raw))


def device_for(method: str) -> str:
    """``cuda:N`` (N = the physical GPU from CUDA_VISIBLE_DEVICES) when CUDA is usable, else cpu.

    The numpy-only stand-in never needs a GPU, and importing torch for it would cost seconds per
    worker start; so only network methods look for CUDA.
    """
    if not method_get(method).deformable:
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    return f"cuda:{visible or torch.cuda.current_device()}"


def registration_config(method: str, device: str) -> Any:
    """The pipeline configuration for ``method``, built (and its models loaded) once per process."""
    key = (method, device)
    if key in _RUNNER_CACHE:
        return _RUNNER_CACHE[key]
    from inference.models import checkpoint_cache_enable
    from inference.pipeline import RegistrationConfig

    threads = os.environ.get("MRITRUS_TORCH_THREADS", "").strip()
    config = RegistrationConfig(
        method=method,
        # Inside the process CUDA_VISIBLE_DEVICES renumbers the chosen GPU as cuda:0.
        device="cuda" if device.startswith("cuda") else "cpu",
        # Several CPU workers on one node: give each its share of the cores.
        num_threads=int(threads) if threads else None,
    )
    if method_get(method).deformable:
        checkpoint_cache_enable()
    _RUNNER_CACHE[key] = config
    return config


class Heartbeat(threading.Thread):
    """Refreshes the job's heartbeat while this worker still owns it.

    Ownership is (status running, worker id, attempt). If the row no longer matches, another
    worker has taken the job over (ours was presumed dead): ``lost`` is set and the job body stops
    at its next stage boundary without writing anything.
    """

    def __init__(self, *, job_pk: int, worker_id: str, attempt: int, interval: float) -> None:
        super().__init__(name=f"heartbeat-{job_pk}", daemon=True)
        self.job_pk = job_pk
        self.worker_id = worker_id
        self.attempt = attempt
        self.interval = interval
        self.lost = threading.Event()
        self.cancel_requested = threading.Event()
        self._stop_event = threading.Event()

    def beat(self) -> None:
        rows = RegistrationJob.objects.filter(
            pk=self.job_pk,
            status=RegistrationJob.Status.RUNNING,
            worker_id=self.worker_id,
            attempt=self.attempt,
        )
        if rows.update(heartbeat_at=timezone.now()) == 0:
            self.lost.set()
            return
        if rows.filter(cancel_requested=True).exists():
            self.cancel_requested.set()

    def run(self) -> None:
        try:
            while not self._stop_event.wait(self.interval):
                try:
                    self.beat()
                except Exception:  # a transient DB error must not kill the heartbeat
                    logger.exception("heartbeat of job %s failed", self.job_pk)
                if self.lost.is_set():
                    return
        finally:
            connection.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=max(self.interval * 2, 5.0))
