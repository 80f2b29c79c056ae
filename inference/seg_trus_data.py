"""Training and evaluation data for the TRUS gland segmenter: SIMULATED TRUS on real PROMISE12 glands.

Each PROMISE12 gland (real T2 + manual mask, :mod:`inference.datasets`) is the anatomy of several
simulated TRUS volumes (:func:`inference.simulate.simulate_pair`, appearance from
:mod:`inference.us_appearance`); the TRUS images are simulated, the gland shapes real. Training
uses only :func:`inference.datasets.promise12_training`; the held-out glands are for evaluation.

    python -m inference.seg_trus_data build --out var/data/seg-trus-promise12 --seeds 4
    python -m inference.train_segmentation --config inference/configs/seg_trus_promise12.yaml
    python -m inference.seg_trus_data evaluate --checkpoint PATH_OR_KEY [--checkpoint ...]
    python -m inference.seg_trus_data ship --trained PATH --data var/data/seg-trus-promise12

``build`` writes NIfTI ``images/`` + ``masks/`` folders (the trainer's ``data.source: folder``);
they derive from PROMISE12 (research use): keep them under ``var/``, never in the repository.
``ship`` evaluates on the held-out glands, rewrites the trainer's checkpoint metadata (its
``folder`` source cannot know the images are simulated) and registers it as the default
``seg_trus``. numpy/scipy at import; torch only inside ``evaluate``/``ship``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "build_folder",
    "evaluate",
    "main",
    "ship",
    "simulated_cases",
]

# ------------------------------------------------------------------------------------------------
# Simulated TRUS training / evaluation volumes on real PROMISE12 glands


def _case_names(which: str, directory: str | os.PathLike[str] | None) -> list[str]:
    from inference.datasets import PROMISE12_HELDOUT, promise12_training

    if which == "training":
        return promise12_training(directory)
    if which == "heldout":
        return list(PROMISE12_HELDOUT)
    names = [n.strip() for n in which.split(",") if n.strip()]
    if not names:
        raise ValueError(f"no PROMISE12 cases selected by {which!r}")
    return names


def simulated_cases(
    *,
    cases: str = "training",
    seeds: int = 4,
    base_seed: int = 0,
    directory: str | os.PathLike[str] | None = None,
) -> Iterator[tuple[str, Any]]:
    """``(name, SimulatedPair)`` for ``seeds`` simulated TRUS volumes of each PROMISE12 gland.

    ``cases``: ``"training"`` (the cases a shipped model may train on), ``"heldout"``
    (:data:`inference.datasets.PROMISE12_HELDOUT`, for evaluation only) or names separated by
    commas. Seed of volume ``s`` of case ``trainNN``: ``base_seed * 1_000_003 + NN * 1000 + s``.
    """
    from inference.simulate import SimSource, simulate_pair

    if not 1 <= seeds <= 100:
        raise ValueError(f"seeds must be in 1..100, got {seeds}")
    for name in _case_names(cases, directory):
        src = SimSource.from_promise12(name, directory)
        number = int("".join(c for c in name if c.isdigit()) or 0)
        for s in range(seeds):
            seed = int(base_seed) * 1_000_003 + number * 1000 + s
            yield f"{name}_s{s}", simulate_pair(seed=seed, source=src)


def build_folder(
    out_dir: str | os.PathLike[str],
    *,
    cases: str = "training",
    seeds: int = 4,
    base_seed: int = 0,
    directory: str | os.PathLike[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write ``images/<case>_s<k>.nii.gz`` (simulated TRUS) and ``masks/`` (gland) plus
    ``dataset.json`` — the "NIfTI image + mask folders" that ``data.source: folder`` trains on.

    The folder holds images derived from PROMISE12 (research use): keep it under ``var/``, never in
    the repository. Built in a temporary sibling and moved into place; an existing non-empty
    ``out_dir`` is refused.
    """
    from inference.io import volume_save
    from inference.simulate import SIM_VERSION

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        rows = []
        for name, pair in simulated_cases(
            cases=cases, seeds=seeds, base_seed=base_seed, directory=directory
        ):
            volume_save(tmp / "images" / f"{name}.nii.gz", pair.us, pair.us_affine)
            volume_save(tmp / "masks" / f"{name}.nii.gz", pair.us_label, pair.us_affine)
            rows.append({"name": name, "seed": pair.seed, "source": pair.source})
            if progress is not None:
                progress(name)
        meta = {
            "synthetic": True,
            "description": "SIMULATED TRUS built on PROMISE12 glands (research use, Litjens et "
            "al. 2014); not real ultrasound",
            "generator": f"inference.simulate v{SIM_VERSION} + inference.us_appearance",
            "cases": cases,
            "seeds_per_case": seeds,
            "volumes": rows,
        }
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=1))
        tmp.chmod(0o755)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def evaluate(
    *,
    checkpoints: Sequence[str],
    cases: str = "heldout",
    seeds: int = 2,
    base_seed: int = 1,
    directory: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """3-D DSC and HD95 (mm) of TRUS segmenters on simulated TRUS of ``cases`` (default: the
    held-out glands). Every figure is on SIMULATED TRUS; the volumes are made afresh, not stored."""
    from inference import metrics
    from inference.segmentation import segment_volume

    rows: list[dict[str, Any]] = []
    for name, pair in simulated_cases(
        cases=cases, seeds=seeds, base_seed=base_seed, directory=directory
    ):
        spacing = metrics.spacing_from_affine(pair.us_affine)
        for key in checkpoints:
            label, _ = segment_volume(
                image=pair.us, modality="trus", checkpoint=key, device_name="cpu"
            )
            rows.append(
                {
                    "volume": name,
                    "checkpoint": key,
                    "dsc": metrics.dice(label, pair.us_label),
                    "hd95_mm": metrics.hd95(label, pair.us_label, spacing),
                }
            )
    summary = {}
    for key in checkpoints:
        d = np.array([r["dsc"] for r in rows if r["checkpoint"] == key])
        h = np.array([r["hd95_mm"] for r in rows if r["checkpoint"] == key])
        summary[key] = {
            "n": int(d.size),
            "dsc_mean": float(d.mean()),
            "dsc_median": float(np.median(d)),
            "dsc_min": float(d.min()),
            "hd95_mm_mean": float(np.nanmean(h)),
            "hd95_mm_median": float(np.nanmedian(h)),
            "hd95_undefined": int(np.isnan(h).sum()),
        }
    return {
        "label": f"simulated TRUS from {'held-out' if cases == 'heldout' else cases} real glands "
        f"(PROMISE12), {seeds} simulated volumes per gland",
        "summary": summary,
        "rows": rows,
    }


TRAINING_DATA_NAME = (
    "SIMULATED TRUS built on PROMISE12 training glands (research use, Litjens et al. 2014)"
)


def ship(
    trained: str | os.PathLike[str],
    *,
    key: str,
    data_dir: str | os.PathLike[str],
    heldout: dict[str, Any],
    directory: Path | None = None,
) -> Path:
    """Copy a trainer's checkpoint into the registry as the default ``seg_trus``, saying what it
    was trained on (the trainer's ``folder`` source cannot know the images are simulated).

    ``heldout``: :func:`evaluate` output whose ``summary`` holds ``trained`` (by its path).
    """
    import torch

    from inference.registry import CHECKPOINT_DIR, registry_register

    out_dir = directory or CHECKPOINT_DIR
    payload = torch.load(trained, map_location="cpu", weights_only=False)
    meta = json.loads((Path(data_dir) / "dataset.json").read_text())
    cases = sorted({str(v["source"]) for v in meta["volumes"]})
    payload["training_data"] = {
        **payload.get("training_data", {}),
        "synthetic": True,
        "description": TRAINING_DATA_NAME,
        "generator": meta["generator"],
        "cases": cases,
        "seeds_per_case": meta["seeds_per_case"],
    }
    fig = heldout["summary"][str(trained)]
    validation = {
        **payload.get("validation", {}),
        "heldout_label": heldout["label"],
        "heldout_dsc_mean": fig["dsc_mean"],
        "heldout_dsc_median": fig["dsc_median"],
        "heldout_hd95_mm_mean": fig["hd95_mm_mean"],
        "heldout_hd95_mm_median": fig["hd95_mm_median"],
        "heldout_n_volumes": fig["n"],
    }
    payload["validation"] = validation
    path = out_dir / f"{key}.pt"
    fd, tmp = tempfile.mkstemp(suffix=".pt", dir=out_dir)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; workers may run as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    entry = {
        "architecture": payload["architecture"],
        "synthetic": True,
        "description": f"{TRAINING_DATA_NAME}: {len(cases)} glands x {meta['seeds_per_case']} "
        "simulated TRUS volumes",
        "validation": validation,
    }
    registry_register(key=key, path=path, kind="seg_trus", entry=entry, directory=out_dir)
    return path


def _print_eval(res: dict[str, Any]) -> None:
    print(res["label"])
    for key, f in res["summary"].items():
        print(
            f"  {key:40s} n={f['n']:3d}  3-D DSC mean {f['dsc_mean']:.3f} median "
            f"{f['dsc_median']:.3f} min {f['dsc_min']:.3f}  HD95 mean {f['hd95_mm_mean']:.2f} mm"
            f" median {f['hd95_mm_median']:.2f} mm"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m inference.seg_trus_data",
        description="SIMULATED TRUS on PROMISE12 glands: build a training folder, evaluate, ship.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write images/ + masks/ NIfTI folders")
    b.add_argument("--out", required=True)
    b.add_argument("--cases", default="training", help="training | heldout | trainNN,trainMM")
    b.add_argument("--seeds", type=int, default=4)
    e = sub.add_parser("evaluate", help="3-D DSC / HD95 on simulated TRUS of held-out glands")
    e.add_argument("--checkpoint", action="append", required=True)
    s = sub.add_parser("ship", help="evaluate a trained checkpoint and register it")
    s.add_argument("--trained", required=True, help="the trainer's .pt (output.register: false)")
    s.add_argument("--data", required=True, help="the folder it was trained on (dataset.json)")
    s.add_argument("--key", default="seg-trus-promise12-v1")
    s.add_argument("--compare", action="append", default=["seg-trus-sim-v1"])
    for sp in (e, s):
        sp.add_argument("--seeds", type=int, default=2)
        sp.add_argument("--json", default=None, help="also write the evaluation here")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        if args.command == "build":
            path = build_folder(
                args.out,
                cases=args.cases,
                seeds=args.seeds,
                progress=lambda n: print(f"  {n}", file=sys.stderr, flush=True),
            )
            print(f"wrote {path} (SIMULATED TRUS) in {time.perf_counter() - t0:.0f} s")
            return 0
        keys = args.checkpoint if args.command == "evaluate" else [args.trained, *args.compare]
        res = evaluate(checkpoints=keys, seeds=args.seeds)
        _print_eval(res)
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=1))
        if args.command == "ship":
            path = ship(args.trained, key=args.key, data_dir=args.data, heldout=res)
            print(f"registered {path} as the default seg_trus")
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
