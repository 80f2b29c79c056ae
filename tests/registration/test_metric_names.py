"""Registration metrics in plain words with units."""

from __future__ import annotations

from registration.metric_names import metric_label, metric_rows


def test_metric_labels_have_words_and_units():
    assert metric_label("tre_after_3", 2.1234) == (
        "Target registration error after registration, landmark 3",
        "2.1 mm",
    )
    assert metric_label("tre_initial_mean", 4.0) == (
        "Target registration error after frame alignment, mean over landmarks",
        "4.0 mm",
    )
    assert metric_label("dsc_after", 0.91234) == ("Gland Dice after registration", "0.912")
    assert (
        metric_label("hd95_initial", 5.55)[1] == "5.5 mm"
        or metric_label("hd95_initial", 5.55)[1] == "5.6 mm"
    )
    assert metric_label("folding_fraction", 0.0012) == (
        "Folding (voxels with a negative Jacobian)",
        "0.12 %",
    )
    assert metric_label("something_else", 1.5) == ("something_else", "1.5")


def test_metric_rows_put_overlap_first_and_landmarks_in_order():
    rows = metric_rows(
        {"tre_after_10": 1.0, "tre_after_2": 2.0, "dsc_after": 0.9, "dsc_initial": 0.8}
    )
    words = [w for w, _ in rows]
    assert words[:2] == ["Gland Dice after frame alignment", "Gland Dice after registration"]
    assert words.index("Target registration error after registration, landmark 2") < words.index(
        "Target registration error after registration, landmark 10"
    )
