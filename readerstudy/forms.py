from __future__ import annotations

from django import forms

from accounts.models import User
from readerstudy.models import Arm, ReaderStudy
from registration.models import Cohort


class StudyCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    cohort = forms.ModelChoiceField(queryset=Cohort.objects.order_by("name"))
    arm_kinds = forms.MultipleChoiceField(
        choices=Arm.Kind.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=["original", "registered"],
        label="Arms",
        help_text=(
            "The order is rotated reader by reader (within each reader level): with two arms half"
            " of the readers start with each; with three, a third start with each arm, the others"
            " following in the same cyclic order."
        ),
    )
    readers = forms.ModelMultipleChoiceField(
        queryset=User.objects.filter(role=User.Role.READER, is_active=True).order_by("username"),
        widget=forms.CheckboxSelectMultiple,
    )
    washout_days = forms.IntegerField(min_value=0, max_value=365, initial=28)
    seed = forms.IntegerField(
        min_value=0, max_value=2**31 - 1, required=False, help_text="Empty: a random seed."
    )
    reference_standard = forms.ChoiceField(choices=ReaderStudy.ReferenceStandard.choices)
    mark_required_from = forms.TypedChoiceField(
        choices=[("", "Never"), *[(str(n), f"Score {n} or more") for n in range(1, 6)]],
        coerce=int,
        empty_value=None,
        required=False,
        initial="3",
        label="Lesion mark required",
        help_text="From which PI-RADS-like score the reader must click the index lesion.",
    )
    model_key = forms.CharField(
        max_length=100,
        required=False,
        label="Registration model",
        help_text="Which model's registered series to read (empty: the newest per case).",
    )

    def clean_arm_kinds(self) -> list[str]:
        chosen = self.cleaned_data["arm_kinds"]
        # Keep the canonical order original → registered → fused whatever the browser sends.
        return [kind for kind in Arm.Kind.values if kind in chosen]


class ReopenForm(forms.Form):
    reason = forms.CharField(max_length=500)
