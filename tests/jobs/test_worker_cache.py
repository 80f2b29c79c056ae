"""A worker process loads each checkpoint once, however many jobs it runs."""

from __future__ import annotations

import pytest


@pytest.fixture
def restore_loader():  # noqa: ANN201
    import inference.models as models

    original = models.checkpoint_load
    yield
    models.checkpoint_load = original


def test_checkpoint_loaded_once_per_process(tmp_path, restore_loader):
    import torch

    import inference.models as models
    from inference.networks import RERN
    from inference.registry import CheckpointInfo, file_sha256
    from registration.worker import checkpoint_cache_install

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
    real = models.checkpoint_load

    def counting(info, *, device=None):  # noqa: ANN001, ANN202
        loads.append(info.key)
        return real(info, device=device)

    models.checkpoint_load = counting
    checkpoint_cache_install()
    checkpoint_cache_install()  # idempotent: never wraps twice
    first, _ = models.checkpoint_load(info, device=torch.device("cpu"))
    second, _ = models.checkpoint_load(info, device=torch.device("cpu"))
    assert first is second and loads == ["tiny"]
    assert not first.training
