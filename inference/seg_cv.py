"""Cross-validation, held-out evaluation and shipping of the real-T2 MRI gland segmenter.

* :func:`cross_validate`: ``k`` folds over all 39 PROMISE12 cases, split **by case** (fold ``f`` takes
  every ``k``-th case of the sorted list from ``f``; cases are numbered by site, so each fold mixes
  sites); Yale subject 1 is always in training. Each fold trains a fresh network (``cv.steps`` steps),
  then segments its test cases through the inference path (:func:`inference.segmentation.
  segment_with_model`, post-processing included) on their full 3-D grids. Results go to
  ``<cv.out>/cv_results.json`` and ``cv_cases.csv`` and a table is printed.
* :func:`train_ship`: trains on :func:`inference.datasets.promise12_training` + Yale (never the
  held-out cases), evaluates on :data:`inference.datasets.PROMISE12_HELDOUT`, saves and registers
  the checkpoint with the CV figures (when the CV JSON exists) and the held-out figures.

HD95 is in mm on the **assumed** PROMISE12 spacing (1 × 1 × 3 mm, see :mod:`inference.datasets`), so it
is approximate; DSC, accuracy, precision and recall do not depend on spacing.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from inference import metrics as M
from inference.datasets import PROMISE12_HELDOUT, promise12_cases, promise12_training
from inference.models import checkpoint_save
from inference.registry import CHECKPOINT_DIR, registry_register
from inference.seg_train_real import RealCase, inference_preprocessing, real_cases, train_model
from inference.segmentation import segment_with_model

__all__ = ["TRAINING_DATA_NAME", "cross_validate", "evaluate_cases", "folds_split", "train_ship"]

TRAINING_DATA_NAME = (
    "PROMISE12 training cases (research use under the challenge's terms; Litjens et al. 2014) "
    "+ Yale subject 1"
)
METRICS = ("dsc", "hd95_mm", "accuracy", "precision", "recall")


def folds_split(cases: list[str], k: int) -> list[list[str]]:
    """``k`` disjoint test folds by case: fold ``f`` = ``sorted(cases)[f::k]``."""
    if not 2 <= k <= len(cases):
        raise ValueError(f"need 2 <= folds <= {len(cases)} cases, got {k}")
    s = sorted(cases)
    return [s[f::k] for f in range(k)]


def evaluate_cases(
    model: nn.Module, meta: dict[str, Any], cases: list[RealCase]
) -> list[dict[str, Any]]:
    """Per-case 3-D metrics on each case's own full grid, after post-processing."""
    rows = []
    for c in cases:
        label, _, qc = segment_with_model(
            model=model, meta=meta, image=c.image, modality="mri", affine=c.affine
        )
        sp = M.spacing_from_affine(c.affine)
        ref_z = c.label.any(axis=(0, 1))
        rows.append(
            {
                "case": c.name,
                "dsc": M.dice(label, c.label),
                "hd95_mm": M.hd95(label, c.label, sp),
                "accuracy": M.accuracy(label, c.label),
                "precision": M.precision(label, c.label),
                "recall": M.recall(label, c.label),
                "volume_ml": qc["volume_ml"],
                "truth_ml": float(c.label.sum()) * float(np.prod(sp)) / 1000.0,
                "confidence": qc["confidence"],
                "warnings": len(qc["warnings"]),
                # share of the predicted gland on slices where the reference has none (apex/base)
                "fp_off_slices": float(label[:, :, ~ref_z].sum()) / max(int(label.sum()), 1),
            }
        )
    return rows


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(rows)}
    for m in METRICS:
        v = np.array([r[m] for r in rows], dtype=np.float64)
        out[m] = {"mean": float(np.nanmean(v)), "sd": float(np.nanstd(v)), "min": float(np.nanmin(v)), "max": float(np.nanmax(v))}  # fmt: skip
    worst = min(rows, key=lambda r: r["dsc"])
    out["worst_case"] = {"case": worst["case"], "dsc": worst["dsc"]}
    return out


def _meta(cfg: dict[str, Any], **over: Any) -> dict[str, Any]:
    prep = {**inference_preprocessing(cfg), **over}
    return {"preprocessing": prep, "qc": {"low_confidence": float(cfg["cv"]["low_confidence"])}}


def _table(folds: list[dict[str, Any]], overall: dict[str, Any]) -> str:
    head = f"{'fold':>7} {'n':>3} {'DSC':>13} {'HD95 mm*':>13} {'acc':>7} {'prec':>7} {'rec':>7}  worst case"  # fmt: skip
    lines = [head]
    for f in [*folds, {"fold": "all", **overall}]:
        s = f if "dsc" in f else f["summary"]
        lines.append(
            f"{f['fold']!s:>7} {s['n']:>3} {s['dsc']['mean']:.3f}±{s['dsc']['sd']:.3f} "
            f"{s['hd95_mm']['mean']:6.2f}±{s['hd95_mm']['sd']:5.2f} {s['accuracy']['mean']:.4f} "
            f"{s['precision']['mean']:.3f}  {s['recall']['mean']:.3f}  "
            f"{s['worst_case']['case']} DSC {s['worst_case']['dsc']:.3f}"
        )
    lines.append("* HD95 on the ASSUMED PROMISE12 spacing (1 x 1 x 3 mm): approximate")
    return "\n".join(lines)


def cross_validate(
    cfg: dict[str, Any],
    *,
    folds: int,
    only: list[int] | None = None,
    steps: int | None = None,
    resume: bool = False,
    log: Any = print,
) -> dict[str, Any]:
    """Run (some of) the folds; aggregate when every fold's result is on disk. See module doc.

    ``resume`` keeps the folds already on disk (a rerun then only aggregates).
    """
    out = Path(cfg["cv"]["out"])
    out.mkdir(parents=True, exist_ok=True)
    split = folds_split(promise12_cases(), folds)
    n_steps = int(steps or cfg["cv"]["steps"])
    for f in only if only is not None else range(folds):
        if resume and (out / f"fold{f}.json").exists():
            log(f"fold {f}: kept from {out / f'fold{f}.json'}")
            continue
        _fold_run(cfg, fold=f, test=split[f], steps=n_steps, out=out, log=log)
    done = [out / f"fold{f}.json" for f in range(folds)]
    if not all(p.exists() for p in done):
        return {"complete": False, "out": str(out)}
    recs = [json.loads(p.read_text(encoding="utf-8")) for p in done]
    return _cv_aggregate(cfg, recs=recs, folds=folds, out=out, log=log)


# Inference variants evaluated on the same fold model (cheap), to choose the shipped settings.
_VARIANTS: dict[str, dict[str, Any]] = {
    "configured": {},
    "drop_0": {"drop": [0.0, 0.0]},
    "drop_10": {"drop": [0.1, 0.1]},
    "threshold_0.4": {"threshold": 0.4},
    "threshold_0.6": {"threshold": 0.6},
    "threshold_0.7": {"threshold": 0.7},
    "no_tta": {"tta_flip": False},
}


def _fold_run(
    cfg: dict[str, Any], *, fold: int, test: list[str], steps: int, out: Path, log: Any
) -> None:
    """Train fold ``fold`` on the other cases + Yale, evaluate every variant on ``test``, and write
    ``fold<k>.json``."""
    f = fold
    train_names = [c for c in promise12_cases() if c not in test]
    log(f"fold {f}: train {len(train_names)} PROMISE12 + Yale, test {test}")

    def fold_log(msg: str, f: int = f) -> None:
        log(f"fold {f} {msg}")

    model, info = train_model(
        real_cases(train_names, cfg=cfg, yale=True),
        cfg,
        steps=steps,
        seed=int(cfg["train"]["seed"]) + f,
        log=fold_log,
    )
    test_cases = real_cases(test, cfg=cfg, yale=False)
    res = {k: evaluate_cases(model, _meta(cfg, **d), test_cases) for k, d in _VARIANTS.items()}
    rec = {
        "fold": f,
        "test": test,
        "steps": info["steps"],  # fewer when train.max_seconds stopped it
        "seconds": info["seconds"],
        "cpu_seconds": info["cpu_seconds"],
        "rows": res,
    }
    (out / f"fold{f}.json").write_text(json.dumps(rec, indent=1), encoding="utf-8")
    log(_table([{"fold": f, "summary": _summary(res["configured"])}], _summary(res["configured"])))  # fmt: skip


def _cv_aggregate(
    cfg: dict[str, Any], *, recs: list[dict[str, Any]], folds: int, out: Path, log: Any
) -> dict[str, Any]:
    """Summarise every fold's record; write ``cv_results.json``, ``cv_cases.csv``, ``cv_table.txt``."""
    drops = _VARIANTS
    fold_rows = [{"fold": r["fold"], "summary": _summary(r["rows"]["configured"])} for r in recs]
    all_rows = [row for r in recs for row in r["rows"]["configured"]]
    overall = _summary(all_rows)
    variants = {
        k: _summary([row for r in recs for row in r["rows"][k]])["dsc"] for k in drops if k != "configured"
    }  # fmt: skip
    result = {
        "complete": True,
        "folds": folds,
        "steps_per_fold": sorted({int(r["steps"]) for r in recs}),
        "seconds": float(sum(r["seconds"] for r in recs)),
        "cpu_seconds": float(sum(r.get("cpu_seconds", float("nan")) for r in recs)),
        "split": [r["test"] for r in recs],
        "per_fold": fold_rows,
        "overall": overall,
        "dsc_by_inference_variant": variants,
        "preprocessing": inference_preprocessing(cfg),
        "hd95_note": "HD95 in mm on the ASSUMED PROMISE12 spacing (1 x 1 x 3 mm): approximate",
        "cases": all_rows,
    }
    (out / "cv_results.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    with open(out / "cv_cases.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["fold", *all_rows[0].keys()])
        w.writeheader()
        for r in recs:
            for row in r["rows"]["configured"]:
                w.writerow({"fold": r["fold"], **row})
    table = _table(fold_rows, overall)
    (out / "cv_table.txt").write_text(table + "\n", encoding="utf-8")
    log(table)
    log("DSC by inference variant (same fold models): " + ", ".join(f"{k} {v['mean']:.3f} (min {v['min']:.3f})" for k, v in variants.items()))  # fmt: skip
    return result


def train_ship(cfg: dict[str, Any], *, resume: bool = False, log: Any = print) -> dict[str, Any]:
    """Train the shipped model on the training split + Yale; evaluate on the held-out 9; register."""
    work = Path(cfg["output"]["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    key = cfg["output"]["key"]
    state_path = work / f"{key}_state.pt"
    state = torch.load(state_path, weights_only=False) if resume and state_path.exists() else None
    names = promise12_training()
    if set(names) & set(PROMISE12_HELDOUT):
        raise RuntimeError("held-out PROMISE12 cases leaked into the training list")

    def save(st: dict[str, Any]) -> None:
        torch.save(st, state_path.with_suffix(".tmp"))
        state_path.with_suffix(".tmp").replace(state_path)

    model, info = train_model(
        real_cases(names, cfg=cfg, yale=True),
        cfg,
        steps=int(cfg["train"]["steps"]),
        seed=int(cfg["train"]["seed"]),
        log=log,
        state=state,
        checkpoint_every=int(cfg["train"]["val_every"]),
        save_state=save,
    )
    meta = _meta(cfg)
    rows = evaluate_cases(model, meta, real_cases(list(PROMISE12_HELDOUT), cfg=cfg, yale=False))
    held = _summary(rows)
    val = _ship_validation(cfg, held)
    path = _ship_checkpoint(cfg, model=model, meta=meta, val=val, info=info, rows=rows, names=names)
    log(f"held-out: DSC {held['dsc']['mean']:.3f} (min {held['dsc']['min']:.3f})")
    return {
        "checkpoint": str(path),
        "validation": val,
        "heldout": rows,
        "seconds": info["seconds"],
        "cpu_seconds": info["cpu_seconds"],
    }


def _ship_validation(cfg: dict[str, Any], held: dict[str, Any]) -> dict[str, float]:
    """The shipped model's validation: held-out figures, plus the cross-validation's when on disk."""
    val: dict[str, float] = {
        "heldout_dsc_mean": held["dsc"]["mean"],
        "heldout_dsc_min": held["dsc"]["min"],
        "heldout_hd95_mm_mean": held["hd95_mm"]["mean"],
    }
    cv_path = Path(cfg["cv"]["out"]) / "cv_results.json"
    if cv_path.exists():
        cv = json.loads(cv_path.read_text(encoding="utf-8"))
        val.update(
            {
                "cv_dsc_mean": cv["overall"]["dsc"]["mean"],
                "cv_dsc_worst": cv["overall"]["dsc"]["min"],
                "cv_hd95_mm_mean": cv["overall"]["hd95_mm"]["mean"],
                "cv_folds": float(cv["folds"]),
            }
        )
    return val


def _ship_checkpoint(
    cfg: dict[str, Any],
    *,
    model: torch.nn.Module,
    meta: dict[str, Any],
    val: dict[str, float],
    info: dict[str, Any],
    rows: list[dict[str, Any]],
    names: list[str],
) -> Path:
    """Write the checkpoint of the shipped model and register it as the default ``seg_mri``."""
    key = cfg["output"]["key"]
    arch = cfg["model"]["architecture"]
    arch_config = dict(cfg["model"].get("arch_config") or {})
    training_data = {
        "synthetic": False,
        "source": "promise12",
        "modality": "mri",
        "description": TRAINING_DATA_NAME,
        "cases": [*names, "yale-prostate-t2 subject 1"],
        "heldout": list(PROMISE12_HELDOUT),
        "spacing_note": "PROMISE12 spacing is not distributed; 1 x 1 x 3 mm assumed (inference.datasets)",
    }
    out_dir = Path(cfg["output"].get("dir") or CHECKPOINT_DIR)
    prep = meta["preprocessing"]
    path = checkpoint_save(
        out_dir / f"{key}.pt",
        model=model.cpu(),
        architecture=arch,
        arch_config=arch_config,
        config=cfg,
        training_data=training_data,
        validation=val,
        input_shape=list(prep["size"]),
        extra={
            "preprocessing": prep,
            "qc": meta["qc"],
            "modality": "mri",
            "steps": info["steps"],
            "history": info["history"],
            "training_seconds": info["seconds"],
            "training_cpu_seconds": info["cpu_seconds"],
            "heldout_cases": rows,
        },
    )
    if cfg["output"].get("register", True):
        registry_register(
            key=key,
            path=path,
            kind="seg_mri",
            entry={
                "architecture": arch,
                "synthetic": False,
                "description": f"{TRAINING_DATA_NAME}; real T2, canonical LPS axial grid at {prep['spacing_mm']} mm, {prep['size'][0]}x{prep['size'][1]} window",  # fmt: skip
                "training_data": TRAINING_DATA_NAME,
                "heldout": list(PROMISE12_HELDOUT),
                "validation": val,
            },
            directory=out_dir,
        )
    return path
