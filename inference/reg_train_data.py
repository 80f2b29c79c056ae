"""Registration training pairs that look like inference with SEGMENTED gland labels.

At inference the frame alignment ``W`` (:func:`inference.geometry.frame_align`) comes from the
segmenters' labels, so it is a few mm / degrees / % off; with ``W`` from ground-truth labels the
residual of a simulated pair is ~0.5 mm and a network trained on it learns nothing useful. Here every
pair is simulated (:func:`inference.simulate.simulate_pair`, real PROMISE12 / Yale gland, the
simulator's probe-like deformation, optionally scaled up) and aligned by

    ``W_train = W_true · P``

``W_true`` is the least-squares affine of the KNOWN deformation over the TRUS gland (what a label
alignment finds with perfect labels; no label search, so a pair costs one simulation) and ``P`` a
random rigid + anisotropic-scaling perturbation about the TRUS gland centroid (TRUS world mm): the
network has to remove the misalignment and the deformation from the image content. Everything after
``W`` is :func:`inference.data.pair_prepare`'s (the pipeline's): the MR sampled once through ``W`` onto
the TRUS grid, normalised, resized to the network grid; landmarks mapped as points.

Config (``data`` of a :mod:`inference.train_registration` config, ``source: simulated_perturbed``)::

    simulate_source: promise12:training   # glands (minus val_glands); see simulated_pairs
    extra_sources: [yale]                 # "yale" = ../shared/data/yale-prostate-t2, or folders
    val_glands: [train03, train16]        # PROMISE12 glands that only validate (never HELDOUT)
    train_seeds: [0, 324]                 # pair i: seed i, gland i mod n
    val_seeds: [5000, 5016]
    deformation_scale: [1.0, 1.6]         # uniform per pair
    perturb: {rotation_deg: 3.0, translation_mm: 2.0, scaling: 0.035, clip: 2.5, identity: 0.15}

``perturb``: per-axis Gaussian SDs (rotation in degrees, translation in mm, log-scaling), clipped at
``clip`` SDs; a fraction ``identity`` of the pairs is left unperturbed (already well aligned).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from inference import metrics as M
from inference.data import PreparedPair, RawPair, _resize, raw_pair_simulated
from inference.geometry import mr_sample, points_mr_to_us
from inference.preprocess import intensity_normalise

__all__ = [
    "PERTURB_DEFAULTS",
    "TRAINING_DATA_DESCRIPTION",
    "TrainPair",
    "displacement_augment",
    "pair_resize",
    "pairs_load",
    "pairs_save",
    "perturbation",
    "perturbed_describe",
    "perturbed_pairs",
    "prepare_with_world",
    "residual_field",
    "sources_select",
    "truth_alignment",
]

F64 = NDArray[np.float64]

PERTURB_DEFAULTS: dict[str, float] = {
    "rotation_deg": 3.0,
    "translation_mm": 2.0,
    "scaling": 0.035,
    "clip": 2.5,
    "identity": 0.15,
}
TRAINING_DATA_DESCRIPTION = (
    "SIMULATED MR/TRUS pairs built on PROMISE12 training glands + Yale "
    "(research use, Litjens et al. 2014)"
)


@dataclass
class TrainPair(PreparedPair):
    """A prepared pair with its known residual field: ``displacement`` ``(3, X, Y, Z)`` in network-grid
    voxels, ``moving(p + u(p))`` corresponds to ``fixed(p)`` (None when unknown)."""

    displacement: NDArray[np.float32] | None = None


def residual_field(sp: Any, world: F64, shape: Sequence[int]) -> NDArray[np.float32]:
    """The true field left after the frame alignment ``world``, on the network grid ``shape``:
    ``u_res(p) = A_us⁻¹ W⁻¹ A_us_mr (p + u(p)) − p`` (TRUS voxels), resized and rescaled."""
    us_shape = tuple(int(v) for v in np.shape(sp.us))
    m = np.linalg.inv(np.asarray(sp.us_affine)) @ np.linalg.inv(world) @ np.asarray(sp.us_affine_mr)
    p = np.indices(us_shape, dtype=np.float64).reshape(3, -1)
    q = p + np.asarray(sp.displacement, dtype=np.float64).reshape(3, -1)
    res = (m[:3, :3] @ q + m[:3, 3:4] - p).reshape(3, *us_shape)
    scale = [(o - 1) / max(u - 1, 1) for o, u in zip(shape, us_shape)]
    return np.stack([_resize(res[c], shape, 1) * scale[c] for c in range(3)]).astype(np.float32)


def displacement_augment(disp: Any, theta: Any) -> Any:
    """The residual field of a batch after the trainer's augmentation ``moving'(x) = moving(θ x)``
    (``theta`` ``(B, 3, 4)``, ``affine_grid`` normalised coordinates, align_corners): torch tensors,
    ``disp`` ``(B, 3, X, Y, Z)`` in voxels."""
    import torch

    b, _, *shape = disp.shape
    kw = {"dtype": disp.dtype, "device": disp.device}
    sizes = torch.tensor([s - 1 for s in shape], **kw).view(1, 3, 1, 1, 1)
    axes = [torch.arange(s, **kw) for s in shape]
    idx = torch.stack(torch.meshgrid(*axes, indexing="ij"))[None]
    v = (2 * (idx + disp) / sizes - 1).flip(1).reshape(b, 3, -1)  # grid order (z, y, x)
    theta = theta.to(disp.dtype)
    w = torch.linalg.solve(theta[:, :, :3], v - theta[:, :, 3:])
    return (w.reshape(b, 3, *shape).flip(1) + 1) * sizes / 2 - idx


def truth_alignment(sp: Any, *, step: int = 2) -> F64:
    """4×4 TRUS own-frame world → MR world: the least-squares affine of a simulated pair's known
    transform ``A_us_mr (p + u(p))`` over the TRUS gland voxels ``p`` (every ``step``-th voxel)."""
    idx = np.argwhere(np.asarray(sp.us_label) > 0)[::step]
    if len(idx) < 10:
        raise ValueError("the TRUS gland label has fewer than 10 voxels")
    u = np.asarray(sp.displacement)[:, idx[:, 0], idx[:, 1], idx[:, 2]].T.astype(np.float64)
    a_us, a_mr_us = np.asarray(sp.us_affine), np.asarray(sp.us_affine_mr)
    p = idx.astype(np.float64)
    src = p @ a_us[:3, :3].T + a_us[:3, 3]
    dst = (p + u) @ a_mr_us[:3, :3].T + a_mr_us[:3, 3]
    design = np.c_[src, np.ones(len(src))]
    sol = np.linalg.lstsq(design, dst, rcond=None)[0]  # (4, 3)
    out = np.eye(4)
    out[:3, :] = sol.T
    return out


def perturbation(
    rng: np.random.Generator, centre: Sequence[float], spec: dict[str, float] | None = None
) -> F64:
    """A random 4×4 ``x ↦ R S (x − c) + c + t`` in TRUS world mm (identity with probability
    ``spec["identity"]``); rotation/translation/log-scale per axis ~ N(0, SD) clipped at ``clip`` SDs."""
    s = {**PERTURB_DEFAULTS, **(spec or {})}
    draws = np.clip(rng.standard_normal(9), -s["clip"], s["clip"])
    if rng.random() < s["identity"]:
        return np.eye(4)
    rot = Rotation.from_rotvec(np.radians(draws[:3] * s["rotation_deg"])).as_matrix()
    lin = rot @ np.diag(np.exp(draws[6:9] * s["scaling"]))
    c = np.asarray(centre, dtype=np.float64)
    out = np.eye(4)
    out[:3, :3] = lin
    out[:3, 3] = c - lin @ c + draws[3:6] * s["translation_mm"]
    return out


def prepare_with_world(
    pair: RawPair, world: F64, *, shape: Sequence[int] | None = None
) -> PreparedPair:
    """:func:`inference.data.pair_prepare` with a given frame alignment ``world`` (no label search)."""
    if pair.mr_label is None or pair.us_label is None:
        raise ValueError(f"pair {pair.name!r} needs gland labels on both sides for training")
    us_shape = tuple(int(v) for v in pair.us.shape)
    out_shape = tuple(int(v) for v in (shape or us_shape))
    geo: dict[str, Any] = {
        "mr_affine": pair.mr_affine,
        "us_shape": us_shape,
        "us_affine": pair.us_affine,
        "world": world,
    }
    moving = intensity_normalise(mr_sample(pair.mr, **geo))
    mlab = mr_sample(pair.mr_label, **geo)
    scale = np.array([(o - 1) / max(u - 1, 1) for o, u in zip(out_shape, us_shape)])
    fpts: dict[int, NDArray[np.float64]] = {}
    mpts: dict[int, NDArray[np.float64]] = {}
    if pair.mr_landmarks is not None and pair.us_landmarks is not None:
        fpts = {k: v * scale for k, v in M.landmark_centroids(pair.us_landmarks).items()}
        cents = M.landmark_centroids(pair.mr_landmarks)
        ids = sorted(cents)
        if ids:
            a = pair.mr_affine
            pts = np.array([a[:3, :3] @ cents[k] + a[:3, 3] for k in ids])
            mapped = points_mr_to_us(pts, world=world, us_affine=pair.us_affine)
            mpts = {k: mapped[i] * scale for i, k in enumerate(ids)}
    sp = M.spacing_from_affine(pair.us_affine)
    net_sp = tuple(float(s / z) for s, z in zip(sp, scale))
    return PreparedPair(
        name=pair.name,
        moving=_resize(moving, out_shape, 1),
        fixed=_resize(intensity_normalise(pair.us), out_shape, 1),
        moving_label=_resize(mlab, out_shape, 1),
        fixed_label=_resize(pair.us_label, out_shape, 1),
        spacing=(net_sp[0], net_sp[1], net_sp[2]),
        fixed_points=fpts,
        moving_points=mpts,
    )


def sources_select(data: dict[str, Any], split: str) -> list[Any]:
    """The :class:`inference.simulate.SimSource` glands of a split: training = ``simulate_source``
    minus ``val_glands`` plus ``extra_sources``; validation = ``val_glands``. HELDOUT is refused."""
    from inference import simulate
    from inference.datasets import PROMISE12_HELDOUT, shared_data_dir

    val = [str(g) for g in data.get("val_glands") or []]
    spec = str(data.get("simulate_source") or "promise12:training")
    if not spec.startswith("promise12:"):
        raise ValueError(f"simulate_source must be promise12:<which>, got {spec!r}")
    if split == "train":
        which = spec.split(":", 1)[1]
        from inference.datasets import promise12_training

        names = promise12_training() if which == "training" else which.split(",")
        names = [n.strip() for n in names if n.strip() and n.strip() not in val]
    else:
        names = val
    bad = sorted(set(names) & set(PROMISE12_HELDOUT))
    if bad:
        raise ValueError(f"PROMISE12 HELDOUT glands {bad} may not train or validate a model")
    srcs: list[Any] = [simulate.SimSource.from_promise12(n) for n in names]
    if split == "train":
        for extra in data.get("extra_sources") or []:
            folder = shared_data_dir() / "yale-prostate-t2" if extra == "yale" else Path(extra)
            srcs.extend(simulate.sim_sources_load(folder))
    if not srcs:
        raise ValueError(f"no glands for split {split!r} (val_glands empty?)")
    return srcs


def _one(args: tuple[int, Any, dict[str, Any], tuple[int, ...]]) -> PreparedPair:
    from inference import simulate

    seed, src, data, shape = args
    rng = np.random.default_rng([int(seed), 7101])
    lo, hi = (float(v) for v in data.get("deformation_scale") or (1.0, 1.0))
    sp = simulate.simulate_pair(seed=int(seed), source=src, deformation_scale=rng.uniform(lo, hi))
    raw = raw_pair_simulated(sp, name=f"sim-promise12-{sp.source}-{seed}")
    w_true = truth_alignment(sp)
    a = raw.us_affine
    centre = a[:3, :3] @ np.argwhere(sp.us_label > 0).mean(0) + a[:3, 3]
    world = w_true @ perturbation(rng, centre, data.get("perturb"))
    prep = prepare_with_world(raw, world, shape=shape)
    return TrainPair(**vars(prep), displacement=residual_field(sp, world, shape))


def perturbed_pairs(
    data: dict[str, Any],
    seeds: Sequence[int],
    split: str,
    shape: Sequence[int],
    *,
    workers: int = 1,
    progress: Any = None,
) -> list[PreparedPair]:
    """Prepared pairs of a split: pair ``i`` is seed ``seeds[i]`` on gland ``i mod n`` (see module
    docstring). ``workers`` > 1 simulates in that many processes (one thread each)."""
    srcs = sources_select(data, split)
    jobs = [(int(s), srcs[i % len(srcs)], data, tuple(shape)) for i, s in enumerate(seeds)]
    wrap = progress or (lambda it, total: it)
    if workers <= 1:
        return [_one(j) for j in wrap(jobs, len(jobs))]
    import multiprocessing as mp

    with mp.get_context("fork").Pool(workers, initializer=_single_thread) as pool:
        return list(wrap(pool.imap(_one, jobs, chunksize=2), len(jobs)))


def perturbed_describe(data: dict[str, Any]) -> str:
    """The training-data line of a checkpoint trained on :func:`perturbed_pairs`."""
    extra = " + ".join(str(e) for e in data.get("extra_sources") or [])
    return (
        f"{TRAINING_DATA_DESCRIPTION}: inference.simulate on {data.get('simulate_source')}"
        f"{' + ' + extra if extra else ''} minus validation glands {data.get('val_glands')}, seeds "
        f"{data['train_seeds']}, deformation_scale {data.get('deformation_scale')}, frame alignment "
        f"= true affine x random perturbation {data.get('perturb')}; validation seeds "
        f"{data['val_seeds']} on the validation glands (PROMISE12 HELDOUT never used)"
    )


def pairs_save(path: Path, pairs: Sequence[PreparedPair]) -> None:
    """Write prepared pairs to one compressed ``.npz`` (atomically: temporary file, then rename)."""
    arrays: dict[str, Any] = {}
    meta = []
    for i, p in enumerate(pairs):
        arrays.update(
            {
                f"{i}_moving": p.moving,
                f"{i}_fixed": p.fixed,
                f"{i}_moving_label": p.moving_label,
                f"{i}_fixed_label": p.fixed_label,
            }
        )
        disp = getattr(p, "displacement", None)
        if disp is not None:
            arrays[f"{i}_displacement"] = disp
        meta.append(
            {
                "name": p.name,
                "spacing": list(p.spacing),
                "fixed_points": {str(k): v.tolist() for k, v in p.fixed_points.items()},
                "moving_points": {str(k): v.tolist() for k, v in p.moving_points.items()},
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, meta=json.dumps(meta), **arrays)
    tmp.replace(path)


def pairs_load(path: Path) -> list[TrainPair]:
    """Read the pairs written by :func:`pairs_save`."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        return [
            TrainPair(
                name=m["name"],
                displacement=z.get(f"{i}_displacement"),
                moving=z[f"{i}_moving"],
                fixed=z[f"{i}_fixed"],
                moving_label=z[f"{i}_moving_label"],
                fixed_label=z[f"{i}_fixed_label"],
                spacing=tuple(m["spacing"]),
                fixed_points={int(k): np.asarray(v) for k, v in m["fixed_points"].items()},
                moving_points={int(k): np.asarray(v) for k, v in m["moving_points"].items()},
            )
            for i, m in enumerate(meta)
        ]


def pair_resize(pair: PreparedPair, shape: Sequence[int]) -> TrainPair:
    """Bring a cached pair to another network grid (align-corners scaling of points, spacing and
    any residual field)."""
    cur = pair.moving.shape
    disp = getattr(pair, "displacement", None)
    if tuple(cur) == tuple(int(v) for v in shape):
        return pair if isinstance(pair, TrainPair) else TrainPair(**vars(pair))
    scale = np.array([(t - 1) / max(c - 1, 1) for t, c in zip(shape, cur)])
    if disp is not None:
        disp = np.stack([_resize(disp[c], shape, 1) * scale[c] for c in range(3)]).astype(
            np.float32
        )
    return TrainPair(
        name=pair.name,
        displacement=disp,
        moving=_resize(pair.moving, shape, 1),
        fixed=_resize(pair.fixed, shape, 1),
        moving_label=_resize(pair.moving_label, shape, 1),
        fixed_label=_resize(pair.fixed_label, shape, 1),
        spacing=tuple(float(s / z) for s, z in zip(pair.spacing, scale)),  # type: ignore[arg-type]
        fixed_points={k: v * scale for k, v in pair.fixed_points.items()},
        moving_points={k: v * scale for k, v in pair.moving_points.items()},
    )


def _single_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
