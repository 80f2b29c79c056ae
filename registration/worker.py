"""Worker-process glue for registration jobs: identity, device, model cache, heartbeat, QC images.

Everything that touches torch or the inference library is imported lazily inside functions, so the
web process (which imports `registration.jobs` to enqueue) never loads torch.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

# Worker command names whose processes run registration jobs (see `worker_process_start`).
WORKER_COMMANDS = {"db_worker", "rqworker", "rqworker-pool"}

# Test-only: seconds to sleep at each stage boundary so a test can kill a worker mid-job.
STAGE_DELAY_ENV = "MRITRUS_TEST_STAGE_DELAY_SECONDS"

# Loaded once per worker process: (method, device) -> config object handed to register_case.
_RUNNER_CACHE: dict[tuple[str, str], Any] = {}
_maintenance_started = False


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
    if method == "initial":
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
    if method != "initial":
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
        from registration.models import RegistrationJob

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


def _normalise(slice_: NDArray[Any]) -> NDArray[np.uint8]:
    arr = np.asarray(slice_, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return np.zeros(arr.shape, dtype=np.uint8)
    lo, hi = np.percentile(finite, [1, 99])
    if hi <= lo:
        hi = lo + 1.0
    out = np.clip((np.nan_to_num(arr, nan=lo) - lo) / (hi - lo), 0, 1) * 255
    return out.astype(np.uint8)


def _display(slice_: NDArray[Any]) -> NDArray[Any]:
    # Voxel (i, j) -> image rows j, columns i, flipped so anterior is up (RAS j grows upward).
    return np.flipud(np.asarray(slice_).T)


def _boundary(mask: NDArray[Any]) -> NDArray[np.bool_]:
    from scipy import ndimage

    m = np.asarray(mask) > 0
    return np.asarray(m & ~ndimage.binary_erosion(m), dtype=bool)


def qc_slice_index(label: NDArray[Any] | None, shape: tuple[int, ...]) -> int:
    """The axial slice through the gland's centre, or the middle slice when there is no gland."""
    if label is not None and np.any(label):
        ks = np.nonzero(np.asarray(label) > 0)[2]
        return int(round(float(ks.mean())))
    return shape[2] // 2


def qc_images_write(
    *,
    folder: Path,
    fixed: NDArray[Any],
    warped: NDArray[Any],
    warped_label: NDArray[Any] | None,
    fixed_label: NDArray[Any] | None,
    tiles: int = 8,
) -> dict[str, str]:
    """Write ``qc_checkerboard.png`` and ``qc_contours.png`` for the gland's central axial slice.

    Checkerboard: alternating tiles of the TRUS and the registered MR. Contours: the TRUS in grey
    with the warped MR gland (red) and, when known, the TRUS gland (green).
    """
    from PIL import Image

    k = qc_slice_index(fixed_label if fixed_label is not None else warped_label, fixed.shape)
    us = _display(_normalise(fixed[:, :, k]))
    mr = _display(_normalise(warped[:, :, k]))
    rows, cols = us.shape
    yy, xx = np.mgrid[0:rows, 0:cols]
    tile = max(1, min(rows, cols) // tiles)
    checker = np.where(((yy // tile) + (xx // tile)) % 2 == 0, us, mr).astype(np.uint8)
    Image.fromarray(checker, mode="L").save(folder / "qc_checkerboard.png")

    rgb = np.stack([us, us, us], axis=-1).astype(np.uint8)
    if warped_label is not None:
        edge = _display(_boundary(warped_label[:, :, k]))
        rgb[edge] = (230, 40, 40)
    if fixed_label is not None:
        edge = _display(_boundary(fixed_label[:, :, k]))
        rgb[edge] = (40, 200, 60)
    Image.fromarray(rgb, mode="RGB").save(folder / "qc_contours.png")
    return {"checkerboard": "qc_checkerboard.png", "contours": "qc_contours.png"}


def _maintenance_loop(period: float) -> None:
    from registration.jobs import jobs_requeue_stale

    while True:
        try:
            close_old_connections()
            requeued = jobs_requeue_stale()
            if requeued:
                logger.warning("re-queued or failed stale registration jobs: %s", requeued)
        except Exception:  # never let recovery crash the worker
            logger.exception("stale-job recovery failed")
        finally:
            connection.close()
        time.sleep(period)


def worker_process_start(argv: list[str] | None = None) -> bool:
    """In a queue worker process, recover stale jobs at start-up and then periodically.

    Called from the app's ``ready()``; does nothing in the web process or other commands. Returns
    whether the maintenance thread was started.
    """
    global _maintenance_started
    args = sys.argv if argv is None else argv
    if _maintenance_started or len(args) < 2 or args[1] not in WORKER_COMMANDS:
        return False
    if os.environ.get("MRITRUS_NO_JOB_RECOVERY", "").lower() in {"1", "true", "yes"}:
        return False
    period = max(1.0, float(settings.MRITRUS_HEARTBEAT_STALE_SECONDS) / 2)
    thread = threading.Thread(
        target=_maintenance_loop, args=(period,), name="job-recovery", daemon=True
    )
    thread.start()
    _maintenance_started = True
    return True


ProgressFn = Callable[[str, float], None]
