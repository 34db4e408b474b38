"""A short load run in CI: 32 clients sending and crediting under gunicorn on PostgreSQL."""

from io import StringIO

import pytest
from django.core.management import call_command

from billing.models import Company

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_32_clients_sending_and_crediting_lose_nothing():
    out = StringIO()
    # The command raises CommandError on any 5xx, unclear answer, double issue or finding.
    call_command("load_test", "--clients", "32", "--seconds", "6", "--drafts", "800",
                 "--workers", "3", stdout=out)
    report = out.getvalue()
    assert "Load held: nothing lost, nothing issued twice." in report
    assert "0 5xx, 0 unclear answers" in report and "audit clean" in report
    assert not Company.objects.exists()  # its scratch data is gone
