"""``python -m inference.simulate demo|dataset``: write SIMULATED data from the command line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from inference.simulate.cohort import write_demo_cohort
from inference.simulate.dataset import write_dataset
from inference.simulate.specs import sim_sources_promise12


def _progress_print(done: int, total: int) -> None:
    print(f"  {done}/{total}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m inference.simulate",
        description="Write SIMULATED MR/TRUS data (synthetic; see the module docstring).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="a demo cohort folder with manifest.csv")
    demo.add_argument("--out", required=True)
    demo.add_argument("--cases", type=int, default=8)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--yale", default=None, help="folder of real T2 + gland masks (Yale layout)")
    ds = sub.add_parser("dataset", help="a DeepReg paired training folder")
    ds.add_argument("--out", required=True)
    ds.add_argument("--pairs", type=int, default=64)
    ds.add_argument("--seed", type=int, default=0)
    ds.add_argument("--yale", default=None, help="folder of real T2 + gland masks (Yale layout)")
    ds.add_argument(
        "--promise12",
        default=None,
        help="real PROMISE12 glands: heldout, training or names (train04,train09); "
        "with it every pair is built on a real gland",
    )
    ds.add_argument("--moving-grid", choices=["fixed", "own"], default="own")
    ds.add_argument(
        "--frame",
        choices=["own", "shared"],
        default="own",
        help="own (default): each TRUS in its own probe frame; shared: in the MR scanner frame",
    )
    ds.add_argument(
        "--displacements",
        action="store_true",
        help="also write the ground-truth fields (~9 MB each)",
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        if args.command == "demo":
            path = write_demo_cohort(
                args.out,
                n_cases=args.cases,
                seed=args.seed,
                yale_dir=args.yale,
                progress=_progress_print,
            )
        else:
            extra = sim_sources_promise12(args.promise12) if args.promise12 else []
            path = write_dataset(
                args.out,
                n_pairs=args.pairs,
                seed=args.seed,
                yale_dir=args.yale,
                sources=extra,
                real_fraction=1.0 if extra else 0.5,
                moving_grid=args.moving_grid,
                frame=args.frame,
                with_displacement=args.displacements,
                progress=_progress_print,
            )
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} (SIMULATED data) in {time.perf_counter() - t0:.1f} s")
    return 0
