"""
Numbering, as a specification: a number is assigned only when a document is issued, in the
transaction that issues it, from the series the company chose, never skipped, never twice.
"""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from billing.models import CreditNote, Invoice
from billing.services import NotADraft, send_document
from counters.models import IssuedNumber, NumberJump, Sequence
from counters.services import (
    TransactionRequired,
    allocate_number,
    preview_number,
    set_next_number,
)

from .factories import ClientFactory, CreditNoteFactory, InvoiceFactory, configure_numbering

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_(issue_on):
    issue_on(date(2026, 3, 14))
    return ClientFactory()


def test_abandoned_credit_draft_burns_no_shared_number(client_):
    """The motivating bug: a deleted credit-note draft must not leave a hole."""
    configure_numbering(client_.company, shared_counter=True)
    abandoned = CreditNoteFactory(client=client_)
    assert abandoned.number == ""
    abandoned.delete()

    invoice = send_document(InvoiceFactory(client=client_))
    credit_note = send_document(CreditNoteFactory(client=client_))

    assert (invoice.sequence_value, invoice.number) == (1, "INV-2026-0001")
    assert (credit_note.sequence_value, credit_note.number) == (2, "CN-2026-0002")


def test_drafts_have_no_number_until_sent(client_):
    invoice = InvoiceFactory(client=client_)
    assert (invoice.number, invoice.sequence_value, invoice.issue_date) == ("", None, None)
    assert not IssuedNumber.objects.exists()

    sent = send_document(invoice)

    assert sent.state == "sent" and sent.number == "INV-2026-0001"
    assert sent.issue_date == date(2026, 3, 14)
    invoice.refresh_from_db()
    assert invoice.number == "INV-2026-0001"
    entry = IssuedNumber.objects.get()
    assert (entry.kind, entry.document_id, entry.number, entry.series, entry.period) == (
        "invoice", invoice.pk, "INV-2026-0001", "invoice", "2026"
    )


def test_separate_counters_number_each_kind_from_one(client_):
    company = client_.company
    numbers = [
        send_document(factory(client=client_)).number
        for factory in (InvoiceFactory, CreditNoteFactory, InvoiceFactory, CreditNoteFactory)
    ]
    assert numbers == ["INV-2026-0001", "CN-2026-0001", "INV-2026-0002", "CN-2026-0002"]
    assert set(Sequence.objects.filter(company=company).values_list("series", "last")) == {
        ("invoice", 2), ("credit_note", 2)
    }


def test_pattern_tokens_and_padding(client_):
    configure_numbering(client_.company, invoice_pattern="F{YY}{MM}/{counter}",
                        credit_note_pattern="A{YY}{MM}/{counter}", padding=6,
                        reset_period="monthly")
    assert send_document(InvoiceFactory(client=client_)).number == "F2603/000001"


def test_no_padding(client_):
    configure_numbering(client_.company, padding=0)
    assert send_document(InvoiceFactory(client=client_)).number == "INV-2026-1"


def test_yearly_reset_restarts_at_one_across_the_year_boundary(client_, issue_on):
    issue_on(date(2026, 12, 31))
    assert send_document(InvoiceFactory(client=client_)).number == "INV-2026-0001"
    assert send_document(InvoiceFactory(client=client_)).number == "INV-2026-0002"
    issue_on(date(2027, 1, 1))
    assert send_document(InvoiceFactory(client=client_)).number == "INV-2027-0001"


def test_monthly_reset(client_, issue_on):
    configure_numbering(client_.company, invoice_pattern="INV-{YYYY}{MM}-{counter}",
                        credit_note_pattern="CN-{YYYY}{MM}-{counter}", reset_period="monthly",
                        padding=3)
    issue_on(date(2026, 1, 31))
    assert send_document(InvoiceFactory(client=client_)).number == "INV-202601-001"
    issue_on(date(2026, 2, 1))
    assert send_document(InvoiceFactory(client=client_)).number == "INV-202602-001"


def test_never_reset_keeps_counting_across_years(client_, issue_on):
    configure_numbering(client_.company, reset_period="never")
    issue_on(date(2026, 12, 31))
    send_document(InvoiceFactory(client=client_))
    issue_on(date(2027, 1, 1))
    assert send_document(InvoiceFactory(client=client_)).number == "INV-2027-0002"


def test_preview_consumes_nothing(client_):
    draft = InvoiceFactory(client=client_)
    assert preview_number(draft) == preview_number(draft) == "INV-2026-0001"
    assert not Sequence.objects.exists() and not IssuedNumber.objects.exists()
    assert send_document(draft).number == "INV-2026-0001"
    assert preview_number(InvoiceFactory(client=client_)) == "INV-2026-0002"


def test_rollback_after_allocation_returns_the_number(client_):
    draft = InvoiceFactory(client=client_)
    with pytest.raises(RuntimeError), transaction.atomic():
        sent = send_document(draft)
        assert sent.number == "INV-2026-0001"
        raise RuntimeError("the rest of the request failed")

    draft.refresh_from_db()
    assert draft.state == "draft" and draft.number == ""
    assert not IssuedNumber.objects.exists()
    assert Sequence.objects.filter(last__gt=0).count() == 0
    assert send_document(InvoiceFactory(client=client_)).number == "INV-2026-0001"


def test_failure_after_allocation_inside_send_rolls_everything_back(client_, monkeypatch):
    draft = InvoiceFactory(client=client_)
    from billing import models as billing_models

    allocate = billing_models.allocate_number

    def allocate_then_fail(**kwargs):
        allocate(**kwargs)  # the number, the ledger entry and the document row are written
        raise IntegrityError("the connection broke before the commit")

    monkeypatch.setattr(billing_models, "allocate_number", allocate_then_fail)
    with pytest.raises(IntegrityError):
        send_document(draft)
    monkeypatch.undo()

    assert not IssuedNumber.objects.exists()
    assert send_document(draft).number == "INV-2026-0001"


@pytest.mark.django_db(transaction=True)
def test_allocator_refuses_to_run_outside_a_transaction(client_):
    # A transactional test: ordinary tests run wrapped in a transaction of their own.
    with pytest.raises(TransactionRequired):
        allocate_number(company_id=client_.company_id, kind="invoice", document_id=1,
                        issue_date=date(2026, 1, 1), total=Decimal("1.00"), currency="EUR")
    assert not Sequence.objects.exists()


def test_sending_twice_issues_once(client_):
    draft = InvoiceFactory(client=client_)
    send_document(draft)
    with pytest.raises(NotADraft, match="already been issued"):
        send_document(draft)
    assert IssuedNumber.objects.count() == 1
    assert preview_number(InvoiceFactory(client=client_)) == "INV-2026-0002"


def test_a_document_without_lines_cannot_be_sent(client_):
    draft = InvoiceFactory(client=client_, lines=[])
    with pytest.raises(ValidationError, match="at least one line"):
        send_document(draft)
    draft.refresh_from_db()
    assert draft.is_draft and not IssuedNumber.objects.exists()


def test_switching_to_shared_continues_after_the_highest_value(client_):
    company = client_.company
    for _ in range(3):
        send_document(InvoiceFactory(client=client_))
    send_document(CreditNoteFactory(client=client_))

    configure_numbering(company, shared_counter=True)

    assert send_document(CreditNoteFactory(client=client_)).number == "CN-2026-0004"
    assert send_document(InvoiceFactory(client=client_)).number == "INV-2026-0005"
    jump = NumberJump.objects.get()
    assert (jump.series, jump.period, jump.first_value, jump.last_value) == ("shared", "2026", 1, 3)
    assert "layout changed" in jump.reason


def test_switching_back_to_separate_never_reissues_a_number(client_):
    configure_numbering(client_.company, shared_counter=True)
    for factory in (InvoiceFactory, CreditNoteFactory, InvoiceFactory):
        send_document(factory(client=client_))
    configure_numbering(client_.company, shared_counter=False)
    assert send_document(InvoiceFactory(client=client_)).number == "INV-2026-0004"
    assert send_document(CreditNoteFactory(client=client_)).number == "CN-2026-0004"
    numbers = list(IssuedNumber.objects.values_list("number", flat=True))
    assert len(numbers) == len(set(numbers)) == 5


def test_changing_reset_period_midyear_keeps_numbers_unique(client_):
    configure_numbering(client_.company, reset_period="never")
    send_document(InvoiceFactory(client=client_))
    send_document(InvoiceFactory(client=client_))
    configure_numbering(client_.company, reset_period="yearly")
    assert send_document(InvoiceFactory(client=client_)).number == "INV-2026-0003"


def test_settings_changes_are_recorded(client_):
    from counters.models import NumberingSettingsChange

    configure_numbering(client_.company, padding=5)
    recorded = NumberingSettingsChange.objects.filter(company=client_.company).latest("id")
    assert recorded.old["padding"] == 4 and recorded.new["padding"] == 5


def test_set_next_number_moves_forward_and_records_why(client_, django_user_model):
    operator = django_user_model.objects.create_user("operator")
    send_document(InvoiceFactory(client=client_))
    jump = set_next_number(company_id=client_.company_id, series="invoice", period="2026",
                           next_value=100, reason="Migrated from the old system", user=operator)
    assert (jump.first_value, jump.last_value, jump.created_by) == (2, 99, operator)
    assert send_document(InvoiceFactory(client=client_)).number == "INV-2026-0100"


def test_set_next_number_never_moves_backwards(client_):
    send_document(InvoiceFactory(client=client_))
    send_document(InvoiceFactory(client=client_))
    with pytest.raises(ValidationError, match="only move forward"):
        set_next_number(company_id=client_.company_id, series="invoice", period="2026",
                        next_value=2, reason="oops")
    with pytest.raises(ValidationError, match="Say why"):
        set_next_number(company_id=client_.company_id, series="invoice", period="2026",
                        next_value=50, reason=" ")
    assert not NumberJump.objects.exists()
    assert preview_number(InvoiceFactory(client=client_)) == "INV-2026-0003"


def test_companies_have_independent_series(client_):
    other = ClientFactory()
    assert send_document(InvoiceFactory(client=client_)).number == "INV-2026-0001"
    assert send_document(InvoiceFactory(client=other)).number == "INV-2026-0001"


def test_database_refuses_a_duplicate_number_across_kinds(client_):
    send_document(InvoiceFactory(client=client_))
    entry = IssuedNumber.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        IssuedNumber.objects.create(
            company_id=entry.company_id, series="credit_note", period="2026", value=1,
            number=entry.number, kind="credit_note", document_id=999, issue_date=entry.issue_date,
            total=entry.total, currency="EUR", entry_hash="x",
        )


def test_database_refuses_a_numbered_draft(client_):
    draft = InvoiceFactory(client=client_)
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=draft.pk).update(number="INV-2026-0099")


def test_ledger_is_append_only(client_):
    send_document(InvoiceFactory(client=client_))
    with pytest.raises(IntegrityError), transaction.atomic():
        IssuedNumber.objects.update(number="X")
    with pytest.raises(IntegrityError), transaction.atomic():
        IssuedNumber.objects.all().delete()
    assert IssuedNumber.objects.get().number == "INV-2026-0001"


def test_credit_note_draft_is_never_numbered_even_when_referenced(client_):
    invoice = send_document(InvoiceFactory(client=client_))
    draft = CreditNoteFactory(client=client_, invoice=invoice)
    assert draft.number == "" and draft.invoice_number == invoice.number
    assert CreditNote.objects.get(pk=draft.pk).invoice_issue_date == invoice.issue_date
    assert IssuedNumber.objects.count() == 1  # the invoice's; the draft took nothing


def test_the_ledger_hash_is_the_documented_chain(client_):
    """
    Each entry's hash is SHA-256 of its content, '|'-joined: the previous hash, then the
    digest of the document's snapshot.
    """
    import hashlib

    first = send_document(InvoiceFactory(client=client_))
    second = send_document(InvoiceFactory(client=client_))
    previous = ""
    for document in (first, second):
        entry = IssuedNumber.objects.get(number=document.number)
        content = (f"{client_.company_id}|invoice|2026|{document.sequence_value}|"
                   f"{document.number}|invoice|{document.pk}|{document.issue_date.isoformat()}|"
                   f"{document.total:.2f}|EUR|{previous}|"
                   f"{hashlib.sha256(document.snapshot.encode()).hexdigest()}")
        expected = hashlib.sha256(content.encode()).hexdigest()
        assert (entry.previous_hash, entry.entry_hash) == (previous, expected)
        previous = expected
    assert Sequence.objects.get().last_hash == previous


def test_a_settings_change_applies_to_the_next_send(client_):
    send_document(InvoiceFactory(client=client_))
    configure_numbering(client_.company, invoice_pattern="FAC-{YYYY}-{counter}")
    assert send_document(InvoiceFactory(client=client_)).number == "FAC-2026-0002"
