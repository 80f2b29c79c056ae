"""Import throughput of the real ProstateX T2 series (19 slices, 384×384, 5.6 MB of DICOM).

Each repetition imports the series as a new case through `cohort_import` (read + sort + checks,
de-identification, NIfTI + per-slice DICOM writing, checksums, thumbnail, DB rows) on SQLite in a
temporary folder. Prints slices/s and input MB/s (median over repetitions), and the split between
reading the DICOM and the rest.

    python bench/import_bench.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import PROSTATEX_T2, django_fresh  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not PROSTATEX_T2.is_dir():
        sys.exit(f"{PROSTATEX_T2} missing: the bench needs ../shared/data")
    var = django_fresh("mritrus-import-bench-")
    from registration.dicom.read import series_load
    from registration.importing.run import cohort_import

    files = sorted(PROSTATEX_T2.glob("*.dcm"))
    n_slices = len(files)
    mbytes = sum(f.stat().st_size for f in files) / 1e6
    read_times, total_times = [], []
    for r in range(args.repeat):
        t0 = time.perf_counter()
        series_load(files)
        read_times.append(time.perf_counter() - t0)
        folder = var / f"in{r}"
        folder.mkdir()
        # A copy in the temporary folder: the importer refuses symlinks leaving the cohort folder.
        shutil.copytree(PROSTATEX_T2, folder / "t2")
        (folder / "manifest.csv").write_text(f"case_code,reference_pirads,mr_t2\nPX{r:02d},3,t2\n")
        t0 = time.perf_counter()
        run = cohort_import(path=folder, cohort_name="bench")
        total_times.append(time.perf_counter() - t0)
        if run.accepted != 1:
            sys.exit(f"import failed: {run.error or run.report}")
    total = statistics.median(total_times)
    read = statistics.median(read_times)
    print(f"ProstateX T2: {n_slices} slices, {mbytes:.2f} MB of DICOM input, {args.repeat} imports")
    print(f"import median {total:.3f} s  (min {min(total_times):.3f}, max {max(total_times):.3f})")
    print(f"  -> {n_slices / total:.1f} slices/s, {mbytes / total:.2f} MB/s")
    print(f"  of which reading + checking the DICOM: {read:.3f} s ({n_slices / read:.1f} slices/s)")


if __name__ == "__main__":
    main()
