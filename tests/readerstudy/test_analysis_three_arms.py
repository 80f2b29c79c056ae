"""A three-arm study: every figure and table names each comparison (SYNTHETIC reads)."""

from __future__ import annotations

import pytest

from readerstudy.analysis import services as analysis_services
from readerstudy.analysis.figures import FIGURES, figure_likert, figure_mrmc
from readerstudy.analysis.services import analysis_run
from readerstudy.analysis.tables import table_mrmc
from tests.readerstudy.analysis_study import analysis_study_build

pytestmark = pytest.mark.django_db

ARMS = ("original", "registered", "fused")


@pytest.fixture
def three_arm_results(coordinator):  # noqa: ANN001, ANN201
    study = analysis_study_build(
        name="Three arms", n_cases=16, arms=ARMS, coordinator=coordinator, seed=3
    )
    snapshot = analysis_services.snapshot_create(study=study, user=coordinator)
    return analysis_run(snapshot=snapshot)


def _texts(fig) -> str:  # noqa: ANN001
    return " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))


def test_mrmc_figure_and_sheet_name_every_comparison(three_arm_results):
    text = _texts(figure_mrmc(three_arm_results))
    assert "registered − original" in text and "fused − original" in text
    sheet = table_mrmc(three_arm_results)
    assert {"registered − original", "fused − original"} <= set(sheet["comparison"])


def test_likert_figure_shows_all_three_arms(three_arm_results):
    assert three_arm_results["likert_pairs"]["arms"] == list(ARMS)
    fig = figure_likert(three_arm_results)
    ticks = {t.get_text() for ax in fig.axes for t in ax.get_xticklabels()}
    assert set(ARMS) <= ticks


def test_no_figure_claims_two_arms():
    assert all("both arms" not in spec.title for spec in FIGURES.values())
