"""Training/evaluation data: DeepReg paired folders, NIfTI image+mask folders, simulated pairs.

Every registration pair goes through the same numpy stages as :func:`inference.pipeline.register_case`
before it reaches a network (MR resampled onto the TRUS grid, initial gland alignment), so networks are
trained on exactly the input distribution they see at inference.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from inference import metrics as M
from inference.io import deepreg_label_split, label_load, volume_load
from inference.pipeline import _moving_points_on_fixed, initial_alignment
from inference.preprocess import intensity_normalise, volume_resample, volume_warp

__all__ = [
    "PreparedPair",
    "RawPair",
    "deepreg_pairs",
    "pair_prepare",
    "segmentation_folder",
    "simulated_pairs",
]

NII_SUFFIXES = (".nii.gz", ".nii")


@dataclass
class RawPair:
    """One MR/TRUS pair with optional labels (volumes on their own grids)."""

    name: str
    mr: NDArray[np.float32]
    mr_affine: NDArray[np.float64]
    us: NDArray[np.float32]
    us_affine: NDArray[np.float64]
    mr_label: NDArray[np.uint8] | None = None
    us_label: NDArray[np.uint8] | None = None
    mr_landmarks: NDArray[np.uint8] | None = None
    us_landmarks: NDArray[np.uint8] | None = None
    synthetic: bool = False
    source: str = ""


@dataclass
class PreparedPair:
    """A pair on the network grid: ``(X, Y, Z)`` arrays, moving already initially aligned."""

    name: str
    moving: NDArray[np.float32]
    fixed: NDArray[np.float32]
    moving_label: NDArray[np.float32]
    fixed_label: NDArray[np.float32]
    spacing: tuple[float, float, float]
    fixed_points: dict[int, NDArray[np.float64]] = field(default_factory=dict)
    moving_points: dict[int, NDArray[np.float64]] = field(default_factory=dict)


def _nii_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(NII_SUFFIXES))


def _stem(p: Path) -> str:
    for suf in NII_SUFFIXES:
        if p.name.endswith(suf):
            return p.name[: -len(suf)]
    return p.stem


def deepreg_pairs(folder: str | os.PathLike[str], *, geometry: str = "resize") -> Iterator[RawPair]:
    """Pairs from a µ-RegPro / DeepReg paired folder.

    Layout: ``moving_images/``, ``fixed_images/``, ``moving_labels/``, ``fixed_labels/`` with the same
    file names; labels are 4-D (channel 0 gland, channels 1.. landmarks) or 3-D gland labels.

    ``geometry="resize"`` (the DeepReg convention, for files whose affines are not physically meaningful)
    gives the moving image the fixed image's affine scaled to its own shape, so resampling is a plain
    resize onto the fixed grid; ``"affine"`` trusts the files' affines.
    """
    root = Path(folder)
    needed = ["moving_images", "fixed_images", "moving_labels", "fixed_labels"]
    missing = [d for d in needed if not (root / d).is_dir()]
    if missing:
        raise FileNotFoundError(f"{root} is not a DeepReg paired folder: missing {missing}")
    if geometry not in ("resize", "affine"):
        raise ValueError(f"geometry must be 'resize' or 'affine', got {geometry!r}")
    for moving_path in _nii_files(root / "moving_images"):
        name = _stem(moving_path)
        paths = {d: root / d / moving_path.name for d in needed}
        absent = [str(p) for p in paths.values() if not p.exists()]
        if absent:
            raise FileNotFoundError(f"pair {name!r} is incomplete: {absent} missing")
        mr, a_mr = volume_load(paths["moving_images"])
        us, a_us = volume_load(paths["fixed_images"])
        mr_lab, mr_lm = _labels(paths["moving_labels"])
        us_lab, us_lm = _labels(paths["fixed_labels"])
        if geometry == "resize":
            a_mr = a_us.copy()
            a_mr[:3, :3] = a_us[:3, :3] @ np.diag(
                [(u - 1) / max(m - 1, 1) for u, m in zip(us.shape, mr.shape)]
            )
        yield RawPair(name, mr, a_mr, us, a_us, mr_lab, us_lab, mr_lm, us_lm, source=str(root))


def _labels(path: Path) -> tuple[NDArray[np.uint8], NDArray[np.uint8] | None]:
    import nibabel as nib

    data = np.asarray(nib.load(str(path)).dataobj)  # type: ignore[attr-defined]
    if data.ndim == 4:
        gland, lm = deepreg_label_split(data)
        return gland, lm if lm.any() else None
    return label_load(path)[0], None


def simulated_pairs(
    seeds: Sequence[int], *, source: str | None = None, **kwargs: Any
) -> Iterator[RawPair]:
    """Pairs from :func:`inference.simulate.simulate_pair` (always ``synthetic=True``).

    ``source``: None (parametric phantom) or a folder with ``prostate_T2_1.nii.gz`` and
    ``prostate_segm_1.nii.gz`` (the Yale T2 layout) whose anatomy is deformed.
    """
    from inference import simulate

    src = None
    if source:
        folder = Path(source)
        src = simulate.SimSource.from_files(
            folder / "prostate_T2_1.nii.gz", folder / "prostate_segm_1.nii.gz"
        )
    for seed in seeds:
        sp = simulate.simulate_pair(seed=int(seed), source=src, **kwargs)
        yield RawPair(
            name=f"sim-{'yale' if source else 'phantom'}-{seed}",
            mr=np.asarray(sp.mr, dtype=np.float32),
            mr_affine=np.asarray(sp.mr_affine, dtype=np.float64),
            us=np.asarray(sp.us, dtype=np.float32),
            us_affine=np.asarray(sp.us_affine, dtype=np.float64),
            mr_label=np.asarray(sp.mr_label, dtype=np.uint8),
            us_label=np.asarray(sp.us_label, dtype=np.uint8),
            mr_landmarks=np.asarray(sp.mr_landmarks, dtype=np.uint8),
            us_landmarks=np.asarray(sp.us_landmarks, dtype=np.uint8),
            synthetic=True,
            source=f"inference.simulate seed={seed} source={'yale' if source else 'phantom'}",
        )


def _resize(arr: NDArray[np.generic], shape: Sequence[int], order: int) -> NDArray[np.float32]:
    zoom = [(t - 1) / max(s - 1, 1) for t, s in zip(shape, arr.shape)]
    # align-corners zoom: the first and last voxel centres map onto each other, as in the pipeline
    grid = np.stack(
        np.meshgrid(
            *[np.arange(t) / z if z > 0 else np.zeros(t) for t, z in zip(shape, zoom)],
            indexing="ij",
        )
    )
    return np.asarray(
        ndimage.map_coordinates(
            np.asarray(arr, dtype=np.float32), grid, order=order, mode="nearest"
        ),
        dtype=np.float32,
    )


def pair_prepare(pair: RawPair, *, shape: Sequence[int] | None = None) -> PreparedPair:
    """Resample, align (centroid + affine on gland labels) and resize one pair to ``shape``.

    Landmark centroids are returned in network-grid voxel coordinates for TRE during validation.
    """
    if pair.mr_label is None or pair.us_label is None:
        raise ValueError(f"pair {pair.name!r} needs gland labels on both sides for training")
    us_shape = tuple(int(v) for v in pair.us.shape)
    out_shape = tuple(int(v) for v in (shape or us_shape))
    spacing = M.spacing_from_affine(pair.us_affine)
    mr_on_us = volume_resample(pair.mr, pair.mr_affine, us_shape, pair.us_affine, order=1)
    lab_on_us = volume_resample(pair.mr_label, pair.mr_affine, us_shape, pair.us_affine, order=0)
    disp, _, _ = initial_alignment(mr_label=lab_on_us, us_label=pair.us_label, spacing=spacing)
    moving = intensity_normalise(volume_warp(mr_on_us, disp))
    fixed = intensity_normalise(pair.us)
    mlab = volume_warp(lab_on_us, disp)
    scale = np.array([(o - 1) / max(u - 1, 1) for o, u in zip(out_shape, us_shape)])
    fpts: dict[int, NDArray[np.float64]] = {}
    mpts: dict[int, NDArray[np.float64]] = {}
    if pair.mr_landmarks is not None and pair.us_landmarks is not None:
        fpts_us = M.landmark_centroids(pair.us_landmarks)
        mpts_us = _moving_points_on_fixed(pair.mr_landmarks, pair.mr_affine, pair.us_affine)
        # the network sees the aligned MR: carry moving points back through the initial alignment,
        # i.e. find q with q + u0(q) = m; u0 is affine, so solve it exactly from three samples.
        lin, off = _affine_of_field(disp)
        for k, m in mpts_us.items():
            mpts[k] = np.linalg.solve(lin, m - off) * scale
        fpts = {k: v * scale for k, v in fpts_us.items()}
    net_spacing = tuple(float(s / z) for s, z in zip(spacing, scale))
    return PreparedPair(
        name=pair.name,
        moving=_resize(moving, out_shape, 1),
        fixed=_resize(fixed, out_shape, 1),
        moving_label=_resize(mlab, out_shape, 1),
        fixed_label=_resize(pair.us_label, out_shape, 1),
        spacing=(net_spacing[0], net_spacing[1], net_spacing[2]),
        fixed_points=fpts,
        moving_points=mpts,
    )


def _affine_of_field(disp: NDArray[np.float32]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Recover ``q -> q + u(q) = L q + o`` from an affine displacement field."""
    o = disp[:, 0, 0, 0].astype(np.float64)
    lin = np.eye(3)
    for a in range(3):
        idx = [0, 0, 0]
        idx[a] = 1
        lin[:, a] += disp[:, idx[0], idx[1], idx[2]] - o
    return lin, o


def segmentation_folder(
    images: str | os.PathLike[str], masks: str | os.PathLike[str]
) -> Iterator[tuple[str, NDArray[np.float32], NDArray[np.uint8]]]:
    """(name, image, gland mask) from NIfTI image and mask folders matched by file name.

    MSD (``imagesTr``/``labelsTr``) and PROMISE12-style folders work; a mask may be multi-zone (any
    non-zero voxel is gland). 4-D MSD images take channel 0 (T2).
    """
    img_dir, mask_dir = Path(images), Path(masks)
    for p in _nii_files(img_dir):
        name = _stem(p)
        candidates = [
            mask_dir / p.name,
            *(mask_dir / f"{name}_segmentation{s}" for s in NII_SUFFIXES),
        ]
        mask_path = next((c for c in candidates if c.exists()), None)
        if mask_path is None:
            raise FileNotFoundError(f"no mask for {p.name} in {mask_dir}")
        import nibabel as nib

        data = np.asarray(nib.load(str(p)).dataobj, dtype=np.float32)  # type: ignore[attr-defined]
        if data.ndim == 4:
            data = data[..., 0]
        mask, _ = label_load(mask_path)
        if mask.shape != data.shape:
            raise ValueError(
                f"{mask_path} shape {mask.shape} does not match {p} shape {data.shape}"
            )
        yield name, data, mask
