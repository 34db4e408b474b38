"""
The gap audit, as a specification. Damage is done the way it happens in real life: raw SQL
that bypasses the application (and, where needed, its triggers and constraints).
"""

import json
import subprocess
import sys
from datetime import date
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from billing.models import CreditNote, Invoice
from billing.services import send_document
from counters.dbguards import guards_lifted
from counters.models import NumberingSettings
from counters.services import save_numbering_settings, set_next_number

from .conftest import ON_POSTGRES
from .factories import ClientFactory, CreditNoteFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


def run(*args):
    """(exit status, output, error message) of ``manage.py audit_gaps *args``."""
    out = StringIO()
    try:
        call_command("audit_gaps", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue(), str(error)
    return 0, out.getvalue(), ""


def audit(*args):
    status, out, error = run(*args)
    return status, out + error


def audit_json(*args):
    status, out, _error = run("--json", *args)
    return status, json.loads(out)


def findings(kind=None, *args):
    status, report = audit_json(*args)
    found = [f for f in report["findings"] if kind is None or f["kind"] == kind]
    return status, found, report


def sql(statement, params=()):
    """Run ``statement`` with Folio's triggers out of the way, as a DBA with psql would."""
    with guards_lifted(connection), connection.cursor() as cursor:
        cursor.execute(statement, params)


def delete_invoices(*invoices):
    ids = [invoice.pk for invoice in invoices]
    marks = ", ".join(["%s"] * len(ids))
    sql(f"DELETE FROM billing_invoiceline WHERE document_id IN ({marks})", ids)
    sql(f"DELETE FROM billing_invoice WHERE id IN ({marks})", ids)


def without_check_constraints(table, statement, params=()):
    """Run ``statement`` as if the check constraints of ``table`` had been dropped."""
    with guards_lifted(connection), connection.cursor() as cursor:
        if ON_POSTGRES:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending checks before ALTER
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_numbered_iff_issued")
        else:
            cursor.execute("PRAGMA ignore_check_constraints = ON")
        try:
            cursor.execute(statement, params)
        finally:
            if not ON_POSTGRES:
                cursor.execute("PRAGMA ignore_check_constraints = OFF")


@pytest.fixture
def books(issue_on):
    """A company with invoices INV-2026-0001..0004 and credit note CN-2026-0001."""
    issue_on(date(2026, 3, 2))
    client = ClientFactory()
    invoices = [send_document(InvoiceFactory(client=client)) for _ in range(4)]
    credit_note = send_document(CreditNoteFactory(client=client))
    InvoiceFactory(client=client)  # a draft: no number, nothing to find
    return invoices, credit_note


def test_clean_books_audit_clean(books):
    status, text = audit()
    assert status == 0
    assert "invoice 2026: 1..4, 4 issued" in text
    assert "credit_note 2026: 1..1, 1 issued" in text
    assert "All series complete: no findings." in text
    status, report = audit_json()
    assert (status, report["clean"], report["finding_count"], report["findings"]) == (
        0, True, 0, [])
    assert {(s["series"], s["first_value"], s["last_value"], s["issued"])
            for s in report["series"]} == {("invoice", 1, 4, 4), ("credit_note", 1, 1, 1)}


def test_switches_resets_and_deliberate_jumps_audit_clean(issue_on, django_user_model):
    operator = django_user_model.objects.create_user("accountant")
    issue_on(date(2026, 12, 30))
    client = ClientFactory()
    send_document(InvoiceFactory(client=client))
    send_document(CreditNoteFactory(client=client))
    numbering = NumberingSettings.for_company(client.company_id)
    numbering.shared_counter = True
    save_numbering_settings(numbering, user=operator)  # shared continues after 1: jump 1..1
    send_document(InvoiceFactory(client=client))
    numbering.shared_counter = False
    save_numbering_settings(numbering, user=operator)
    send_document(CreditNoteFactory(client=client))
    issue_on(date(2027, 1, 2))  # yearly reset
    send_document(InvoiceFactory(client=client))
    set_next_number(company_id=client.company_id, series="invoice", period="2027",
                    next_value=10, reason="Paper invoices 2..9 written on site", user=operator)
    send_document(InvoiceFactory(client=client))
    CreditNoteFactory(client=client)

    status, text = audit()
    assert status == 0, text
    assert "explained jump 2..9 by accountant" in text
    assert "Paper invoices 2..9 written on site" in text
    status, report = audit_json()
    jumps = [j for s in report["series"] for j in s["explained_jumps"]]
    assert {(j["series"], j["period"], j["first_value"], j["last_value"]) for j in jumps} >= {
        ("invoice", "2027", 2, 9), ("shared", "2026", 1, 1)}


def test_a_gap_in_the_middle(books):
    invoices, _ = books
    sql("DELETE FROM counters_issuednumber WHERE number = 'INV-2026-0002'")
    delete_invoices(invoices[1])
    status, gaps, report = findings("gap")
    assert status == 1 and not report["clean"]
    assert len(gaps) == 1
    gap = gaps[0]
    assert (gap["series"], gap["period"], gap["values"]) == ("invoice", "2026", [2])
    assert gap["numbers"] == ["INV-2026-0001", "INV-2026-0003"]
    assert gap["company_id"] == invoices[0].company_id
    _, text = audit()
    assert "GAP: " in text and "value 2 missing (between INV-2026-0001 and INV-2026-0003)" in text
    # The next entry was chained to the removed one: the hash chain shows it too.
    _, tampered, _ = findings("tampered")
    assert [t["numbers"] for t in tampered] == [["INV-2026-0003"]]


def test_a_missing_start_and_a_missing_end(books):
    invoices, _ = books
    sql("DELETE FROM counters_issuednumber WHERE number IN ('INV-2026-0001', 'INV-2026-0004')")
    delete_invoices(invoices[0], invoices[3])
    status, gaps, _ = findings("gap")
    assert status == 1
    assert [(g["values"], g["message"]) for g in gaps] == [
        ([1], "value 1 missing (before INV-2026-0002)"),
        ([4], "value 4 missing (after the last entry)"),
    ]


def test_a_number_carried_by_two_documents(books):
    invoices, credit_note = books
    sql("UPDATE billing_creditnote SET number = %s WHERE id = %s",
        [invoices[0].number, credit_note.pk])
    status, duplicates, _ = findings("duplicate")
    assert status == 1
    assert [(d["numbers"], d["message"]) for d in duplicates] == [
        (["INV-2026-0001"], "2 documents carry the number INV-2026-0001")]
    _, mismatches, _ = findings("ledger_mismatch")
    assert "carries INV-2026-0001 but the ledger issued it CN-2026-0001" in \
        mismatches[0]["message"]


@pytest.mark.postgres
def test_a_value_recorded_twice_in_the_ledger(books):
    # Only possible once someone dropped the unique constraints, e.g. a botched restore.
    sql("SET CONSTRAINTS ALL IMMEDIATE")
    sql("ALTER TABLE counters_issuednumber DROP CONSTRAINT counters_series_value_unique")
    sql("ALTER TABLE counters_issuednumber DROP CONSTRAINT counters_number_unique")
    sql("ALTER TABLE counters_issuednumber DROP CONSTRAINT counters_document_once")
    sql("INSERT INTO counters_issuednumber (company_id, series, period, value, number, kind, "
        "document_id, issue_date, total, currency, snapshot_digest, previous_hash, entry_hash, "
        "issued_at) "
        "SELECT company_id, series, period, value, number, kind, document_id, issue_date, "
        "total, currency, snapshot_digest, previous_hash, entry_hash, issued_at "
        "FROM counters_issuednumber WHERE number = 'INV-2026-0003'")
    status, duplicates, _ = findings("duplicate")
    assert status == 1
    messages = sorted(d["message"] for d in duplicates)
    assert messages == ["number INV-2026-0003 recorded 2 times in the ledger",
                        "value 3 issued twice (INV-2026-0003 and INV-2026-0003)"]


def test_a_numbered_draft(books):
    draft = Invoice.objects.get(state="draft")
    without_check_constraints("billing_invoice",
                              "UPDATE billing_invoice SET number = 'INV-2026-0099' WHERE id = %s",
                              [draft.pk])
    status, found, _ = findings("numbered_draft")
    assert status == 1
    assert found[0]["documents"] == [f"invoice #{draft.pk}"]
    assert found[0]["numbers"] == ["INV-2026-0099"]


def test_an_issued_document_without_a_number(books):
    _, credit_note = books
    without_check_constraints("billing_creditnote",
                              "UPDATE billing_creditnote SET number = '' WHERE id = %s",
                              [credit_note.pk])
    status, found, _ = findings("unnumbered_issued")
    assert status == 1
    assert found[0]["message"] == f"issued credit_note #{credit_note.pk} has no number"


def test_ledger_entry_without_its_document_and_document_without_its_entry(books):
    invoices, credit_note = books
    delete_invoices(invoices[2])
    sql("DELETE FROM counters_issuednumber WHERE kind = 'credit_note'")
    status, found, _ = findings("ledger_mismatch")
    assert status == 1
    assert sorted(f["message"] for f in found) == sorted([
        f"INV-2026-0003 is in the ledger but its invoice #{invoices[2].pk} is gone",
        f"issued credit_note #{credit_note.pk} (CN-2026-0001) has no ledger entry",
    ])


def test_a_ledger_entry_of_a_kind_no_document_has(books):
    """The documents are joined with the ledger one kind at a time: an entry whose kind was
    changed to one that no document model has is still found, its document gone."""
    invoices, _ = books
    sql("UPDATE counters_issuednumber SET kind = 'receipt' WHERE number = 'INV-2026-0002'")
    status, found, _ = findings("ledger_mismatch")
    assert status == 1
    assert sorted(f["message"] for f in found) == sorted([
        f"INV-2026-0002 is in the ledger but its receipt #{invoices[1].pk} is gone",
        f"issued invoice #{invoices[1].pk} (INV-2026-0002) has no ledger entry",
    ])


def test_a_chronology_break(issue_on):
    client = ClientFactory()
    issue_on(date(2026, 5, 20))
    send_document(InvoiceFactory(client=client))
    issue_on(date(2026, 5, 19))  # a server clock set back a day
    send_document(InvoiceFactory(client=client))
    status, found, _ = findings("chronology_break")
    assert status == 1
    assert found[0]["message"] == (
        "INV-2026-0002 is dated 2026-05-19 but the lower INV-2026-0001 is dated 2026-05-20")
    assert found[0]["date"] == "2026-05-19"


def test_a_document_edited_after_issue(books):
    invoices, _ = books
    sql("UPDATE billing_invoice SET total = 1, subtotal = 1, tax_total = 0 WHERE id = %s",
        [invoices[0].pk])
    status, found, _ = findings("tampered")
    assert status == 1
    assert [f["message"] for f in found] == [
        "INV-2026-0001 was changed after it was issued: total 240.00 -> 1.00"]


def test_a_ledger_entry_edited_after_issue(books):
    sql("UPDATE counters_issuednumber SET issue_date = '2026-01-01' "
        "WHERE number = 'CN-2026-0001'")
    status, found, _ = findings("tampered")
    assert status == 1
    messages = [f["message"] for f in found]
    assert ("ledger entry CN-2026-0001 was altered after it was issued "
            "(its hash no longer matches its content)") in messages


def test_scope_options_restrict_the_audit(books, issue_on):
    invoices, _ = books
    other = send_document(InvoiceFactory())
    sql("DELETE FROM counters_issuednumber WHERE number = 'INV-2026-0002'")
    company = str(invoices[0].company_id)
    assert audit("--company", str(other.company_id))[0] == 0
    assert audit("--company", company)[0] == 1
    assert audit("--company", invoices[0].company.name)[0] == 1
    assert audit("--company", company, "--series", "credit_note")[0] == 0
    assert audit("--period", "2025")[0] == 0
    assert audit("--period", "2026")[0] == 1
    assert audit("--from", "2026-04-01")[0] == 0
    assert audit("--from", "2026-03-01", "--to", "2026-03-31")[0] == 1


@pytest.mark.parametrize("args, message", [
    (["--period", "2026-13"], "--period takes YYYY, YYYY-MM, YYYY/MM"),
    (["--from", "yesterday"], "--from takes a date as YYYY-MM-DD"),
    (["--from", "2026-05-01", "--to", "2026-04-01"], "--from is after --to"),
    (["--company", "Nobody Ltd"], "No company 'Nobody Ltd'"),
])
def test_bad_arguments_exit_with_status_2(books, args, message):
    status, text = audit(*args)
    assert status == 2 and message in text


def test_bad_choice_exits_with_status_2():
    command = [sys.executable, "manage.py", "audit_gaps", "--series", "everything"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 2 and "invalid choice: 'everything'" in result.stderr


def test_credit_notes_are_audited_like_invoices(books):
    _, credit_note = books
    assert CreditNote.objects.get(pk=credit_note.pk).number == "CN-2026-0001"
    sql("DELETE FROM counters_issuednumber WHERE kind = 'credit_note'")
    sql("UPDATE counters_sequence SET last = 0 WHERE series = 'credit_note'")
    status, found, _ = findings("ledger_mismatch", "--series", "credit_note")
    assert status == 1 and found[0]["documents"] == [f"credit_note #{credit_note.pk}"]


def test_findings_are_written_in_the_readers_language(books):
    """The audit page shows findings in the language of whoever reads it."""
    from django.utils import translation

    from counters.audit import AuditScope, run_audit

    invoices, _ = books
    sql("DELETE FROM counters_issuednumber WHERE number = 'INV-2026-0002'")
    delete_invoices(invoices[1])
    with translation.override("fr"):
        messages = sorted(f.message for f in run_audit(AuditScope()).findings)
    assert "valeur 2 manquante (entre INV-2026-0001 et INV-2026-0003)" in messages
    assert any(m.startswith("la chaîne d'empreintes est rompue avant INV-2026-0003") for m in
               messages)


# --- Large books: the document passes on a second connection ------------------------------


@pytest.fixture
def damaged_books(issue_on):
    """Committed books (a transactional test) with damage for every kind of pass."""
    issue_on(date(2026, 3, 2))
    client = ClientFactory()
    invoices = [send_document(InvoiceFactory(client=client)) for _ in range(4)]
    sql("DELETE FROM counters_issuednumber WHERE number = 'INV-2026-0002'")  # gap, chain
    sql("UPDATE billing_invoice SET total = 1 WHERE id = %s", [invoices[2].pk])  # tampered
    sql("UPDATE billing_invoice SET state = 'paid' WHERE id = %s", [invoices[3].pk])  # state
    return invoices


def audited(**scope):
    from counters.audit import AuditScope, run_audit

    return [finding.as_dict() for finding in run_audit(AuditScope(**scope)).findings]


@pytest.fixture
def lanes(monkeypatch):
    """Every audit uses a second connection; the lanes started are listed."""
    from counters import audit as audit_module

    started = []
    lane_class = audit_module._Lane

    class Lane(lane_class):
        def start(self):
            started.append(self)
            super().start()

    monkeypatch.setattr(audit_module, "SECOND_CONNECTION_FROM", 0)
    monkeypatch.setattr(audit_module, "_Lane", Lane)
    return started


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_large_books_find_the_same_on_two_connections(damaged_books, lanes, monkeypatch):
    from counters import audit as audit_module

    on_two = audited()
    assert len(lanes) == 1 and not lanes[0].is_alive()
    monkeypatch.setattr(audit_module, "SECOND_CONNECTION_FROM", 10**12)
    on_one = audited()
    assert len(lanes) == 1
    key = lambda finding: sorted(finding.items())  # noqa: E731
    assert sorted(on_two, key=key) == sorted(on_one, key=key)
    assert {"gap", "tampered", "state_mismatch"} <= {f["kind"] for f in on_two}
    assert any(f["message"].startswith("INV-2026-0003 was changed after it was issued")
               for f in on_two)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_second_connection_reads_the_books_as_the_audit_began(
        issue_on, lanes, monkeypatch):
    """A change committed while the audit runs is not half seen: the second connection
    reads the snapshot the first one exported, even when it starts reading after the
    change."""
    import threading

    from django.db import connection as this_thread_connection

    from counters import audit as audit_module

    issue_on(date(2026, 3, 2))
    invoice = send_document(InvoiceFactory())
    waiting, damaged = threading.Event(), threading.Event()
    document_findings = audit_module._document_findings

    def after_the_damage(scope):
        waiting.set()
        assert damaged.wait(timeout=60)
        yield from document_findings(scope)

    def damage():
        assert waiting.wait(timeout=60)
        sql("UPDATE billing_invoice SET total = 1 WHERE id = %s", [invoice.pk])
        this_thread_connection.close()
        damaged.set()

    monkeypatch.setattr(audit_module, "_document_findings", after_the_damage)
    vandal = threading.Thread(target=damage)
    vandal.start()
    assert audited() == []
    vandal.join()
    assert lanes and [f["kind"] for f in audited()] == ["tampered"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_second_connection_hands_on_its_error_and_stops_with_the_reader(
        damaged_books, lanes, monkeypatch):
    from counters import audit as audit_module

    def broken(scope):
        raise RuntimeError("the disk is on fire")
        yield

    monkeypatch.setattr(audit_module, "_state_findings", broken)
    with pytest.raises(RuntimeError, match="the disk is on fire"):
        audited()
    assert not lanes[-1].is_alive()

    monkeypatch.setattr(audit_module._Lane, "QUEUE_SIZE", 1)
    monkeypatch.setattr(audit_module, "_state_findings", lambda scope: iter(
        audit_module.Finding("state_mismatch", 1, f"finding {n}") for n in range(100)))
    findings = run_audit_findings()
    first = next(findings)
    assert first.kind == "gap"
    findings.close()  # a reader that stops early: the lane must not wait for ever
    assert not lanes[-1].is_alive()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_reader_that_stops_early_cancels_the_second_connections_query(
        damaged_books, lanes, monkeypatch):
    """An error or Ctrl-C in the reader does not wait for a long pass to end."""
    import threading

    import psycopg

    from counters import audit as audit_module

    started, outcome = threading.Event(), []

    def a_long_pass(scope):
        with connection.cursor() as cursor:  # the second connection's, in its thread
            started.set()
            try:
                cursor.execute("SELECT pg_sleep(600)")
            except Exception as error:
                outcome.append(error.__cause__)
                raise
            outcome.append("slept")
        yield from ()

    monkeypatch.setattr(audit_module, "_document_findings", a_long_pass)
    findings = run_audit_findings()
    assert next(findings).kind == "gap"
    assert started.wait(timeout=60)
    findings.close()
    assert not lanes[-1].is_alive()
    assert isinstance(outcome[0], psycopg.errors.QueryCanceled)


def run_audit_findings():
    from counters.audit import AuditScope, run_audit

    return run_audit(AuditScope()).findings


def audited_while(work, after):
    """The audit's findings, ``work`` done and committed by someone else (another thread, its
    own connection) as soon as the audit has run its first statement containing ``after``."""
    import threading

    done = []

    def elsewhere():
        try:
            work()
        finally:
            connection.close()  # this thread's own connection

    def then_work(execute, statement, params, many, context):
        result = execute(statement, params, many, context)
        if not done and after in statement:
            done.append(statement)
            other = threading.Thread(target=elsewhere)
            other.start()
            other.join()
        return result

    with connection.execute_wrapper(then_work):
        found = audited()
    assert done, f"the audit ran no statement containing {after!r}"
    return found


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_number_issued_while_the_audit_reads_the_summaries_is_no_gap(issue_on):
    """The series' summaries read the ledger and the sequences in one snapshot: a number
    issued by someone else meanwhile is either in both or in neither."""
    issue_on(date(2026, 3, 2))
    client = ClientFactory()
    send_document(InvoiceFactory(client=client))
    draft = InvoiceFactory(client=client)
    issued = []

    def send():
        issued.append(send_document(Invoice.objects.get(pk=draft.pk)).number)

    found = audited_while(send, after="GROUP BY l.company_id, l.series, l.period")
    assert issued == ["INV-2026-0002"]
    assert found == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_jump_made_while_the_audit_runs_is_no_gap(issue_on):
    """The summaries (with their explained jumps) and the findings read one snapshot: a jump
    and a number issued after it while the audit runs are either both seen or neither."""
    issue_on(date(2026, 3, 2))
    client = ClientFactory()
    first = send_document(InvoiceFactory(client=client))
    draft = InvoiceFactory(client=client)
    issued = []

    def jump_and_send():
        set_next_number(company_id=first.company_id, series="invoice", period="2026",
                        next_value=10, reason="Migrated from the old system")
        issued.append(send_document(Invoice.objects.get(pk=draft.pk)).number)

    found = audited_while(jump_and_send, after="counters_numberjump")
    assert issued == ["INV-2026-0010"]
    assert found == []
    assert audited() == []  # and afterwards, the jump explains the values skipped
