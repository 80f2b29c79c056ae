"""QC figure of the default MRI gland segmenter on real T2 DICOM series that have no masks.

    .venv/bin/python scripts/seg_qc.py ../shared/data/nci-isbi-prostate3t/Prostate3T-03-000{1,2,3} \
        --out docs/figures/nci_isbi_seg_qc.png

One row per series: three axial slices through the segmented gland (a quarter, half and three
quarters of its extent) and the mid-gland sagittal reformat, the contour drawn in red, with the QC
the pipeline reports (volume, confidence, warnings). Rows are titled by position (series 1, 2, ...),
never by the input's folder or header values.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("series", nargs="+", help="folders, each holding one T2 DICOM series")
    ap.add_argument("--out", required=True, help="PNG path")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from inference.segmentation import segment_volume
    from registration.dicom.read import series_load

    rows = len(args.series)
    fig, axes = plt.subplots(rows, 4, figsize=(13, 3.4 * rows), squeeze=False)
    for r, folder in enumerate(args.series):
        src = Path(folder)
        series = series_load(sorted(p for p in src.iterdir() if p.is_file()), root=src)
        vol = np.asarray(series.volume, dtype=np.float32)
        mask, info = segment_volume(image=vol, modality="mri", affine=series.affine)
        lo, hi = np.percentile(vol, [1, 99.5])
        z = np.flatnonzero(mask.any(axis=(0, 1)))
        picks = [int(z[0] + f * (z[-1] - z[0])) for f in (0.25, 0.5, 0.75)] if z.size else [vol.shape[2] // 2] * 3  # fmt: skip
        for c, k in enumerate(picks):
            ax = axes[r, c]
            ax.imshow(vol[:, :, k].T, cmap="gray", vmin=lo, vmax=hi)
            if mask[:, :, k].any():
                ax.contour(mask[:, :, k].T, levels=[0.5], colors="r", linewidths=1)
            ax.set_title(f"series {r + 1}: axial slice {k + 1}/{vol.shape[2]}", fontsize=9)
            ax.axis("off")
        x = int(np.argwhere(mask)[:, 0].mean()) if mask.any() else vol.shape[0] // 2
        sp = np.linalg.norm(np.asarray(series.affine)[:3, :3], axis=0)
        ax = axes[r, 3]
        ax.imshow(vol[x].T, cmap="gray", vmin=lo, vmax=hi, origin="lower", aspect=sp[2] / sp[1])
        if mask[x].any():
            ax.contour(mask[x].T, levels=[0.5], colors="r", linewidths=1)
        warn = "; ".join(info.get("warnings", [])) or "no warnings"
        ax.set_title("sagittal (mid-gland)", fontsize=9)
        ax.axis("off")
        text = f"{info.get('volume_ml', float('nan')):.1f} mL, confidence {info.get('confidence', float('nan')):.2f}, {warn}"  # fmt: skip
        axes[r, 0].text(0, -0.08, textwrap.shorten(text, 150), transform=axes[r, 0].transAxes, fontsize=8, va="top")  # fmt: skip
        print(f"series {r + 1}: {text} ({info.get('checkpoint')})")
    fig.suptitle(
        "Default MRI gland segmenter on real T2 without masks (NCI-ISBI 2013, TCIA, CC BY 3.0)"
    )
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
