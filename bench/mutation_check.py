"""A small, bounded mutation check of the security and metric code: does a test catch each bug?

Each mutant is one deliberate bug (a check removed, a unit dropped, a guard inverted) in a copy of
the working tree; the tests that guard that code run against it, and the mutant is *killed* when
they fail. The score is killed / total. The unmutated copy must pass the same tests first, so a
kill is never a broken test.

    .venv/bin/python bench/mutation_check.py            # all mutants (~5-10 min on 2 cores)
    .venv/bin/python bench/mutation_check.py --only wado  # mutants whose name contains "wado"
    .venv/bin/python bench/mutation_check.py --dry-run    # each mutant's code is there once; no tests

Hand-written mutants rather than a generated set (mutmut): a few that matter, in a bounded time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 300


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


WADO = ("tests/readerstudy/test_wado_guards.py",)
SWEEP = ("tests/registration/test_identifier_sweep.py",)
LIMITS = ("tests/registration/test_limits.py",)
SLICE_LOOKUP_END = '        return found\n    raise LookupError("no such instance in this view")\n'
MUTANTS = [
    # Readers are served slices of the display grid under view-keyed UIDs (readerstudy/serving.py);
    # the bug is a stored SOP Instance UID accepted as well, of the view's series or of any.
    Mutant(
        "wado: stored object UID accepted under the reader's series",
        "readerstudy/serving.py",
        SLICE_LOOKUP_END,
        SLICE_LOOKUP_END.replace(
            "    raise",
            "    if view.series.instances.filter(sop_instance_uid=object_uid).exists():\n"
            '        return "axial", 0\n'
            "    raise",
        ),
        WADO,
    ),
    Mutant(
        "wado: any stored SOP UID looked up across series",
        "readerstudy/serving.py",
        SLICE_LOOKUP_END,
        SLICE_LOOKUP_END.replace(
            "    raise",
            "    stored = view.series.instances.model.objects\n"
            "    if stored.filter(sop_instance_uid=object_uid).exists():\n"
            '        return "axial", 0\n'
            "    raise",
        ),
        WADO,
    ),
    Mutant(
        "wado: study UID check removed",
        "readerstudy/views.py",
        'if params.get("studyUID") != view.study_uid:',
        "if False:",
        WADO,
    ),
    Mutant(
        "wado: open/washout/lock check removed",
        "readerstudy/selectors.py",
        "series_uid=series_uid, assignment__reader__user=user)\n    if not assignment_is_available(assignment=view.assignment):",
        "series_uid=series_uid, assignment__reader__user=user)\n    if False:",
        WADO,
    ),
    Mutant(
        "metrics: HD95 in voxels",
        "inference/case_metrics.py",
        "spacing = M.spacing_from_affine(a_us)",
        "spacing = (1.0, 1.0, 1.0)",
        ("tests/inference/test_case_metrics_mm.py",),
    ),
    Mutant(
        "metrics: TRE in voxels",
        "inference/case_metrics.py",
        "np.linalg.norm(lin @ (mapped[i] - fixed[k]))",
        "np.linalg.norm(mapped[i] - fixed[k])",
        ("tests/inference/test_case_metrics_mm.py",),
    ),
    Mutant(
        "deid: free text kept",
        "registration/dicom/deid.py",
        "            _text_clean(ds, elem, keep_descriptors=keep_descriptors)\n",
        "            pass\n",
        SWEEP,
    ),
    Mutant(
        "deid: private tags kept",
        "registration/dicom/deid.py",
        "    ds.remove_private_tags()\n",
        "    pass\n",
        SWEEP,
    ),
    Mutant(
        "deid: descriptors not vocabulary-cleaned",
        "registration/dicom/deid_vocab.py",
        "if part and _word_ok(part, vocabulary):",
        "if part:",
        SWEEP,
    ),
    Mutant(
        "import notes: raw series description",
        "registration/importing/dicom_only.py",
        'desc = descriptor_clean(header.get("SeriesDescription", "")) or "(no description)"',
        'desc = str(header.get("SeriesDescription", "")) or "(no description)"',
        SWEEP,
    ),
    Mutant(
        "exports: formula cells not escaped",
        "readerstudy/analysis/exports.py",
        "if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):",
        "if False:",
        ("tests/readerstudy/test_export_injection.py",),
    ),
    Mutant(
        "exports: XLSX text may be a formula",
        "readerstudy/analysis/exports.py",
        '    cell.data_type = "s"\n',
        "    pass\n",
        ("tests/readerstudy/test_export_injection.py",),
    ),
    Mutant(
        "tokens: expiry not checked",
        "accounts/authentication.py",
        "if token_expired(token):",
        "if False:",
        ("tests/accounts/test_auth_abuse.py",),
    ),
    Mutant(
        "tokens: lockout ignored on the token endpoint",
        "accounts/views.py",
        'if getattr(request, "axes_locked_out", False):',
        "if False:",
        ("tests/accounts/test_auth_abuse.py",),
    ),
    Mutant(
        "settings: DEBUG on by default",
        "mritrus_site/settings.py",
        'DEBUG = env_bool("DJANGO_DEBUG", False)',
        'DEBUG = env_bool("DJANGO_DEBUG", True)',
        ("tests/test_foundation.py",),
    ),
    Mutant(
        "settings: starts without a secret",
        "mritrus_site/settings.py",
        "if not _secret and not DEBUG:",
        "if False:",
        ("tests/test_foundation.py",),
    ),
    Mutant(
        "checks: salt not checked",
        "registration/checks.py",
        'if not getattr(settings, "MRITRUS_DEID_SALT_FROM_ENV", False):',
        "if False:",
        ("tests/test_foundation.py",),
    ),
    Mutant(
        "storage_cleanup: job outputs taken for orphans",
        "registration/storage.py",
        "if str(run.relative_to(media)) not in known_outputs",
        "if True",
        ("tests/jobs/test_storage_cleanup.py",),
    ),
    Mutant(
        "storage_cleanup: running job's folders taken for orphans",
        "registration/storage.py",
        "            if not p.name.startswith(live_prefixes) and _old(p, cutoff)",
        "            if _old(p, cutoff)",
        ("tests/jobs/test_storage_cleanup.py",),
    ),
    Mutant(
        "limits: NIfTI voxel count not checked",
        "registration/importing/images.py",
        "voxels_check(shape=shape, max_voxels=max_voxels(), what=name)",
        "voxels_check(shape=shape, max_voxels=None, what=name)",
        LIMITS,
    ),
    Mutant(
        "limits: manifest rows not capped",
        "registration/importing/manifest.py",
        "if len(rows) >= max_rows:",
        "if False:",
        LIMITS,
    ),
    Mutant(
        "disk full: ENOSPC not handled in the import",
        "registration/importing/run.py",
        "        if not storage_full(exc):\n            run.error = ",
        "        if True:\n            run.error = ",
        LIMITS,
    ),
]


def mutant_problem(mutant: Mutant) -> str:
    """Why ``mutant`` cannot be applied to the working tree ("" when its code is there once)."""
    target = ROOT / mutant.path
    if not target.is_file():
        return "file missing"
    count = target.read_text().count(mutant.old)
    if count != 1:
        return f"code found {count} times"
    missing = [t for t in mutant.tests if not (ROOT / t).is_file()]
    return f"test file missing: {missing[0]}" if missing else ""


def tree_copy(dest: Path) -> None:
    """The working tree as git sees it (tracked and untracked, not ignored files)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        rel = raw.decode()
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def tests_run(copy: Path, tests: tuple[str, ...]) -> tuple[bool, float]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "MRITRUS_"))},
        "DJANGO_SECRET_KEY": "mutation-check-" + "k" * 40,
        "MRITRUS_VAR_DIR": str(copy / "var"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly"]
    command += ["-p", "no:cacheprovider", *tests]
    start = time.monotonic()
    try:
        out = subprocess.run(
            command, cwd=copy, env=env, capture_output=True, timeout=TIMEOUT_S, check=False
        )
        passed = out.returncode == 0
    except subprocess.TimeoutExpired:
        passed = False  # a hang is caught too
    return passed, time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run mutants whose name contains this")
    parser.add_argument(
        "--check",
        "--dry-run",
        dest="check",
        action="store_true",
        help="only check that each mutant's code is there exactly once (runs no tests)",
    )
    args = parser.parse_args()
    mutants = [m for m in MUTANTS if args.only in m.name]
    stale = [m.name for m in mutants if mutant_problem(m)]
    if stale or args.check:
        for m in mutants:
            print(f"  {mutant_problem(m) or 'applies':28s} {m.path}: {m.name}")
        print(f"{len(mutants) - len(stale)}/{len(mutants)} mutants apply; stale: {stale}")
        return 2 if stale else 0
    with tempfile.TemporaryDirectory(prefix="mritrus-mutants-") as tmp:
        copy = Path(tmp) / "tree"
        tree_copy(copy)
        (copy / "var").mkdir(exist_ok=True)
        suites = tuple(sorted({t for m in mutants for t in m.tests}))
        ok, seconds = tests_run(copy, suites)
        print(f"baseline: {len(suites)} test file(s) {'pass' if ok else 'FAIL'} ({seconds:.0f} s)")
        if not ok:
            return 2
        killed = 0
        for mutant in mutants:
            target = copy / mutant.path
            original = target.read_text()
            if original.count(mutant.old) != 1:
                print(f"  ?? {mutant.name}: the code to mutate is not there once; fix the mutant")
                return 2
            target.write_text(original.replace(mutant.old, mutant.new))
            try:
                survived, seconds = tests_run(copy, mutant.tests)
            finally:
                target.write_text(original)
            killed += not survived
            verdict = "SURVIVED" if survived else "killed"
            print(f"  {verdict:8s} {mutant.name} ({seconds:.0f} s)")
        print(
            f"mutation score: {killed}/{len(mutants)} killed ({100 * killed / len(mutants):.0f}%)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
