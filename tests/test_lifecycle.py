"""The document lifecycle: draft -> sent -> paid / cancelled, credit notes, immutability."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django_tasks_db.models import DBTaskResult

from billing import services
from billing.models import DocumentLocked, EmailDelivery, Invoice, InvoiceLine, Payment
from counters.models import IssuedNumber

from .factories import ClientFactory, CreditNoteFactory, InvoiceFactory

pytestmark = pytest.mark.django_db

LINE = {"description": "Work", "quantity": Decimal("1"), "unit_price": Decimal("100.00"),
        "tax_rate": Decimal("20")}


def credit_lines(amount):
    return [{**LINE, "unit_price": Decimal(amount)}]


@pytest.fixture
def invoice():
    """A sent invoice of 240.00 (200.00 + 20 % tax)."""
    return services.send_document(InvoiceFactory())


def test_totals_round_each_line_to_cents_half_up():
    draft = InvoiceFactory(lines=[
        {**LINE, "quantity": Decimal("0.335"), "unit_price": Decimal("3.00"), "tax_rate": 0},
        {**LINE, "quantity": Decimal("1"), "unit_price": Decimal("10.05"),
         "tax_rate": Decimal("5.5")},
    ])
    # 0.335 x 3.00 = 1.005 -> 1.01 ; 10.05 x 5.5 % = 0.55275 -> 0.55
    assert (draft.subtotal, draft.tax_total, draft.total) == (
        Decimal("11.06"), Decimal("0.55"), Decimal("11.61"))


def test_send_queues_the_email_job_in_its_own_transaction(mailoutbox, run_jobs):
    draft = InvoiceFactory()
    sent = services.send_document(draft, email=True)
    assert mailoutbox == []  # the worker sends it, not the request
    job, = DBTaskResult.objects.all()
    delivery, = EmailDelivery.objects.all()
    assert job.task_path == "billing.tasks.deliver_email"
    assert job.args_kwargs == {"args": [delivery.pk], "kwargs": {}}
    assert (job.status, delivery.status, delivery.attempts) == ("READY", "pending", 0)
    run_jobs()
    assert len(mailoutbox) == 1
    assert sent.number in mailoutbox[0].subject
    assert mailoutbox[0].attachments[0][0] == f"{sent.number}.pdf"
    delivery.refresh_from_db(), job.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error) == ("sent", 1, "")
    assert delivery.finished_at is not None and job.status == "SUCCESSFUL"
    assert draft.is_draft  # the caller's instance is untouched


def test_the_job_is_written_inside_the_send_transaction(django_capture_on_commit_callbacks):
    draft = InvoiceFactory()
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        services.send_document(draft, email=True)
        # Before the commit: the job is there, in the transaction, waiting for nothing else.
        assert DBTaskResult.objects.filter(status="READY").count() == 1
    assert callbacks == []


def test_a_rolled_back_send_queues_nothing(mailoutbox, run_jobs):
    draft = InvoiceFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.send_document(draft, email=True)
        assert DBTaskResult.objects.count() == EmailDelivery.objects.count() == 1
        raise RuntimeError("rolled back")  # a failure after the enqueue, before the commit
    assert DBTaskResult.objects.count() == EmailDelivery.objects.count() == 0
    run_jobs()
    assert mailoutbox == [] and Invoice.objects.get(pk=draft.pk).is_draft


def test_mark_paid(invoice):
    paid = services.mark_paid(invoice)
    assert Invoice.objects.get(pk=invoice.pk).state == paid.state == "paid"
    with pytest.raises(ValidationError, match="Only a sent invoice"):
        services.mark_paid(paid)
    with pytest.raises(ValidationError, match="Only a sent invoice"):
        services.mark_paid(InvoiceFactory())


def test_cancel_issues_a_credit_note_for_the_whole_invoice(invoice):
    credit_note = services.cancel_invoice(invoice, reason="Ordered twice")
    invoice.refresh_from_db()
    assert invoice.state == "cancelled"
    assert credit_note.state == "sent" and credit_note.number.startswith("CN-")
    assert credit_note.total == invoice.total == Decimal("240.00")
    assert (credit_note.invoice_number, credit_note.invoice_issue_date) == (
        invoice.number, invoice.issue_date)
    assert invoice.open_amount() == 0


def test_cancel_after_a_partial_credit_credits_what_is_left(invoice):
    partial = services.draft_credit_note(invoice, amount_lines=[("Refund", 1, Decimal("50"), 20)])
    services.send_document(partial)
    credit_note = services.cancel_invoice(invoice)
    assert credit_note.total == Decimal("180.00")
    assert Invoice.objects.get(pk=invoice.pk).open_amount() == 0


def test_cancel_is_all_or_nothing(invoice, monkeypatch):
    def broken(*args, **kwargs):
        raise IntegrityError("the credit note could not be numbered")

    monkeypatch.setattr(services, "send_document", broken)
    with pytest.raises(IntegrityError):
        services.cancel_invoice(invoice)
    invoice.refresh_from_db()
    assert invoice.state == "sent" and invoice.credit_notes.count() == 0


def test_only_a_sent_invoice_can_be_cancelled(invoice):
    services.mark_paid(invoice)
    with pytest.raises(ValidationError, match="Only a sent, unpaid invoice"):
        services.cancel_invoice(invoice)
    assert IssuedNumber.objects.count() == 1


def test_credit_notes_never_exceed_the_invoice(invoice):
    services.send_document(CreditNoteFactory(client=invoice.client, invoice=invoice,
                                             lines=credit_lines("150")))  # 180.00
    too_much = CreditNoteFactory(client=invoice.client, invoice=invoice,
                                 lines=credit_lines("50.01"))  # 60.01 > 60.00 open
    with pytest.raises(services.CreditExceedsInvoice) as refused:
        services.send_document(too_much)
    # Credits are measured before tax; amounts are written as everywhere else.
    assert str(refused.value.message) == (
        f"This credit note (50.01\xa0EUR before tax) exceeds what is left to credit of "
        f"{invoice.number} (50.00\xa0EUR before tax).")
    too_much.refresh_from_db()
    assert too_much.is_draft and IssuedNumber.objects.count() == 2
    exact = CreditNoteFactory(client=invoice.client, invoice=invoice, lines=credit_lines("50"))
    services.send_document(exact)
    assert Invoice.objects.get(pk=invoice.pk).open_amount() == 0


@pytest.mark.parametrize("which", ["company", "client", "draft"])
def test_a_credit_note_references_an_issued_invoice_of_its_own_client(invoice, which):
    if which == "company":
        client, target = ClientFactory(), invoice
    elif which == "client":
        client, target = ClientFactory(company=invoice.company), invoice
    else:
        client, target = invoice.client, InvoiceFactory(client=invoice.client)
    credit_note = CreditNoteFactory.build(client=client, company=client.company, invoice=target)
    with pytest.raises(ValidationError) as error:
        credit_note.full_clean()
    assert "invoice" in error.value.message_dict


def test_drafts_can_be_edited_and_deleted():
    draft = InvoiceFactory()
    draft.notes = "Thanks"
    draft.save()
    draft.lines.create(**LINE)
    draft.lines.first().delete()
    draft.delete()
    assert not Invoice.objects.exists()


def test_the_model_refuses_to_change_or_delete_an_issued_document(invoice):
    invoice = Invoice.objects.get(pk=invoice.pk)
    invoice.notes = "rewritten"
    with pytest.raises(DocumentLocked, match="can no longer be changed"):
        invoice.save()
    with pytest.raises(DocumentLocked):
        invoice.delete()
    with pytest.raises(DocumentLocked):
        invoice.lines.create(**LINE)
    with pytest.raises(DocumentLocked):
        invoice.lines.first().delete()
    assert Invoice.objects.get(pk=invoice.pk).notes == ""


@pytest.mark.parametrize("statement", [
    "UPDATE billing_invoice SET total = 1, subtotal = 1, tax_total = 0 WHERE id = %s",
    "UPDATE billing_invoice SET number = 'INV-X' WHERE id = %s",
    "UPDATE billing_invoice SET client_id = client_id + 0, notes = 'x' WHERE id = %s",
    "UPDATE billing_invoice SET state = 'draft', number = '', sequence_value = NULL, "
    "issue_date = NULL WHERE id = %s",
    "DELETE FROM billing_invoice WHERE id = %s",
    "DELETE FROM billing_invoiceline WHERE document_id = %s",
    "UPDATE billing_invoiceline SET unit_price = 0 WHERE document_id = %s",
    "INSERT INTO billing_invoiceline (document_id, description, quantity, unit_price, tax_rate,"
    " position) VALUES (%s, 'extra', 1, 1, 0, 9)",
])
def test_the_database_refuses_raw_sql_that_rewrites_an_issued_document(invoice, statement):
    before = (Invoice.objects.filter(pk=invoice.pk).values().get(),
              list(InvoiceLine.objects.filter(document=invoice).values()))
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [invoice.pk])
    after = (Invoice.objects.filter(pk=invoice.pk).values().get(),
             list(InvoiceLine.objects.filter(document=invoice).values()))
    assert after == before


def test_the_database_allows_the_lifecycle_columns_of_an_issued_document(invoice):
    # Paid once payments cover it (the state machine's rule, in the database too).
    Payment.objects.create(company=invoice.company, invoice=invoice, date=invoice.issue_date,
                           amount=invoice.total, method="bank_transfer")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE billing_invoice SET state = 'paid' WHERE id = %s", [invoice.pk])
    assert Invoice.objects.get(pk=invoice.pk).state == "paid"
