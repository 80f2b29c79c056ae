"""Slice-wise gland segmentation of a 3-D volume with a trained :class:`AttentionUNet2D`.

Preprocessing follows the paper: MRI drops the top/bottom 10% of slices (axis 2) and resizes slices to
160x160; TRUS drops the first 25% / last 12.5% of frames (axis 0) and resizes frames to 118x88; both are
normalised to [0, 1]. Dropped slices/frames are labelled background. The largest connected component
is kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from scipy import ndimage

from inference import models
from inference.models import device_pick
from inference.preprocess import (
    MRI_SLICE_SIZE,
    TRUS_FRAME_SIZE,
    frames_crop,
    intensity_normalise,
    slices_resize,
)
from inference.registry import checkpoint_resolve

__all__ = ["MODALITY_SETTINGS", "segment_volume", "slices_prepare"]

MODALITY_SETTINGS: dict[str, dict[str, Any]] = {
    "mri": {"axis": 2, "first": 0.1, "last": 0.1, "size": MRI_SLICE_SIZE},
    "trus": {"axis": 0, "first": 0.25, "last": 0.125, "size": TRUS_FRAME_SIZE},
}


def slices_prepare(
    image: NDArray[np.floating], modality: str, *, size: tuple[int, int] | None = None
) -> tuple[NDArray[np.float32], slice, int]:
    """Crop, normalise and resize a volume into a stack of network slices.

    Returns:
        ``(slices (N, 1, H, W) float32, kept index range, slice axis)``.
    """
    if modality not in MODALITY_SETTINGS:
        raise ValueError(f"modality must be one of {sorted(MODALITY_SETTINGS)}, got {modality!r}")
    st = MODALITY_SETTINGS[modality]
    axis = int(st["axis"])
    cropped, keep = frames_crop(image, first=st["first"], last=st["last"], axis=axis)
    norm = intensity_normalise(np.asarray(cropped, dtype=np.float32))
    resized = slices_resize(norm, size or st["size"], axis=axis, order=1)
    stack = np.moveaxis(np.asarray(resized, dtype=np.float32), axis, 0)[:, None]
    return np.ascontiguousarray(stack), keep, axis


def segment_volume(
    *,
    image: NDArray[np.floating],
    modality: str,
    checkpoint: str | None = None,
    device_name: str = "auto",
    batch_size: int = 16,
) -> tuple[NDArray[np.uint8], dict[str, Any]]:
    """Segment the gland of a volume.

    Returns:
        ``(label (X, Y, Z) uint8, model info dict)``.

    Raises:
        inference.registry.CheckpointError: no segmentation model for ``modality``.
    """
    info = checkpoint_resolve(kind=f"seg_{modality}", key_or_path=checkpoint)
    device = device_pick(device_name)
    # looked up at call time so a worker's per-process model cache (a wrapper) applies
    model, meta = models.checkpoint_load(info, device=device)
    img = np.asarray(image, dtype=np.float32)
    size = tuple(meta.get("input_shape") or MODALITY_SETTINGS[modality]["size"])
    stack, keep, axis = slices_prepare(img, modality, size=(int(size[0]), int(size[1])))
    probs = []
    with torch.no_grad():
        for i in range(0, stack.shape[0], batch_size):
            x = torch.from_numpy(stack[i : i + batch_size]).to(device)
            probs.append(torch.sigmoid(model(x))[:, 0].cpu().numpy())
    prob = np.moveaxis(np.concatenate(probs, axis=0), 0, axis)
    other = [s for a, s in enumerate(img.shape) if a != axis]
    prob_native = slices_resize(prob, (other[0], other[1]), axis=axis, order=1)
    label = np.zeros(img.shape, dtype=np.uint8)
    index: list[slice] = [slice(None)] * 3
    index[axis] = keep
    label[tuple(index)] = (np.asarray(prob_native) > 0.5).astype(np.uint8)
    comps, n = ndimage.label(label)
    if n > 1:
        sizes = ndimage.sum(label, comps, index=range(1, n + 1))
        label = (comps == int(np.argmax(sizes)) + 1).astype(np.uint8)
    out = {
        "name": meta["architecture"],
        "checkpoint": info.key,
        "sha256": info.sha256,
        "code_version": meta.get("code_version", ""),
        "synthetic_training": bool(meta.get("training_data", {}).get("synthetic", False)),
    }
    return label, out
