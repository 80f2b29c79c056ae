"""The torch stages of :func:`inference.pipeline.register_case` (imported lazily by it).

* :func:`network_stage` — RERN / LocalNet on the initially aligned pair (TRUS grid).
* :func:`instance_optimise` — Adam on a coarse displacement grid on one pair's gland labels.
* :func:`segment_stage` — the attention U-Net gland segmenters.

Fields are ``(3, X, Y, Z)`` in TRUS voxels, ``warped(p) = moving(p + u(p))`` where ``moving`` is the
MR already sampled through the frame alignment (:mod:`inference.geometry`).
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from inference.registry import checkpoint_resolve

if TYPE_CHECKING:
    import torch

__all__ = ["instance_optimise", "network_stage", "segment_stage"]

Float32 = NDArray[np.float32]


def _to_tensor(arr: NDArray[np.generic], device: torch.device) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[None, None].to(device)


def network_stage(
    *,
    kind: str,
    checkpoint: str | None,
    moving: Float32,
    fixed: Float32,
    device_name: str,
) -> tuple[Float32, dict[str, Any]]:
    """Run RERN/LocalNet on its training grid and return the field on the TRUS grid (voxels)."""
    import torch
    import torch.nn.functional as F

    from inference.models import checkpoint_load, device_pick

    info = checkpoint_resolve(kind=kind, key_or_path=checkpoint)
    device = device_pick(device_name)
    model, meta = checkpoint_load(info, device=device)
    shape = moving.shape
    net_shape = tuple(int(v) for v in (meta.get("input_shape") or shape))
    x = torch.cat([_to_tensor(moving, device), _to_tensor(fixed, device)], dim=1)
    if net_shape != shape:
        x = F.interpolate(x, size=net_shape, mode="trilinear", align_corners=True)
    with torch.no_grad():
        ddf = model(x)
    if net_shape != shape:
        ddf = F.interpolate(ddf, size=shape, mode="trilinear", align_corners=True)
        scale = torch.tensor(
            [(s - 1) / max(n - 1, 1) for s, n in zip(shape, net_shape)], device=ddf.device
        )
        ddf = ddf * scale.view(1, 3, 1, 1, 1)
    info_out = {
        "name": meta["architecture"],
        "checkpoint": info.key,
        "sha256": info.sha256,
        "code_version": meta.get("code_version", ""),
        "synthetic_training": bool(meta.get("training_data", {}).get("synthetic", False)),
        "training_data": meta.get("training_data", {}),
        "validation": meta.get("validation", {}),
    }
    return ddf[0].cpu().numpy().astype(np.float32), info_out


def instance_optimise(
    *,
    mr_label: NDArray[np.generic],
    us_label: NDArray[np.generic],
    initial: Float32,
    steps: int,
    learning_rate: float,
    bending_weight: float,
    grid_stride: int,
    downsample: int,
    device_name: str = "cpu",
    seed: int = 0,
) -> Float32:
    """Refine a displacement field on one pair's gland labels.

    The refinement ``w`` lives on a control grid (``grid_stride`` voxels of a working grid
    ``downsample`` times coarser than TRUS), is upsampled trilinearly and added to ``initial``:
    ``u = initial + up(w)``. Adam minimises ``DiceLoss(warp(smooth(L_mr), u), smooth(L_us))
    + λ·BE(up(w))``; labels are Gaussian-smoothed (σ = 1 working voxel) to widen the capture range.

    Shapes: labels ``(X, Y, Z)``; ``initial`` and the result ``(3, X, Y, Z)`` in TRUS voxels.
    """
    import torch
    import torch.nn.functional as F
    from monai.losses import BendingEnergyLoss, DiceLoss
    from monai.networks.blocks import Warp

    from inference.models import device_pick

    torch.manual_seed(seed)
    device = device_pick(device_name)
    shape = tuple(int(v) for v in us_label.shape)
    work = tuple(max(int(math.ceil(s / downsample)), 8) for s in shape)
    ctrl = tuple(max(int(math.ceil(s / grid_stride)), 4) for s in work)
    to_work = torch.tensor([(w - 1) / (s - 1) for w, s in zip(work, shape)], device=device)

    def smooth(lab: NDArray[np.generic]) -> torch.Tensor:
        t = _to_tensor((np.asarray(lab) > 0).astype(np.float32), device)
        t = F.interpolate(t, size=work, mode="trilinear", align_corners=True)
        return torch.from_numpy(
            ndimage.gaussian_filter(t[0, 0].cpu().numpy(), 1.0).astype(np.float32)
        )[None, None].to(device)

    mov, fix = smooth(mr_label), smooth(us_label)
    u0 = torch.from_numpy(np.ascontiguousarray(initial, dtype=np.float32))[None].to(device)
    u0_work = F.interpolate(u0, size=work, mode="trilinear", align_corners=True)
    u0_work = u0_work * to_work.view(1, 3, 1, 1, 1)
    w = torch.zeros((1, 3, *ctrl), device=device, requires_grad=True)
    opt = torch.optim.Adam([w], lr=learning_rate)
    warp = Warp(mode="bilinear", padding_mode="border")
    dice_loss = DiceLoss(smooth_nr=1e-5, smooth_dr=1e-5)
    bending = BendingEnergyLoss()
    for _ in range(steps):
        opt.zero_grad()
        refine = F.interpolate(w, size=work, mode="trilinear", align_corners=True)
        warped = warp(mov, u0_work + refine)
        loss = dice_loss(warped, fix) + bending_weight * bending(refine)
        loss.backward()
        opt.step()
    with torch.no_grad():
        refine = F.interpolate(w, size=shape, mode="trilinear", align_corners=True)
        refine = refine / to_work.view(1, 3, 1, 1, 1)
        return (u0 + refine)[0].cpu().numpy().astype(np.float32)


def segment_stage(
    *,
    image: NDArray[np.generic],
    affine: NDArray[np.floating],
    modality: str,
    checkpoint: str | None,
    device_name: str,
) -> tuple[NDArray[np.uint8], dict[str, Any]]:
    """Gland label ``(X, Y, Z)`` uint8 of one image and the model's info (with ``warnings``)."""
    from inference.segmentation import segment_volume

    kw: dict[str, Any] = {}
    if "affine" in inspect.signature(segment_volume).parameters:
        kw["affine"] = np.asarray(affine, dtype=np.float64)
    return segment_volume(
        image=np.asarray(image, dtype=np.float32),
        modality=modality,
        checkpoint=checkpoint,
        device_name=device_name,
        **kw,
    )
