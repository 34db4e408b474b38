"""Batch commands."""

import os
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

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


@pytest.fixture
def sequences_app(settings):
    """django-sequences installed, with its table, as billing.settings_bench has it."""
    pytest.importorskip("sequences", reason="django-sequences is the 'bench' extra")
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "sequences"]
    from sequences.models import Sequence

    with connection.schema_editor() as editor:
        editor.create_model(Sequence)
    yield
    with connection.schema_editor() as editor:
        editor.delete_model(Sequence)


def test_bench_numbering_refuses_without_django_sequences_and_names_the_settings():
    with pytest.raises(CommandError, match=r"--settings=billing\.settings_bench"):
        call_command("bench_numbering", stdout=StringIO())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sequences_app")
def test_bench_numbering_prints_every_measure_and_checks_the_series():
    out = StringIO()
    call_command("bench_numbering", "--ops", "8", "--workers", "1,2", stdout=out)
    text = out.getvalue()
    assert "no gap, no duplicate" in text
    for label in ("ceiling (raw UPDATE)", "peer (django-sequences)", "folio send, 1 company",
                  "folio send, 16 companies", "send / peer", "16 companies / 1 company",
                  "send_drafts batch"):
        assert label in text
    cpu = text.split("CPU per operation with 1 worker")[1].splitlines()
    send = next(line for line in cpu if line.startswith("folio send"))[28:].split()
    worker, server, both = map(float, send[:3])
    # The server's CPU clock ticks in 10 ms steps: a few sends may not register.
    assert worker > 0 and server >= 0 and both == pytest.approx(worker + server, abs=0.002)
    # The most sends per second the machine's CPUs allow at that cost.
    assert int(send[3].replace(",", "")) == pytest.approx(os.cpu_count() / both * 1000,
                                                          rel=0.01, abs=1)
    busy = text.split("Machine CPU busy during each run, %")[1].splitlines()
    for line in busy[2:7]:  # a row per run, a figure per worker count, each a percentage
        figures = [int(figure) for figure in line.rsplit(None, 2)[1:]]
        assert len(figures) == 2 and all(0 <= figure <= 100 for figure in figures), line
    assert not IssuedNumber.objects.exists()  # its companies are purged afterwards


@pytest.mark.django_db(transaction=True)
def test_bench_pages_times_each_page_and_removes_its_data():
    out = StringIO()
    call_command("bench_pages", "--count", "60", "--requests", "3", stdout=out)
    text = out.getvalue()
    assert "filled 60 invoices" in text
    for label in ("invoice list", "invoice list, sent", "invoice detail", "dashboard"):
        line = next(line for line in text.splitlines() if line.startswith(label + " "))
        median, p90 = map(float, line.split()[-2:])
        assert 0 < median <= p90, line
    assert "benchmark data removed" in text and not Invoice.objects.exists()
