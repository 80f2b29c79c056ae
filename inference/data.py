"""Training/evaluation data: DeepReg paired folders, NIfTI image+mask folders, simulated pairs.

Every registration pair goes through the same numpy stages as :func:`inference.pipeline.register_case`
before it reaches a network (frame alignment from the gland labels, the MR sampled once onto the TRUS
grid through it), so networks are trained on exactly the input distribution they see at inference.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from inference import metrics as M
from inference.geometry import frame_align, mr_sample, points_mr_to_us
from inference.io import deepreg_label_split, label_load, volume_load
from inference.preprocess import intensity_normalise

if TYPE_CHECKING:
    from inference.simulate import SimulatedPair

__all__ = [
    "PreparedPair",
    "RawPair",
    "deepreg_pairs",
    "pair_prepare",
    "raw_pair_simulated",
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


def deepreg_pairs(folder: str | os.PathLike[str], *, geometry: str = "affine") -> Iterator[RawPair]:
    """Pairs from a µ-RegPro / DeepReg paired folder.

    Layout: ``moving_images/``, ``fixed_images/``, ``moving_labels/``, ``fixed_labels/`` with the same
    file names; labels are 4-D (channel 0 gland, channels 1.. landmarks) or 3-D gland labels.

    ``geometry="affine"`` (default) trusts the files' affines, each image in its own frame: the
    registration aligns them from the gland labels, orientation included. ``"resize"`` (the old
    DeepReg convention, only for files whose affines are meaningless) gives the moving image the fixed
    image's axes scaled to its own shape; it ignores orientation, so it can mirror and squeeze the MR.
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

    ``source``: None (parametric phantom); a folder with ``prostate_T2_1.nii.gz`` and
    ``prostate_segm_1.nii.gz`` (the Yale T2 layout); or ``promise12:<which>`` with ``which`` =
    ``training``, ``heldout`` or case names (pair ``i`` uses gland ``i mod n``).
    """
    from inference import simulate

    srcs: list[Any] = [None]
    label = "phantom"
    if source and source.startswith("promise12:"):
        srcs = list(simulate.sim_sources_promise12(source.split(":", 1)[1]))
        label = "promise12"
    elif source:
        folder = Path(source)
        srcs = [
            simulate.SimSource.from_files(
                folder / "prostate_T2_1.nii.gz", folder / "prostate_segm_1.nii.gz"
            )
        ]
        label = "yale"
    for i, seed in enumerate(seeds):
        src = srcs[i % len(srcs)]
        sp = simulate.simulate_pair(seed=int(seed), source=src, **kwargs)
        yield raw_pair_simulated(
            sp,
            name=f"sim-{label}-{sp.source}-{seed}" if src is not None else f"sim-{label}-{seed}",
            source=f"inference.simulate seed={seed} source={sp.source}",
        )


def raw_pair_simulated(sp: SimulatedPair, *, name: str, source: str = "") -> RawPair:
    """A :class:`RawPair` (``synthetic=True``) of a simulated pair's volumes, labels and landmarks."""
    return RawPair(
        name=name,
        mr=np.asarray(sp.mr, dtype=np.float32),
        mr_affine=np.asarray(sp.mr_affine, dtype=np.float64),
        us=np.asarray(sp.us, dtype=np.float32),
        us_affine=np.asarray(sp.us_affine, dtype=np.float64),
        mr_label=np.asarray(sp.mr_label, dtype=np.uint8),
        us_label=np.asarray(sp.us_label, dtype=np.uint8),
        mr_landmarks=np.asarray(sp.mr_landmarks, dtype=np.uint8),
        us_landmarks=np.asarray(sp.us_landmarks, dtype=np.uint8),
        synthetic=True,
        source=source,
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
    """Align the frames (gland labels), sample the MR onto the TRUS grid and resize to ``shape``.

    Landmark centroids are returned in network-grid voxel coordinates for TRE during validation:
    fixed ones where they are, moving ones where the aligned MR shows them (mapped as points).
    """
    if pair.mr_label is None or pair.us_label is None:
        raise ValueError(f"pair {pair.name!r} needs gland labels on both sides for training")
    us_shape = tuple(int(v) for v in pair.us.shape)
    out_shape = tuple(int(v) for v in (shape or us_shape))
    spacing = M.spacing_from_affine(pair.us_affine)
    world = frame_align(
        mr_label=pair.mr_label,
        mr_affine=pair.mr_affine,
        us_label=pair.us_label,
        us_affine=pair.us_affine,
    ).matrix
    geo: dict[str, Any] = {
        "mr_affine": pair.mr_affine,
        "us_shape": us_shape,
        "us_affine": pair.us_affine,
    }
    moving = intensity_normalise(mr_sample(pair.mr, **geo, world=world))
    mlab = mr_sample(pair.mr_label, **geo, world=world)
    fixed = intensity_normalise(pair.us)
    scale = np.array([(o - 1) / max(u - 1, 1) for o, u in zip(out_shape, us_shape)])
    fpts: dict[int, NDArray[np.float64]] = {}
    mpts: dict[int, NDArray[np.float64]] = {}
    if pair.mr_landmarks is not None and pair.us_landmarks is not None:
        fpts = {k: v * scale for k, v in M.landmark_centroids(pair.us_landmarks).items()}
        cents = M.landmark_centroids(pair.mr_landmarks)
        if cents:
            ids = sorted(cents)
            a = pair.mr_affine
            world_pts = np.array([a[:3, :3] @ cents[k] + a[:3, 3] for k in ids])
            mapped = points_mr_to_us(world_pts, world=world, us_affine=pair.us_affine)
            mpts = {k: mapped[i] * scale for i, k in enumerate(ids)}
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
