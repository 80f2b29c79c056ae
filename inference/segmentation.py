"""Slice-wise gland segmentation of a 3-D volume with a trained :class:`AttentionUNet2D`.

Two input conventions, chosen by the checkpoint:

* **Real-T2 checkpoints** (their metadata carries ``preprocessing.canonical``, e.g.
  ``seg-mri-promise12-v1``): the volume is reoriented by its affine to the LPS-ordered axial convention
  (:mod:`inference.seg_canonical`), each kept axial slice is resampled to a fixed millimetre spacing on
  a fixed window centred on the slice (re-centred once on the gland when the first pass reaches the
  window's edge), intensities are clipped to the window's 1st–99th percentiles and scaled to [0, 1],
  and the probability comes back to the input grid through the inverse mapping. Without an affine the
  volume is taken as already axial with its slice spanning the window (the older behaviour).
* **Legacy checkpoints** (the simulated ``*-sim-v1``): the paper's preprocessing on the voxel grid —
  MRI drops the top/bottom 10% of slices (axis 2) and resizes slices to the network size; TRUS drops
  the first 25% / last 12.5% of frames (axis 0).

Both then go through :func:`inference.seg_postprocess.gland_postprocess` (main slice run, largest 3-D
component, hole filling) and :func:`inference.seg_postprocess.gland_qc` (volume, confidence, border,
warnings).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from inference import models
from inference.models import device_pick
from inference.preprocess import (
    MRI_SLICE_SIZE,
    TRUS_FRAME_SIZE,
    frames_crop,
    intensity_enhance,
    intensity_normalise,
    slices_resize,
)
from inference.registry import checkpoint_resolve
from inference.seg_canonical import (
    CanonicalView,
    antialias,
    canonical_view,
    from_canonical,
    to_canonical,
    window_sample,
)
from inference.seg_postprocess import LOW_CONFIDENCE, gland_postprocess, gland_qc

__all__ = [
    "MODALITY_SETTINGS",
    "canonical_normalise",
    "segment_volume",
    "segment_volume_probability",
    "segment_with_model",
    "slices_prepare",
]

MODALITY_SETTINGS: dict[str, dict[str, Any]] = {
    "mri": {"axis": 2, "first": 0.1, "last": 0.1, "size": MRI_SLICE_SIZE},
    "trus": {"axis": 0, "first": 0.25, "last": 0.125, "size": TRUS_FRAME_SIZE},
}


def slices_prepare(
    image: NDArray[np.floating], modality: str, *, size: tuple[int, int] | None = None
) -> tuple[NDArray[np.float32], slice, int]:
    """Crop, normalise and resize a volume into a stack of network slices (legacy checkpoints).

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


def _predict(
    model: nn.Module, stack: torch.Tensor, *, batch_size: int, tta_flip: bool
) -> torch.Tensor:
    """Sigmoid probability of ``stack (N, 1, H, W)`` -> ``(N, H, W)``; ``tta_flip`` averages L/R."""
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, stack.shape[0], batch_size):
            x = stack[i : i + batch_size].to(device)
            p = torch.sigmoid(model(x))
            if tta_flip:
                # canonical H is patient right -> left: a mirrored gland is still a gland
                p = 0.5 * (p + torch.sigmoid(model(x.flip(2))).flip(2))
            out.append(p[:, 0].cpu())
    return torch.cat(out) if out else torch.zeros(0, *stack.shape[2:])


def _legacy_probability(
    model: nn.Module, meta: dict[str, Any], image: NDArray[np.float32], modality: str, bs: int
) -> tuple[NDArray[np.float32], int]:
    size = tuple(meta.get("input_shape") or MODALITY_SETTINGS[modality]["size"])
    stack, keep, axis = slices_prepare(image, modality, size=(int(size[0]), int(size[1])))
    p = _predict(model, torch.from_numpy(stack), batch_size=bs, tta_flip=False).numpy()
    prob = np.moveaxis(p, 0, axis)
    other = [s for a, s in enumerate(image.shape) if a != axis]
    native = slices_resize(prob, (other[0], other[1]), axis=axis, order=1)
    out = np.zeros(image.shape, dtype=np.float32)
    index: list[slice] = [slice(None)] * 3
    index[axis] = keep
    out[tuple(index)] = np.clip(np.asarray(native), 0.0, 1.0)
    return out, axis


def _kept(n: int, drop: tuple[float, float]) -> slice:
    start = int(np.floor(n * drop[0]))
    stop = n - int(np.floor(n * drop[1]))
    if stop - start < 1:
        raise ValueError(f"dropping {drop} of {n} slices leaves nothing")
    return slice(start, stop)


def canonical_normalise(
    canon: NDArray[np.floating],
    spacing: tuple[float, float],
    prep: dict[str, Any],
    *,
    centre_mm: tuple[float, float] = (0.0, 0.0),
) -> NDArray[np.float32]:
    """Anti-alias and scale a canonical ``(X, Y, Z)`` volume to [0, 1] by its window's percentiles.

    The percentiles come from the window the network sees (not the whole field of view), so a 192 mm
    scan and a 128 mm scan of the same pelvis normalise alike. Enhancements (``prep["enhance"]``,
    :func:`inference.preprocess.intensity_enhance`) follow. Training uses the same function.
    """
    vol = antialias(canon, spacing, float(prep["spacing_mm"]))
    hw = (int(prep["size"][0]), int(prep["size"][1]))
    s = float(prep["spacing_mm"])
    x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(vol, 2, 0)))[:, None]
    c = torch.tensor([centre_mm], dtype=torch.float64)
    win = window_sample(x, src_spacing=spacing, dst_hw=hw, dst_spacing=(s, s), centre_mm=c)
    lo, hi = np.percentile(win.numpy(), prep.get("percentiles", (1.0, 99.0)))
    out = np.clip((vol - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(vol)
    if prep.get("enhance"):
        out = intensity_enhance(out, list(prep["enhance"]))
    return np.asarray(out, dtype=np.float32)


def _canonical_probability(
    model: nn.Module,
    canon: NDArray[np.float32],
    spacing: tuple[float, float],
    prep: dict[str, Any],
    *,
    batch_size: int,
) -> tuple[NDArray[np.float32], bool]:
    """Probability ``(X, Y, Z)`` on the canonical grid and whether the gland reached the window edge."""
    hw = (int(prep["size"][0]), int(prep["size"][1]))
    s = float(prep["spacing_mm"])
    keep = _kept(canon.shape[2], tuple(prep.get("drop", (0.0, 0.0))))  # type: ignore[arg-type]
    fov = (canon.shape[0] * spacing[0], canon.shape[1] * spacing[1])
    centre = (0.0, 0.0)
    for attempt in range(2):
        norm = canonical_normalise(canon, spacing, prep, centre_mm=centre)
        x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(norm[:, :, keep], 2, 0)))[:, None]
        c = torch.tensor([centre], dtype=torch.float64)
        win = window_sample(x, src_spacing=spacing, dst_hw=hw, dst_spacing=(s, s), centre_mm=c)
        p = _predict(model, win, batch_size=batch_size, tta_flip=bool(prep.get("tta_flip")))
        m = (p > 0.5).numpy()
        edge = bool(m[:, 0].any() or m[:, -1].any() or m[:, :, 0].any() or m[:, :, -1].any())
        bigger = fov[0] > hw[0] * s + 1 or fov[1] > hw[1] * s + 1
        if attempt or not edge or not bigger or not m.any():
            break
        # The gland reached the window's edge and the scan extends beyond it: centre on the gland.
        idx = np.argwhere(m)[:, 1:].mean(axis=0)
        shift = (idx - (np.asarray(hw) - 1) / 2.0) * s
        centre = (centre[0] + float(shift[0]), centre[1] + float(shift[1]))
    back = window_sample(
        p[:, None],
        src_spacing=(s, s),
        dst_hw=(canon.shape[0], canon.shape[1]),
        dst_spacing=spacing,
        centre_mm=-torch.tensor([centre], dtype=torch.float64),
    )
    prob = np.zeros(canon.shape, dtype=np.float32)
    prob[:, :, keep] = np.moveaxis(back[:, 0].numpy(), 0, 2)
    # A gland reaching the first/last analysed slice may continue into the dropped ones.
    if keep.start > 0 or keep.stop < canon.shape[2]:
        edge = edge or bool(m[0].any() or m[-1].any())
    return np.clip(prob, 0.0, 1.0), edge


def segment_with_model(
    *,
    model: nn.Module,
    meta: dict[str, Any],
    image: NDArray[np.floating],
    modality: str,
    affine: NDArray[np.floating] | None = None,
    batch_size: int = 16,
) -> tuple[NDArray[np.uint8], NDArray[np.float32], dict[str, Any]]:
    """Segment with an already loaded model (training-time evaluation uses this too).

    Args:
        meta: checkpoint metadata (``preprocessing`` selects the real-T2 path, see module doc).
        image: ``(X, Y, Z)`` volume; ``affine`` its RAS+ affine or ``None``.

    Returns:
        ``(label (X, Y, Z) uint8, probability (X, Y, Z) float32, qc dict)`` on the input grid; the qc
        dict is :func:`inference.seg_postprocess.gland_qc`'s plus ``orientation``.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 3:
        raise ValueError(f"image must be 3-D (X, Y, Z), got shape {img.shape}")
    prep = dict(meta.get("preprocessing") or {})
    qc_extra: dict[str, Any] = {}
    if not prep.get("canonical"):
        prob, axis = _legacy_probability(model, meta, img, modality, batch_size)
        label = gland_postprocess(prob, axis=axis)
        edge = False
    else:
        if affine is not None:
            view = canonical_view(affine)
        else:
            # No geometry: assume axial, already LPS-ordered, the slice spanning the window.
            fov = float(prep["spacing_mm"]) * max(int(v) for v in prep["size"])
            sp = fov / max(img.shape[0], img.shape[1])
            view = CanonicalView(perm=(0, 1, 2), flip=(False,) * 3, spacing=(sp, sp, 3.0), obliquity_deg=0.0)  # fmt: skip
        canon = np.ascontiguousarray(to_canonical(img, view), dtype=np.float32)
        prob_c, edge = _canonical_probability(
            model, canon, view.spacing[:2], prep, batch_size=batch_size
        )
        thr = float(prep.get("threshold", 0.5))
        label_c = gland_postprocess(prob_c, axis=2, threshold=thr)
        label = np.asarray(from_canonical(label_c, view), dtype=np.uint8)
        prob = np.asarray(from_canonical(prob_c, view), dtype=np.float32)
        qc_extra["orientation"] = {
            "permutation": list(view.perm),
            "flipped": list(view.flip),
            "obliquity_deg": round(view.obliquity_deg, 1),
            "spacing_mm": [round(v, 3) for v in view.spacing],
        }
    qc = gland_qc(
        label,
        prob,
        affine=affine,
        modality=modality,
        low_confidence=float(meta.get("qc", {}).get("low_confidence", LOW_CONFIDENCE)),
        window_edge=edge,
    )
    return label, prob, {**qc, **qc_extra}


def _load(modality: str, checkpoint: str | None, device_name: str) -> tuple[Any, ...]:
    if modality not in MODALITY_SETTINGS:
        raise ValueError(f"modality must be one of {sorted(MODALITY_SETTINGS)}, got {modality!r}")
    info = checkpoint_resolve(kind=f"seg_{modality}", key_or_path=checkpoint)
    device = device_pick(device_name)
    # looked up at call time so a worker's per-process model cache (a wrapper) applies
    model, meta = models.checkpoint_load(info, device=device)
    out = {
        "name": meta["architecture"],
        "checkpoint": info.key,
        "sha256": info.sha256,
        "code_version": meta.get("code_version", ""),
        "synthetic_training": bool(meta.get("training_data", {}).get("synthetic", False)),
    }
    return model, meta, out


def segment_volume(
    *,
    image: NDArray[np.floating],
    modality: str,
    affine: NDArray[np.floating] | None = None,
    checkpoint: str | None = None,
    device_name: str = "auto",
    batch_size: int = 16,
) -> tuple[NDArray[np.uint8], dict[str, Any]]:
    """Segment the gland of a volume.

    Args:
        image: ``(X, Y, Z)`` volume on its own grid.
        affine: its RAS+ affine; gives canonical orientation, mm resampling and ``volume_ml``.

    Returns:
        ``(label (X, Y, Z) uint8, info)``: model identity (``name``, ``checkpoint``, ``sha256``,
        ``code_version``, ``synthetic_training``) and QC (``volume_ml`` or ``None``, ``confidence``,
        ``touches_border``, ``warnings`` — plain-English strings for people).

    Raises:
        inference.registry.CheckpointError: no segmentation model for ``modality``.
    """
    model, meta, out = _load(modality, checkpoint, device_name)
    label, _, qc = segment_with_model(
        model=model, meta=meta, image=image, modality=modality, affine=affine, batch_size=batch_size
    )
    return label, {**out, **qc}


def segment_volume_probability(
    *,
    image: NDArray[np.floating],
    modality: str,
    affine: NDArray[np.floating] | None = None,
    checkpoint: str | None = None,
    device_name: str = "auto",
    batch_size: int = 16,
) -> tuple[NDArray[np.float32], dict[str, Any]]:
    """Like :func:`segment_volume` but returns the gland probability ``(X, Y, Z)`` float32 in [0, 1].

    The probability is before post-processing (threshold 0.5 then post-processing gives the label).
    """
    model, meta, out = _load(modality, checkpoint, device_name)
    _, prob, qc = segment_with_model(
        model=model, meta=meta, image=image, modality=modality, affine=affine, batch_size=batch_size
    )
    return prob, {**out, **qc}
