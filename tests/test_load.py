"""A short load run in CI: 32 clients sending and crediting under gunicorn on PostgreSQL."""

import re
from io import StringIO

import pytest
from django.core.management import call_command

from billing.models import Company

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def issued(report):
    """How many invoices the load test's report says it issued."""
    return int(re.search(r"([\d,]+) invoices and", report).group(1).replace(",", ""))


def test_32_clients_sending_and_crediting_lose_nothing():
    out = StringIO()
    # The command raises CommandError on any 5xx, unclear answer, double issue or finding.
    call_command("load_test", "--clients", "32", "--seconds", "6", "--drafts", "800",
                 "--workers", "3", stdout=out)
    report = out.getvalue()
    assert "Load held: nothing lost, nothing issued twice." in report
    assert "0 5xx, 0 unclear answers" in report and "audit clean" in report
    assert issued(report) > 0  # the sends went through, not only their refusals
    assert not Company.objects.exists()  # its scratch data is gone


def test_under_faults_every_answer_is_true_and_nothing_is_lost():
    """Connections terminated every second and a worker SIGKILLed: no 5xx but the 503 'try
    again' page, every reported outcome matches the database, the audit is clean."""
    out = StringIO()
    call_command("load_test", "--clients", "16", "--seconds", "6", "--drafts", "600",
                 "--workers", "3", "--faults", stdout=out)
    report = out.getvalue()
    assert "Load held: nothing lost, nothing issued twice." in report
    assert "0 5xx, 0 unclear answers" in report and "audit clean" in report
    assert issued(report) > 0
    faults = next(line for line in report.splitlines() if line.startswith("Under faults"))
    assert not faults.startswith("Under faults: 0 answered 503") or "0 got no answer" not in \
        faults, "the faults never reached a request"
    assert not Company.objects.exists()
