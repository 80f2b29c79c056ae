"""Inference benchmark: RERN speed and memory, whole-case time, accuracy of every method.

    python bench/inference_bench.py [--pairs 3] [--threads 2] [--methods ...] [--out bench/out/inference]

Prints (and writes JSON to ``--out``):

1. RERN forward time at the µ-RegPro grid 81x118x88 (median of repeats, ``--threads`` CPU threads, or
   the GPU when present) and the peak resident memory of a fresh process doing it.
2. Whole-case time, load -> write (NIfTI in, NIfTI + QC PNG out) for ``rern+io`` and ``initial``, warm
   (models and libraries loaded) and cold (a fresh ``python -m inference.register`` process); and
   ``rern+io`` on an UNLABELLED case (segmentation of both images + registration + outputs).
3. Accuracy on held-out SIMULATED pairs — built from the real PROMISE12 glands that no shipped model
   trained on (``inference.datasets.PROMISE12_HELDOUT``), each TRUS in its own probe frame — for every
   method, including the SimpleITK B-spline baseline (its time too), with DSC, HD95, TRE and folding,
   once with the ground-truth gland labels driving the registration and once with segmented ones
   (figures always against ground truth). All pairs are simulated.
4. MRI segmentation DSC on the 9 held-out real PROMISE12 T2 volumes.

Timings depend on machine load: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

YALE = ROOT.parent / "shared" / "data" / "yale-prostate-t2"
US_SHAPE = (81, 118, 88)

FORWARD_CODE = """
import resource, sys, time, json, torch
torch.set_num_threads(int(sys.argv[1]))
from inference.models import checkpoint_load, device_pick
from inference.networks import RERN
from inference.registry import CheckpointError, checkpoint_resolve
try:
    model, _ = checkpoint_load(checkpoint_resolve(kind="rern"))
    name = "registered RERN checkpoint"
except CheckpointError:
    model, name = RERN().eval(), "untrained RERN (same architecture)"
dev = device_pick("auto")
model = model.to(dev)
x = torch.randn(1, 2, 81, 118, 88, device=dev)
times = []
with torch.no_grad():
    for i in range(int(sys.argv[2]) + 1):
        if dev.type == "cuda": torch.cuda.synchronize()
        t = time.perf_counter(); model(x)
        if dev.type == "cuda": torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
print(json.dumps({"model": name, "device": str(dev), "first_s": times[0],
                  "median_s": sorted(times[1:])[len(times[1:]) // 2],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def forward_bench(threads: int, repeats: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", FORWARD_CODE, str(threads), str(repeats)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def pairs_make(n: int) -> list:
    from inference.data import simulated_pairs
    from inference.datasets import PROMISE12_HELDOUT

    if not (ROOT.parent / "shared" / "data" / "promise12-t2").is_dir():
        print("note: ../shared/data absent; real-gland pairs replaced by phantoms")
        return list(simulated_pairs(range(9100, 9100 + n)))
    names = ",".join(PROMISE12_HELDOUT[:n] if n <= len(PROMISE12_HELDOUT) else PROMISE12_HELDOUT)
    return list(simulated_pairs(range(9000, 9000 + n), source=f"promise12:{names}"))


def _pair_files(pair: Any, work: Path) -> dict[str, Path]:
    """The pair's images and labels as NIfTI files under ``work``."""
    from inference.io import volume_save

    files = {}
    for name, arr, aff in (
        ("mr", pair.mr, pair.mr_affine),
        ("us", pair.us, pair.us_affine),
        ("mr_label", pair.mr_label, pair.mr_affine),
        ("us_label", pair.us_label, pair.us_affine),
    ):
        files[name] = volume_save(work / f"{name}.nii.gz", arr, aff)
    return files


def _labelled_runs(files: dict[str, Path], method: str, threads: int, work: Path) -> dict:
    """``method`` in this process, load -> write, twice: the first run warms imports and models."""
    from inference.io import label_load, volume_load
    from inference.pipeline import RegistrationConfig, register_case
    from inference.register import outputs_write

    runs = []
    for _ in range(2):  # first run warms imports and model loading
        t = time.perf_counter()
        mr, a_mr = volume_load(files["mr"])
        us, a_us = volume_load(files["us"])
        r = register_case(
            mr=mr,
            mr_affine=a_mr,
            us=us,
            us_affine=a_us,
            mr_label=label_load(files["mr_label"])[0],
            us_label=label_load(files["us_label"])[0],
            config=RegistrationConfig(method=method, num_threads=threads),
        )
        outputs_write(work / f"out-{method}", r, us)
        runs.append(time.perf_counter() - t)
    return {
        "warm_s": runs[-1],
        "first_in_process_s": runs[0],
        "stages_s": r.stage_seconds,
        "model": r.model["name"],
    }


def _cold_process_s(files: dict[str, Path], method: str, threads: int, work: Path) -> float:
    """Seconds of a fresh ``python -m inference.register`` process doing the case."""
    t = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "inference.register",
            "--mr",
            str(files["mr"]),
            "--us",
            str(files["us"]),
            "--mr-label",
            str(files["mr_label"]),
            "--us-label",
            str(files["us_label"]),
            "--method",
            method,
            "--threads",
            str(threads),
            "--out",
            str(work / f"cli-{method}"),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t


def _unlabelled_runs(files: dict[str, Path], threads: int, work: Path) -> dict:
    """The default method with both glands segmented, as for a real DICOM-only case."""
    from inference.io import volume_load
    from inference.pipeline import RegistrationConfig, register_case
    from inference.register import outputs_write

    runs = []
    for _ in range(2):  # unlabelled: both glands segmented, as for a real DICOM-only case
        t = time.perf_counter()
        mr, a_mr = volume_load(files["mr"])
        us, a_us = volume_load(files["us"])
        try:
            r = register_case(
                mr=mr,
                mr_affine=a_mr,
                us=us,
                us_affine=a_us,
                config=RegistrationConfig(num_threads=threads),
            )
        except Exception as exc:  # a failed registration is a figure too
            return {"failed": str(exc)}
        outputs_write(work / "out-unlabelled", r, us)
        runs.append(time.perf_counter() - t)
    return {
        "warm_s": runs[-1],
        "first_in_process_s": runs[0],
        "stages_s": r.stage_seconds,
        "model": r.model["name"],
        "cold_process_s": float("nan"),
    }


def whole_case_bench(pair: Any, threads: int, work: Path) -> dict[str, Any]:
    files = _pair_files(pair, work)
    res: dict = {}
    for method in ("initial", "rern+io"):
        res[method] = _labelled_runs(files, method, threads, work)
        res[method]["cold_process_s"] = _cold_process_s(files, method, threads, work)
    res["rern+io unlabelled"] = _unlabelled_runs(files, threads, work)
    return res


def seg_bench() -> dict | None:
    """MRI segmenter on the real PROMISE12 T2 volumes it never trained on (3-D DSC, seconds)."""
    from inference import metrics as M
    from inference.datasets import PROMISE12_HELDOUT, promise12_load
    from inference.registry import CheckpointError
    from inference.segmentation import segment_volume

    if not (ROOT.parent / "shared" / "data" / "promise12-t2").is_dir():
        return None
    dscs: list[float] = []
    secs: list[float] = []
    info: dict[str, Any] = {}
    for name in PROMISE12_HELDOUT:
        case = promise12_load(name)
        try:
            t = time.perf_counter()
            pred, info = segment_volume(image=case.image, modality="mri", affine=case.affine)
            secs.append(time.perf_counter() - t)
        except CheckpointError as exc:
            return {"skipped": str(exc)}
        dscs.append(M.dice(pred, case.label))
    return {
        "model": info.get("checkpoint"),
        "synthetic_training": info.get("synthetic_training"),
        "dsc_heldout_promise12": [round(d, 4) for d in dscs],
        "dsc_mean": sum(dscs) / len(dscs),
        "dsc_min": min(dscs),
        "seconds_mean": sum(secs) / len(secs),
    }


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=3, help="held-out real-gland pairs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--methods",
        nargs="+",
        default=["initial", "rern", "rern+io", "io", "localnet", "sitk-bspline"],
    )
    ap.add_argument("--io-steps", type=int)
    ap.add_argument(
        "--skip", nargs="*", default=[], choices=["forward", "whole", "accuracy", "seg"]
    )
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "inference"))
    return ap.parse_args()


def _forward_report(args: argparse.Namespace, report: dict) -> None:
    report["rern_forward_81x118x88"] = fwd = forward_bench(args.threads, args.repeats)
    print(
        f"RERN forward 81x118x88 on {fwd['device']} ({fwd['model']}): median {fwd['median_s']:.3f} s "
        f"(first {fwd['first_s']:.3f} s), peak RSS {fwd['peak_rss_mb']:.0f} MB"
    )


def _whole_report(args: argparse.Namespace, pairs: list, report: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        report["whole_case"] = wc = whole_case_bench(pairs[0], args.threads, Path(tmp))
    for m, r in wc.items():
        if "failed" in r:
            print(f"whole case [{m}]: FAILED {r['failed']}")
            continue
        print(
            f"whole case load->write [{m}] ({r['model']}): warm {r['warm_s']:.2f} s, "
            f"cold process {r['cold_process_s']:.2f} s; stages {json.dumps({k: round(v, 2) for k, v in r['stages_s'].items()})}"
        )


def _accuracy_report(args: argparse.Namespace, pairs: list, report: dict) -> None:
    from inference.evaluate import evaluate_pairs, summary, table_format

    rows, notes = evaluate_pairs(
        pairs,
        methods=args.methods,
        labels=("segmented", "given"),
        threads=args.threads,
        io_steps=args.io_steps,
    )
    print(
        "\nAccuracy on held-out SIMULATED pairs (real PROMISE12 held-out glands; TRUS simulated):"
    )
    for mode in ("segmented", "given"):
        print(table_format([r for r in rows if r["labels"] == mode], labels=mode))
    s = summary(rows)
    for m, st in s.items():
        if not m.endswith("initial alignment"):
            print(
                f"  {m:>13}: folding mean {st['folding_mean'] * 100:.3f}% max {st['folding_max'] * 100:.3f}%, "
                f"{st['seconds_mean']:.1f} s/case"
            )
    for n in notes:
        print(f"note: {n}")
    report["accuracy"] = {
        "rows": rows,
        "summary": s,
        "notes": notes,
        "pairs": [p.name for p in pairs],
        "synthetic": True,
    }


def main() -> int:
    args = _args()
    import torch

    torch.set_num_threads(args.threads)
    # Loaded here, before any timing, as it always was: the whole-case "first run" figures
    # must not change with where this import sits.
    import inference.evaluate  # noqa: F401

    report: dict = {
        "load_average_start": os.getloadavg(),
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
    }
    if "forward" not in args.skip:
        _forward_report(args, report)
    pairs = pairs_make(args.pairs) if ({"whole", "accuracy"} - set(args.skip)) else []
    if "whole" not in args.skip and pairs:
        _whole_report(args, pairs, report)
    if "accuracy" not in args.skip and pairs:
        _accuracy_report(args, pairs, report)
    if "seg" not in args.skip:
        report["segmentation_mri_heldout"] = seg = seg_bench()
        print(f"MRI segmentation on the 9 held-out real PROMISE12 T2 volumes: {seg}")
    report["load_average_end"] = os.getloadavg()
    print(f"load average start {report['load_average_start']}, end {report['load_average_end']}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "inference_bench.json").write_text(json.dumps(report, indent=2, default=float))
    print(f"wrote {out / 'inference_bench.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
