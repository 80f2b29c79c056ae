"""Build a cohort folder from ONE real T2 DICOM series and a SIMULATED TRUS of the same prostate.

    .venv/bin/python scripts/real_case_cohort.py ../shared/data/nci-isbi-prostate3t/Prostate3T-03-0001 \
        --out /tmp/real-case --code REAL001 [--seed 0]
    .venv/bin/python manage.py cohort_import /tmp/real-case --cohort "Real T2 + simulated TRUS"

No real paired TRUS exists offline, so the TRUS side is simulated (``inference.simulate``) from the
real T2 and a gland mask that the shipped MRI segmenter produced on it (the mask is only used to
simulate; it is NOT imported). The cohort carries no gland labels: registering it exercises the path
of a real, unlabelled case (both glands segmented by the models). The manifest marks the case
``synthetic=true`` because its TRUS is simulated. The DICOM files are copied as they are (the import
de-identifies them); the output folder must be outside the repository.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dicom", help="folder of one real T2 DICOM series")
    ap.add_argument("--out", required=True, help="new cohort folder (outside the repository)")
    ap.add_argument("--code", default="REAL001")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from inference.io import volume_save
    from inference.segmentation import segment_volume
    from inference.simulate import SimSource, simulate_pair
    from registration.dicom.read import series_load

    src = Path(args.dicom)
    out = Path(args.out)
    if out.exists():
        print(f"error: {out} exists; choose a new --out", file=sys.stderr)
        return 2
    files = sorted(p for p in src.iterdir() if p.is_file())
    series = series_load(files, root=src)
    mask, info = segment_volume(image=series.volume, modality="mri", affine=series.affine)
    print(f"MRI gland segmented by {info.get('checkpoint')}: {info.get('volume_ml')} mL")
    for w in info.get("warnings", []):
        print(f"warning: {w}")
    source = SimSource(t2=series.volume, affine=series.affine, mask=mask, name=args.code)
    pair = simulate_pair(seed=args.seed, source=source, lesions=[])
    out.mkdir(parents=True)
    shutil.copytree(src, out / "mr_t2")
    volume_save(out / "trus.nii.gz", pair.us, pair.us_affine)
    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["case_code", "reference_pirads", "mr_t2", "trus", "synthetic"])
        w.writerow([args.code, 3, "mr_t2", "trus.nii.gz", "true"])
    print(
        f"wrote {out}: real T2 DICOM + SIMULATED TRUS (probe frame, tilt "
        f"{pair.params['probe_tilt_deg']} deg), no gland labels"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
