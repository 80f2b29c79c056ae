"""A worker process loads each checkpoint once, however many jobs it runs."""

from __future__ import annotations

import pytest


@pytest.fixture
def fresh_cache():  # noqa: ANN201
    import inference.models as models

    saved = models._CACHE
    models._CACHE = None
    yield
    models._CACHE = saved


def test_checkpoint_loaded_once_per_process(tmp_path, fresh_cache, monkeypatch):
    import torch

    import inference.models as models
    from inference.networks import RERN
    from inference.registry import CheckpointInfo, file_sha256
    from registration.jobs import worker

    torch.set_num_threads(1)
    path = models.checkpoint_save(
        tmp_path / "tiny.pt",
        model=RERN(channels=(2, 4)),
        architecture="RERN",
        arch_config={"channels": [2, 4]},
        config={},
        training_data={"synthetic": True},
        validation={},
    )
    info = CheckpointInfo(key="tiny", path=path, sha256=file_sha256(path), entry={})
    loads = []
    real_load = torch.load

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        loads.append(args[0])
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", counting)
    # Without the cache every call reads the file.
    models.checkpoint_load(info, device=torch.device("cpu"))
    models.checkpoint_load(info, device=torch.device("cpu"))
    assert len(loads) == 2
    loads.clear()
    # The worker's configuration turns the cache on: one read however many jobs run.
    monkeypatch.setattr(worker, "_RUNNER_CACHE", {})
    worker.registration_config("rern", "cpu")
    first, _ = models.checkpoint_load(info, device=torch.device("cpu"))
    second, _ = models.checkpoint_load(info, device=torch.device("cpu"))
    assert first is second and len(loads) == 1
    assert not first.training
