"""Simulated TRUS vs the ONE real TRUS volume: appearance figures before/after, and side-by-side PNGs.

"Before" is the simulator as of commit ``664974e`` (read from git, so the figures are reproducible),
"after" the current one. Both simulate the same anatomies and seeds: parametric phantoms and real
PROMISE12 *training* glands (the TRUS side is always SIMULATED). The real volume
(``../shared/data/trus-real-case001``, teaching data: look, never ship) is measured at its native
resolution for reference and on the simulator's grid (0.8 mm, probe at j = 3) like the simulations;
its gland ROI is an ellipsoid placed by eye, so its contrast figures are approximate.

    python bench/us_appearance_bench.py [--sims 8] [--out /tmp/us_appearance] [--seg KEY_OR_PATH]

``--seg`` also segments the real volume with a TRUS segmenter (registry key or .pt path) and saves
``trus_real_seg.png`` (frames with the predicted contour). One CPU thread.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference import us_appearance as ua  # noqa: E402
from inference.datasets import promise12_load, promise12_training  # noqa: E402
from inference.trus_real import fan_region, real_trus_case001  # noqa: E402

BEFORE_COMMIT = "664974e"  # last commit of inference/simulate.py before the appearance work
SP = (0.8, 0.8, 0.8)


def _simulate_before() -> types.ModuleType | None:
    """inference/simulate.py as of BEFORE_COMMIT, or None without git history."""
    try:
        src = subprocess.run(
            ["git", "show", f"{BEFORE_COMMIT}:inference/simulate.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    mod = types.ModuleType("_simulate_before")
    sys.modules[mod.__name__] = mod  # dataclasses resolve annotations through sys.modules
    exec(compile(src, f"simulate.py@{BEFORE_COMMIT}", "exec"), mod.__dict__)  # noqa: S102
    return mod


def _pairs(sim: Any, n: int) -> list[Any]:
    """``n`` simulated pairs: 2 phantoms, the rest on PROMISE12 training glands."""
    names = promise12_training()[:: max(1, len(promise12_training()) // max(n - 2, 1))]
    out = []
    for i in range(n):
        src = None
        if i >= 2 and names:
            c = promise12_load(names[(i - 2) % len(names)])
            src = sim.SimSource(t2=c.image, affine=c.affine, mask=c.label, name=c.name)
        out.append(sim.simulate_pair(seed=300 + i, source=src))
    return out


def _figures(volume: np.ndarray, fov: np.ndarray, gland: np.ndarray, ref: np.ndarray) -> dict:
    s = ua.appearance_summary(volume, spacing=SP, mask=fov, gland=gland)
    s.update(
        ua.histogram_distance(ua.grey_levels(volume, mask=ua.analysis_mask(fov, spacing=SP)), ref)
    )
    return s


ROWS = [
    ("histogram W1 vs real (norm. grey)", "wasserstein", None),
    ("histogram JS distance vs real", "js", None),
    ("median grey (0-255)", "median_grey", None),
    ("95th percentile grey", "p95_grey", None),
    ("fraction of 0-valued voxels", "zero_fraction", None),
    ("speckle SNR mu/sigma (homog.)", "snr", None),
    ("autocorr. FWHM lateral i (mm)", "fwhm_mm", 0),
    ("autocorr. FWHM axial j (mm)", "fwhm_mm", 1),
    ("autocorr. FWHM elevation k (mm)", "fwhm_mm", 2),
    ("gland / background", "gland_bg", None),
    ("capsule peak / gland", "capsule_gland", None),
    *[(f"mean grey depth {10 * b}-{10 * b + 10} mm", "depth_profile", b) for b in range(6)],
]


def _value(s: dict, key: str, idx: int | None) -> float:
    v = s.get(key, float("nan"))
    return float(v[idx]) if idx is not None else float(v)


def _cell(rows: list[dict], key: str, idx: int | None) -> str:
    if not rows:
        return "n/a"
    v = np.array([_value(s, key, idx) for s in rows])
    return f"{np.nanmean(v):7.3f} ± {np.nanstd(v):5.3f}"


def _side_by_side(real: Any, before: list[Any], after: list[Any], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [("REAL case001 (on sim. grid)", real.volume, real.gland)]
    for tag, pairs in (("SIMULATED before", before), ("SIMULATED after", after)):
        for p in pairs[1:3] if pairs else []:
            cols.append((f"{tag}\n{p.source} seed {p.seed}", p.us, p.us_label))
    fig, ax = plt.subplots(2, len(cols), figsize=(3.2 * len(cols), 7.5), squeeze=False)
    for c, (title, vol, lab) in enumerate(cols):
        k = int(np.argmax(lab.sum(axis=(0, 1))))  # the frame with most gland
        ax[0, c].imshow(vol[:, ::-1, k].T, cmap="gray", vmin=0, vmax=255)
        ax[0, c].set_title(f"{title}\ntransverse k={k}", fontsize=8)
        ax[1, c].imshow(vol[vol.shape[0] // 2, ::-1, :], cmap="gray", vmin=0, vmax=255)
        ax[1, c].set_title("sagittal (frame the segmenter sees)", fontsize=8)
        for a in ax[:, c]:
            a.axis("off")
    fig.suptitle("Probe at the bottom. Only the first column is real ultrasound.", fontsize=9)
    fig.tight_layout()
    path = out / "side_by_side.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _segment_real(real: Any, checkpoint: str | None, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from inference.segmentation import segment_volume

    torch.set_num_threads(1)
    label, info = segment_volume(
        image=real.volume, modality="trus", checkpoint=checkpoint, device_name="cpu"
    )
    ml = float(label.sum()) * 0.8**3 / 1000.0
    print(
        f"\nreal TRUS segmented by {info['checkpoint']}: {ml:.1f} mL predicted "
        f"(rough by-eye ellipsoid ROI: {real.gland.sum() * 0.8**3 / 1000.0:.1f} mL); "
        f"DSC vs that ROI {2 * (label & real.gland).sum() / (label.sum() + real.gland.sum()):.2f}"
    )
    ks = [k for k in range(label.shape[2]) if real.fov[:, :, k].any()]
    frames = np.linspace(ks[len(ks) // 6], ks[-len(ks) // 6], 4).astype(int)
    fig, ax = plt.subplots(2, 4, figsize=(13, 8))
    for c, k in enumerate(frames):
        ax[0, c].imshow(real.volume[:, ::-1, k].T, cmap="gray", vmin=0, vmax=200)
        if label[:, :, k].any():
            ax[0, c].contour(label[:, ::-1, k].T, [0.5], colors="r", linewidths=0.8)
        ax[0, c].set_title(f"transverse k={k}", fontsize=8)
    for c, i in enumerate(np.linspace(25, 60, 4).astype(int)):
        ax[1, c].imshow(real.volume[i, ::-1, :], cmap="gray", vmin=0, vmax=200)
        if label[i].any():
            ax[1, c].contour(label[i, ::-1, :], [0.5], colors="r", linewidths=0.8)
        ax[1, c].set_title(f"sagittal i={i} (network frame)", fontsize=8)
    for a in ax.flat:
        a.axis("off")
    fig.suptitle(
        f"REAL TRUS case001, segmenter {info['checkpoint']} (trained on SIMULATED TRUS); "
        "red = prediction, no reference mask exists",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(out / "trus_real_seg.png", dpi=90)
    plt.close(fig)
    print(f"wrote {out / 'trus_real_seg.png'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=8)
    parser.add_argument("--out", default="/tmp/us_appearance")
    parser.add_argument("--seg", default=None, help="also segment the real volume with this model")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    real = real_trus_case001()
    ref = ua.grey_levels(real.volume, mask=ua.analysis_mask(real.fov, spacing=SP))
    fr = _figures(real.volume, real.fov, real.gland, ref)
    native_fan = fan_region(real.native, spacing=real.spacing)
    nat = {
        **ua.speckle_snr(real.native, spacing=real.spacing, mask=native_fan),
        "fwhm_mm": ua.autocorrelation_fwhm(real.native, spacing=real.spacing, mask=native_fan),
    }
    from inference import simulate as sim_after

    sim_before = _simulate_before()
    after = _pairs(sim_after, args.sims)
    before = _pairs(sim_before, args.sims) if sim_before is not None else []
    fa = [_figures(p.us, p.us_fov, p.us_label > 0, ref) for p in after]
    fb = [_figures(p.us, p.us_fov, p.us_label > 0, ref) for p in before]
    print(
        f"TRUS appearance: REAL trus-real-case001 vs SIMULATED ({args.sims} volumes: 2 phantoms, "
        f"{args.sims - 2} on PROMISE12 training glands), mean ± sd over volumes"
    )
    print(
        f"{'figure':36s} {'real native':>12s} {'real on grid':>13s} {'sim BEFORE':>16s} {'sim AFTER':>16s}"
    )
    for title, key, idx in ROWS:
        native = f"{_value(nat, key, idx):12.3f}" if key in nat else f"{'':12s}"
        print(
            f"{title:36s} {native} {_value(fr, key, idx):13.3f} {_cell(fb, key, idx):>16s} "
            f"{_cell(fa, key, idx):>16s}"
        )
    print(
        f"(Rayleigh envelope mu/sigma = {ua.RAYLEIGH_SNR:.3f}; display grey levels are "
        "log-compressed, so their SNR is higher)"
    )
    print(f"wrote {_side_by_side(real, before, after, out)}")
    if args.seg is not None:
        _segment_real(real, None if args.seg == "default" else args.seg, out)
    print(f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
