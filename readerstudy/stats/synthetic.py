"""SYNTHETIC reads for tests, benchmarks and demos of the analysis. Not study data, not evidence.

Each case gets a latent suspicion; its reference PI-RADS, biopsy result and ISUP grade follow from it,
and each reader scores it with their own noise (less for seniors, and less in the registered arm so the
arms differ). Everything is drawn from ``numpy.random.default_rng(seed)``, so a seed gives one table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SIDES = np.array(["left", "right", "bilateral", "none"], dtype=object)


def synthetic_reads(
    *,
    n_readers: int = 4,
    n_cases: int = 60,
    arms: Sequence[str] = ("original", "registered"),
    seed: int = 0,
    missing_fraction: float = 0.0,
) -> pd.DataFrame:
    """A long table with the columns ``study_analyse`` reads, labelled synthetic in ``synthetic``.

    ``missing_fraction`` of the reads (at random) have no PI-RADS, Likert or side: unscored reads.
    """
    if n_readers < 1 or n_cases < 1 or not arms:
        raise ValueError("need at least one reader, one case and one arm")
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=n_cases)
    reference_pirads = np.clip(np.rint(3 + 1.2 * latent), 1, 5)
    cspca = (latent + rng.normal(scale=0.7, size=n_cases)) > 0.4
    isup = np.where(cspca, np.clip(np.rint(2 + latent + rng.normal(scale=0.8, size=n_cases)), 2, 5),
                    rng.integers(0, 2, n_cases))  # fmt: skip
    biopsy_side = np.where(cspca, SIDES[rng.integers(0, 3, n_cases)], "none")
    levels = np.where(np.arange(n_readers) % 2 == 0, "junior", "senior")
    frames = []
    for a, arm in enumerate(arms):
        for r in range(n_readers):
            noise = (0.9 if levels[r] == "junior" else 0.6) * (0.8 if a > 0 else 1.0)
            score = 3 + 1.2 * latent + rng.normal(scale=noise, size=n_cases)
            pirads = np.clip(np.rint(score), 1, 5)
            # 7-point confidence scale, a little higher in the later arms
            likert = np.clip(np.rint(4 + 0.5 * a + rng.normal(scale=1.2, size=n_cases)), 1, 7)
            wrong = rng.random(n_cases) < (0.3 if a == 0 else 0.2)
            side = np.where(wrong, SIDES[rng.integers(0, 4, n_cases)], biopsy_side)
            frames.append(
                pd.DataFrame(
                    {
                        "reader": f"R{r + 1:02d}",
                        "reader_level": levels[r],
                        "case": [f"C{c + 1:04d}" for c in range(n_cases)],
                        "arm": arm,
                        "pirads": pirads,
                        "likert": likert,
                        "side": side,
                        "reference_pirads": reference_pirads,
                        "cspca": np.where(cspca, "yes", "no"),
                        "biopsy_side": biopsy_side,
                        "isup": isup.astype(float),
                        "synthetic": True,
                    }
                )
            )
    reads = pd.concat(frames, ignore_index=True)
    if missing_fraction > 0:
        gone = rng.random(len(reads)) < missing_fraction
        reads.loc[gone, ["pirads", "likert"]] = np.nan
        reads.loc[gone, "side"] = None
    return reads
