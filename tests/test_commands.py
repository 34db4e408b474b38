"""Batch commands."""

import os
import re
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from billing.models import Invoice
from counters.audit import AuditScope, run_audit
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
def test_bench_numbering_sends_every_draft_on_both_sides_and_removes_its_data(monkeypatch):
    from sequences.models import Sequence

    from billing.management.commands import bench_numbering as bench

    seen = {}
    cleanup = bench.Command.cleanup

    def look_then_clean(command):
        """What the runs left, before the command removes it."""
        seen["peer"] = list(bench.PeerDocument.objects.values_list("company_id", "state",
                                                                   "number", "total"))
        seen["lines"] = bench.PeerLine.objects.count()
        companies = [c.pk for c in command.companies]
        seen["folio"] = list(Invoice.objects.filter(company__in=companies)
                             .values_list("company_id", "state", "sequence_value"))
        seen["findings"] = [finding for pk in companies
                            for finding in run_audit(AuditScope(company_id=pk)).findings]
        seen["sequences"] = Sequence.objects.filter(name__startswith=command.series).count()
        cleanup(command)

    monkeypatch.setattr(bench.Command, "cleanup", look_then_clean)
    out = StringIO()
    call_command("bench_numbering", "--ops", "8", "--workers", "1,2", stdout=out)
    text = out.getvalue()

    # The peer: 8 drafts per worker count, each sent, numbered 1..8 in its own company.
    assert len(seen["peer"]) == 16 and seen["lines"] == 16
    for company_id in (1, 2):
        rows = sorted(row[1:] for row in seen["peer"] if row[0] == company_id)
        assert rows == [("sent", f"INV-{n:06d}", Decimal("120.00")) for n in range(1, 9)]
    # Folio: 8 drafts per worker count on one company, 8 over 16 companies; all issued,
    # each company's series 1..N, the audit clean.
    assert len(seen["folio"]) == 32 and {row[1] for row in seen["folio"]} == {"sent"}
    series = {}
    for company_id, _state, value in seen["folio"]:
        series.setdefault(company_id, []).append(value)
    assert len(series) == 2 * (1 + 8)  # 8 drafts reach 8 of the 16 companies
    assert all(sorted(values) == list(range(1, len(values) + 1))
               for values in series.values())
    assert seen["findings"] == [] and seen["sequences"] == 2

    assert "32 Folio drafts in 34 companies (audit clean), 16 peer drafts in 2 series" in text
    lines = text.splitlines()
    title = next(i for i, line in enumerate(lines) if line.startswith("Documents sent"))
    assert lines[title + 1].split() == ["1", "w", "2", "w"]
    rates = {}
    for label in ("peer send (django-sequences)", "folio send, 1 company",
                  "folio send, 16 companies"):
        row = next(line for line in lines if line.startswith(label + " "))
        cells = re.findall(r"([\d,]+) \((\d+)%\)", row)
        assert len(cells) == 2, label
        rates[label] = [int(rate.replace(",", "")) for rate, _busy in cells]
        assert all(rate > 0 for rate in rates[label])
        assert all(0 <= int(busy) <= 100 for _rate, busy in cells)
    ratios = next(line for line in lines
                  if line.startswith("folio send / peer send ")).split()[-2:]
    for ratio, send, peer in zip(ratios, rates["folio send, 1 company"],
                                 rates["peer send (django-sequences)"], strict=True):
        assert float(ratio) == pytest.approx(send / peer, rel=0.05, abs=0.01)

    # Nothing is left: companies, documents, sequences, the peer's tables.
    assert not IssuedNumber.objects.exists() and not Invoice.objects.exists()
    assert not Sequence.objects.exists()
    tables = connection.introspection.table_names()
    assert "bench_peer_document" not in tables and "bench_peer_line" not in tables


@pytest.mark.django_db(transaction=True)
def test_bench_pages_times_each_page_and_removes_its_data():
    out = StringIO()
    call_command("bench_pages", "--count", "60", "--requests", "3", stdout=out)
    text = out.getvalue()
    assert "filled 60 invoices" in text
    assert text.splitlines()[1].split() == ["page", "queries", "median", "ms", "p90", "ms"]
    for label in ("invoice list", "invoice list, sent", "invoice detail", "dashboard"):
        line = next(line for line in text.splitlines() if line.startswith(label + " "))
        queries, median, p90 = line.split()[-3:]
        # The session, the user and the memberships, then the page's own few reads.
        assert 4 <= int(queries) <= 11, line
        assert 0 < float(median) <= float(p90), line
    assert "benchmark data removed" in text and not Invoice.objects.exists()


def test_bench_audit_reports_the_peak_memory_of_the_audit_alone(tmp_path):
    """Not of the benchmark's own process, which a child shares until it execs (a child's
    ru_maxrss counts it)."""
    from types import SimpleNamespace

    from billing.management.commands.bench_audit import Command

    ballast = bytearray(200 * 1024 * 1024)
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # resident, not just reserved
    # The child audits an empty scratch database of its own: however it ends, it reports its
    # peak.
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'child.sqlite3'}"}
    _seconds, peak_kib, _status = Command(stderr=StringIO()).time_audit(
        SimpleNamespace(pk=10**12), env=env)
    assert 10 * 1024 < peak_kib < 200 * 1024
    del ballast


def test_bench_audit_fills_books_that_audit_clean():
    """The benchmark times the audit of a clean series: what it writes must be one."""
    from billing.management.commands.bench_audit import Command

    company = Command().fill(30)

    audit = run_audit(AuditScope(company_id=company.pk))
    assert list(audit.findings) == []
    [series] = audit.series
    assert (series.first_value, series.last_value, series.issued) == (1, 30, 30)
    assert Invoice.objects.filter(company=company, state="sent").count() == 30
