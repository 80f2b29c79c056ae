"""One lease of a lent GPU: every training run of issue 10 at once, then the forward-time figures.

Run on the device machine (or, with ``--smoke``, here on the CPU in a minute to check the plumbing):

    MRITRUS_SHARED_DATA=.gpu/data python3 scripts/device_train.py --out $OUT/run --budget 420

Jobs (one process each, one CPU thread each; the GPU is shared):

* ``segcv_ship``: 5-fold CV by case of the SHIPPED MRI segmenter recipe (seg_mri_promise12.yaml, its
  2400 steps per fold, not the 800 of the CPU CV);
* ``segcv_big`` + ``ship_big``: the same with 2x channels and 6000 steps (not CPU-trainable in 30 min),
  and its model trained on the training split and evaluated on the 9 held-out cases;
* ``rern_a`` / ``rern_b``: RERN on pairs simulated from the PROMISE12 training glands (validation by
  gland), ``a`` with the shipped perturbation, ``b`` with a wider one (segmented-label alignments are
  further off than ``a`` assumes);
* forward time of RERN (fp32) at 81x118x88 and at the network grid.

Every job stops at ``--budget`` seconds (``train.max_seconds``) and still writes its result; nothing is
registered here: checkpoints land under ``--out`` to be evaluated on held-out data on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CFG = ROOT / "inference" / "configs"


def _cfg(name: str, **edits: Any) -> dict[str, Any]:
    cfg = yaml.safe_load((CFG / name).read_text(encoding="utf-8"))
    for dotted, value in edits.items():
        node = cfg
        *path, last = dotted.split("__")
        for k in path:
            node = node.setdefault(k, {})
        node[last] = value
    return cfg


def _jobs(out: Path, budget: float, smoke: bool) -> dict[str, tuple[list[str], dict[str, Any]]]:
    seg_steps, big_steps, reg_steps = (20, 20, 10) if smoke else (2400, 6000, 5000)
    reg_pairs = [0, 6] if smoke else [0, 405]  # 15 pairs on each of the 27 training glands
    common = {"train__device": "auto", "train__num_threads": 1, "train__max_seconds": budget}
    segcv = _cfg("seg_mri_promise12.yaml", cv__out=str(out / "segcv_ship"), cv__steps=seg_steps, **common)  # fmt: skip
    big_arch = {"channels": [16, 32, 64, 128]}
    segbig = _cfg(
        "seg_mri_promise12.yaml",
        model__arch_config=big_arch,
        cv__out=str(out / "segcv_big"),
        cv__steps=big_steps,
        train__steps=big_steps,
        output__key="seg-mri-promise12-v2",
        output__dir=str(out / "ship_big"),
        output__work_dir=str(out / "work_big"),
        output__register=False,
        **common,
    )
    rern = {
        "train__steps": reg_steps,
        "train__batch_size": 4,
        "train__channels_last": False,
        "train__val_every": 250,
        "data__train_seeds": reg_pairs,
        "data__workers": int(os.environ.get("REG_WORKERS", "3")),
        "output__dir": str(out / "rern"),
        "output__register": False,
        **common,
    }
    wide = {
        "rotation_deg": 6.0,
        "translation_mm": 4.0,
        "scaling": 0.06,
        "clip": 2.5,
        "identity": 0.1,
    }
    cfgs = {
        "rern_a": _cfg(
            "rern_promise12.yaml",
            output__key="rern-promise12-a",
            output__work_dir=str(out / "work_rern_a"),
            **rern,
        ),  # fmt: skip
        "rern_b": _cfg(
            "rern_promise12.yaml",
            output__key="rern-promise12-b",
            output__work_dir=str(out / "work_rern_b"),
            data__perturb=wide,
            **rern,
        ),  # fmt: skip
    }
    jobs: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for f in range(5):
        jobs[f"segcv_ship{f}"] = (["inference.train_segmentation", "--cv", "5", "--fold", str(f)], segcv)  # fmt: skip
        jobs[f"segcv_big{f}"] = (["inference.train_segmentation", "--cv", "5", "--fold", str(f)], segbig)  # fmt: skip
    jobs["ship_big"] = (["inference.train_segmentation"], segbig)
    for k, c in cfgs.items():
        jobs[k] = (["inference.train_registration"], c)
    return jobs


def forward_times(smoke: bool) -> dict[str, Any]:
    import torch

    from inference.models import device_pick, model_build

    arch = yaml.safe_load((CFG / "rern_promise12.yaml").read_text(encoding="utf-8"))["model"]
    dev = device_pick("auto")
    model = model_build(arch["architecture"], arch["arch_config"]).to(dev).eval()
    res: dict[str, Any] = {"device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"}
    for shape in ([81, 118, 88], [32, 48, 32]):
        # RERN's 4 poolings need multiples of 16: the pipeline pads/resizes to the network grid.
        padded = [((s + 15) // 16) * 16 for s in shape]
        x = torch.randn(1, 2, *padded, device=dev)
        n = 3 if smoke else 50
        with torch.inference_mode():
            for _ in range(3 if smoke else 10):
                model(x)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(n):
                model(x)
            if dev.type == "cuda":
                torch.cuda.synchronize()
        res["x".join(map(str, shape))] = {
            "padded": padded,
            "ms": 1000 * (time.perf_counter() - t) / n,
        }
    return res


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=float, default=420.0, help="training seconds per job")
    ap.add_argument("--only", nargs="*", help="job names (default all)")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    (out / "cfg").mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    procs = {}
    t0 = time.perf_counter()
    for name, (argv, cfg) in _jobs(out, args.budget, args.smoke).items():
        if args.only and name not in args.only:
            continue
        path = out / "cfg" / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        log = open(out / "logs" / f"{name}.log", "w", encoding="utf-8")  # noqa: SIM115
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", *argv, "--config", str(path)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    codes = {}
    for name, p in procs.items():
        codes[name] = p.wait(timeout=args.budget + 600)
        print(f"{name}: exit {codes[name]} at {time.perf_counter() - t0:.0f} s", flush=True)
    fwd = forward_times(args.smoke)  # on an idle GPU
    print(json.dumps(fwd), flush=True)
    from inference.seg_cv import cross_validate

    summary: dict[str, Any] = {"forward": fwd, "exit": codes}
    for tag in ("segcv_ship", "segcv_big"):
        if not (out / "cfg" / f"{tag}0.yaml").exists():
            continue
        cfg = yaml.safe_load((out / "cfg" / f"{tag}0.yaml").read_text(encoding="utf-8"))
        res = cross_validate(cfg, folds=5, only=[], resume=True)
        summary[tag] = {k: res.get(k) for k in ("complete", "overall", "dsc_by_inference_variant", "steps_per_fold", "seconds")}  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
