"""Batch commands."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.models import Invoice
from counters.models import IssuedNumber

from .factories import ClientFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = StringIO(), StringIO()
    try:
        call_command("send_drafts", *args, "--no-progress", stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


def test_send_drafts_issues_each_and_lists_the_failures():
    client = ClientFactory()
    other = ClientFactory(company=client.company)
    good = [InvoiceFactory(client=client) for _ in range(3)]
    bad = InvoiceFactory(client=client, lines=[])
    untouched = InvoiceFactory(client=other)
    status, text = run("--company", str(client.company_id), "--client", client.name)
    assert status == 1
    assert "3 of 4 invoice(s) issued" in text
    assert f"#{bad.pk}: Add at least one line before sending." in text
    numbers = sorted(Invoice.objects.filter(pk__in=[g.pk for g in good])
                     .values_list("number", flat=True))
    assert [n[-4:] for n in numbers] == ["0001", "0002", "0003"]
    assert Invoice.objects.get(pk=bad.pk).is_draft
    assert Invoice.objects.get(pk=untouched.pk).is_draft
    assert IssuedNumber.objects.count() == 3


def test_send_drafts_all_good_exits_0():
    client = ClientFactory()
    InvoiceFactory(client=client)
    status, text = run("--company", client.company.name)
    assert status == 0 and "1 of 1 invoice(s) issued" in text


def test_send_drafts_bad_arguments():
    client = ClientFactory()
    status, text = run("--company", "Nobody")
    assert status == 1 and "No company 'Nobody'." in text
    status, text = run("--company", str(client.company_id), "--client", "Nobody")
    assert status == 1 and "No client 'Nobody'." in text
