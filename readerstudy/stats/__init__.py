"""Statistics of the reader study (plain numpy/scipy/pandas/scikit-learn; never imports Django or torch).

Functions follow ``sklearn.metrics``: data first, options keyword-only, and frozen dataclass results that
name the method used (``method``) and say when a value is undefined (``defined`` False, NaN, ``reason``)
instead of crashing or returning a silent 0. Every result has ``to_dict()`` giving strict JSON types
(NaN and infinities become ``None``; an infinite df means "normal / chi-square reference").

Modules: ``roc`` (ROC points, AUC with fast DeLong variance, paired and unpaired DeLong tests),
``agreement`` (Cohen's kappa unweighted/linear/quadratic with CI, Fleiss' kappa), ``rank_tests``
(Wilcoxon signed-rank and Mann-Whitney with R's p-value rules and exact-given-ties p), ``diagnostic``
(sensitivity/specificity with Wilson CIs, Likert summary, lesion-side agreement, McNemar, Spearman),
``mrmc`` (Obuchowski-Rockette with Hillis df; jackknife or DeLong covariance) with the three analyses
RRRC, FRRC, RRFC in ``mrmc_analyses``, ``analysis`` (``study_analyse``, which runs the stages: the
input check ``analysis_input``, then ``analysis_stages``, whose entries are in ``analysis_entries``),
``synthetic`` (SYNTHETIC reads for tests, demos and ``bench/``).

The analysis page and exports call one function:

    from readerstudy.stats import study_analyse
    result = study_analyse(reads, reference="pirads")   # or reference="biopsy"
    payload = result.to_dict()                          # JSON-serialisable

Input ``reads``: a pandas DataFrame, one row per reader x case x arm (a missing read may be a missing
row or a row with NaN scores). Columns:

=================  ========  ======================================================================
column             needed    values
=================  ========  ======================================================================
reader             yes       reader pseudonym (str)
case               yes       case or reading code (str); case-level columns must agree across rows
arm                yes       e.g. original / registered / fused
pirads             yes       1-5 or NaN (not scored); the ROC score, higher = more suspicious
reader_level       no        junior / senior (Mann-Whitney junior vs senior needs both)
likert             no        1-7 or NaN (Wilcoxon between arms, Mann-Whitney, mean +/- SD)
side               no        left / right / bilateral / none / empty
reference_pirads   pirads    1-5 (reference="pirads": positive when >= 4; also reader-vs-reference kappa)
cspca              biopsy    yes/no, true/false, 1/0 or empty (reference="biopsy")
biopsy_side        no        left / right / bilateral / none / empty (lesion-side agreement)
isup               no        0-5 or empty (Spearman with PI-RADS)
=================  ========  ======================================================================

Keyword options: ``arms`` (order), ``baseline_arm`` (default ``original``; every other arm is compared
with it, differences are ``arm - baseline``), ``thresholds`` (default (3, 4)), ``positive_pirads`` (4),
``likert_scale`` (allowed Likert values, default 1..7),
``confidence`` (0.95). Malformed input raises ``ValueError`` with a message fit to show a user.

Output ``StudyAnalysis`` (fields, all in ``to_dict()``):

* study level: ``reference``, ``reference_description``, ``arms``, ``baseline_arm``, ``readers``,
  ``reader_levels``, ``n_reads``, ``n_cases``, ``n_positive``, ``n_negative``, ``n_reference_unknown``;
* ``reader_arms``: per reader and arm, ``auc`` (RocAuc: auc, se, ci clipped and unclipped; None with
  ``auc_note`` when undefined), ``roc`` (fpr, tpr, thresholds), ``accuracy`` (per threshold: tp/fn/tn/fp,
  sensitivity and specificity as Proportion with Wilson CI), ``likert`` (mean, sd, median, counts),
  ``side_agreement`` (Proportion);
* ``delong_paired``: per reader, arm vs baseline (DelongPairedTest: z, p, difference CI, n pairs, dropped);
* ``kappa``: KappaEntry(kind = reader_vs_reference | between_readers | within_reader,
  scale = dichotomised | linear | quadratic, arm_a, arm_b, rater_a, rater_b, result);
* ``fleiss``: per arm, dichotomised and categorical (more than two readers only);
* ``wilcoxon``: per reader, Likert arm vs baseline; ``mann_whitney``: per arm, junior vs senior Likert
  (RankTestResult: statistic V or W, p_value with p_method, p_exact_conditional, n, drops);
* ``side_agreement`` per arm and ``side_mcnemar`` arm vs baseline; ``spearman`` PI-RADS vs ISUP per arm;
* ``mrmc``: (jackknife, DeLong) MrmcResult, each with ``random_readers_random_cases``,
  ``fixed_readers_random_cases``, ``random_readers_fixed_cases``; ``mrmc_n_cases_dropped``;
* ``notes``: plain-language missing-data and undefined-value notes for the page.
"""

from readerstudy.stats.agreement import cohen_kappa, cohen_kappa_dichotomised, fleiss_kappa
from readerstudy.stats.analysis import StudyAnalysis, study_analyse
from readerstudy.stats.diagnostic import (
    likert_summary,
    mcnemar_test,
    proportion_wilson,
    sensitivity_specificity,
    side_agreement,
    spearman_correlation,
)
from readerstudy.stats.mrmc import mrmc_or
from readerstudy.stats.rank_tests import mann_whitney_u, wilcoxon_signed_rank
from readerstudy.stats.roc import (
    roc_auc_compare_paired,
    roc_auc_compare_unpaired,
    roc_auc_delong,
    roc_curve_points,
)

__all__ = [
    "StudyAnalysis",
    "cohen_kappa",
    "cohen_kappa_dichotomised",
    "fleiss_kappa",
    "likert_summary",
    "mann_whitney_u",
    "mcnemar_test",
    "mrmc_or",
    "proportion_wilson",
    "roc_auc_compare_paired",
    "roc_auc_compare_unpaired",
    "roc_auc_delong",
    "roc_curve_points",
    "sensitivity_specificity",
    "side_agreement",
    "spearman_correlation",
    "study_analyse",
    "wilcoxon_signed_rank",
]
