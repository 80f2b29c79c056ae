"""The worklist says "Continue" for a draft and keeps earlier sessions' reads listed (no links)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from readerstudy import read_services
from readerstudy.models import Assignment
from tests.readerstudy.builders import complete

pytestmark = pytest.mark.django_db


def test_continue_for_a_draft_and_earlier_sessions_listed_without_links(
    open_study, junior, client_for
):
    c = client_for(junior)
    first = Assignment.objects.filter(study=open_study, reader__user=junior, session=1)
    items = list(first.order_by("position"))
    assert ">Start · case" in c.get(reverse("readerstudy:worklist-home")).content.decode()
    read_services.read_draft_save(assignment=items[0], user=junior, data={"pirads": 2})
    assert ">Continue · case" in c.get(reverse("readerstudy:worklist-home")).content.decode()
    for a in items:
        read_services.read_submit(assignment=a, user=junior, data=complete(), active_seconds=1)
    page = c.get(reverse("readerstudy:worklist-home")).content.decode()
    assert f"Earlier sessions: {len(items)} case(s) read" in page
    earlier = page.split('id="earlier-done"')[1].split("</details>")[0]
    for a in items:
        assert a.reading_code in earlier
        assert a.token not in earlier  # listed, never linked
