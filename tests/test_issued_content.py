"""
An issued document keeps the content it was issued with, its history is recorded, and the
database refuses what the state machine does not allow; what bypasses the database's guards
shows in the audit.
"""

import io
from decimal import Decimal

import pypdf
import pytest
from django.core import mail
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from billing import services
from billing.models import CreditNote, Invoice
from billing.pdf import document_pdf
from counters.audit import AuditScope, run_audit
from counters.dbguards import guards_lifted
from counters.history import history_of
from counters.models import StateEvent

from .factories import ClientFactory, CompanyFactory, InvoiceFactory, MembershipFactory
from .jobs import deliver

pytestmark = pytest.mark.django_db

SELLER = dict(name="Atelier Lumière SARL", street="12 rue des Arts", postal_code="75011",
              city="Paris", country="FR",
              vat_id="FR40303265045", email="compta@atelier.example",
              registration_id="RCS Paris 303 265 045", iban="FR7630006000011234567890189",
              bic="AGRIFRPP")
BUYER = dict(name="Brasserie du Nord", street="4 quai Nord", postal_code="59000",
             city="Lille", country="BE", endpoint_scheme="0208", endpoint_id="0403019261",
             vat_id="FR23334175221", email="factures@brasserie.example")
LINES = [{"description": "Website redesign", "quantity": Decimal("1.5"),
          "unit_price": Decimal("840.00"), "tax_rate": Decimal("20")},
         {"description": "Hosting, one year", "quantity": Decimal("1"),
          "unit_price": Decimal("96.00"), "tax_rate": Decimal("5.5")}]
# What the issued invoice shows: its lines and totals; the page names the buyer, the PDF
# both parties (the e-mail goes from the seller's address to the buyer's).
CONTENT = ["Website redesign", "Hosting, one year", "1,260.00", "96.00", "1,356.00", "252.00",
           "5.28", "1,613.28", "Thank you."]
ON_THE_PAGE = [BUYER["name"], *CONTENT]
IN_THE_PDF = [SELLER["name"], SELLER["street"], "75011 Paris", "France", SELLER["vat_id"],
              SELLER["registration_id"], SELLER["iban"], SELLER["bic"],
              BUYER["name"], BUYER["street"], "59000 Lille", "Belgium", BUYER["vat_id"],
              *CONTENT]


def _text(value):
    return " ".join(value.replace("\xa0", " ").split())


@pytest.fixture
def issued():
    company = CompanyFactory(**SELLER)
    client = ClientFactory(company=company, **BUYER)
    invoice = InvoiceFactory(client=client, lines=LINES, notes="Thank you.")
    return services.send_document(invoice)


def _shown_everywhere(invoice, browser):
    invoice = Invoice.objects.get(pk=invoice.pk)
    page = browser.get(reverse("invoice_detail", args=[invoice.pk])).content.decode()
    pdf = "\n".join(p.extract_text() for p in
                    pypdf.PdfReader(io.BytesIO(document_pdf(invoice))).pages)
    mail.outbox.clear()
    deliver(invoice)
    message = mail.outbox[0]
    return _text(page), _text(pdf), message


def test_editing_the_client_and_the_company_after_issue_changes_nothing_issued(client, issued):
    member = MembershipFactory(company=issued.company).user
    client.force_login(member)
    page, pdf, message = _shown_everywhere(issued, client)
    assert all(_text(value) in page for value in ON_THE_PAGE)
    assert all(_text(value) in pdf for value in IN_THE_PDF)
    assert message.to == [BUYER["email"]] and message.from_email == SELLER["email"]
    assert BUYER["name"] in message.body and SELLER["name"] in message.body

    company, buyer = issued.company, issued.client
    for field, value in dict(name="Other Name SA", street="1 Hauptstraße", city="Berlin",
                             postal_code="10115", country="DE",
                             vat_id="DE123456789", email="new@other.example",
                             registration_id="HRB 1", iban="DE89370400440532013000",
                             bic="DEUTDEFF").items():
        setattr(company, field, value)
    company.payment_terms_days, company.currency = 90, "USD"
    company.save()
    for field in BUYER:
        setattr(buyer, field, f"other {field}@example.com"[:buyer._meta.get_field(field)
                                                                .max_length])
    buyer.country = "DE"
    buyer.save()

    page_after, pdf_after, message_after = _shown_everywhere(issued, client)
    assert all(_text(value) in page_after for value in ON_THE_PAGE)
    assert "other name" not in page_after and "Other Name" not in pdf_after
    assert pdf_after == pdf
    assert message_after.to == [BUYER["email"]]
    assert message_after.from_email == SELLER["email"]
    assert message_after.body == message.body and message_after.subject == message.subject


def test_a_draft_shows_its_current_data(client):
    draft = InvoiceFactory(lines=LINES)
    draft.client.name = "Renamed Client"
    draft.client.save()
    assert Invoice.objects.get(pk=draft.pk).content.buyer.name == "Renamed Client"
    assert draft.snapshot == ""


def test_the_snapshot_is_frozen_by_the_database(issued):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE billing_invoice SET snapshot = '{}' WHERE id = %s", [issued.pk])


def test_a_raw_change_of_the_issued_content_is_reported_tampered(issued):
    forged = issued.snapshot.replace("Brasserie du Nord", "Someone Else")
    with guards_lifted(connection), connection.cursor() as cursor:
        cursor.execute("UPDATE billing_invoice SET snapshot = %s WHERE id = %s",
                       [forged, issued.pk])
    findings = list(run_audit(AuditScope(company_id=issued.company_id)).findings)
    assert [(f.kind, f.numbers) for f in findings] == [("tampered", [issued.number])]
    assert "content" in findings[0].message


# --- History ---------------------------------------------------------------------------------


def test_every_change_of_state_is_recorded_with_who_when_and_why(django_user_model):
    user = django_user_model.objects.create_user("ada")
    invoice = services.send_document(InvoiceFactory(), user=user)
    paid = services.send_document(InvoiceFactory(client=invoice.client), user=user)
    services.mark_paid(paid, user=user)
    credit_note = services.cancel_invoice(invoice, user=user, reason="Ordered twice")

    def steps(document):
        return [(e.from_state, e.to_state, e.actor, e.reason)
                for e in history_of(document.kind, document.pk)]

    assert steps(invoice) == [("draft", "sent", user, ""),
                              ("sent", "cancelled", user, "Ordered twice")]
    assert steps(paid) == [("draft", "sent", user, ""), ("sent", "paid", user, "")]
    assert steps(credit_note) == [("draft", "sent", user, "")]
    events = list(StateEvent.objects.filter(company_id=invoice.company_id))
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert all(e.at is not None for e in events)
    assert list(run_audit(AuditScope(company_id=invoice.company_id)).findings) == []


def test_a_rolled_back_change_records_nothing():
    draft = InvoiceFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.send_document(draft)
        raise RuntimeError("the request failed after the send")
    assert not StateEvent.objects.exists()


def test_the_history_is_append_only(issued):
    for statement in ("UPDATE counters_stateevent SET reason = 'x'",
                      "DELETE FROM counters_stateevent"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert StateEvent.objects.count() == 1


def test_a_removed_or_altered_event_breaks_the_history(issued):
    services.mark_paid(issued)
    with guards_lifted(connection), connection.cursor() as cursor:
        cursor.execute("UPDATE counters_stateevent SET reason = 'forged' WHERE seq = 1")
    kinds = {f.kind for f in run_audit(AuditScope(company_id=issued.company_id)).findings}
    assert "tampered" in kinds


def test_removing_the_last_events_is_reported(issued):
    services.mark_paid(issued)
    with guards_lifted(connection), connection.cursor() as cursor:
        cursor.execute("DELETE FROM counters_stateevent WHERE seq = 2")
        cursor.execute("UPDATE billing_invoice SET state = 'sent' WHERE id = %s", [issued.pk])
    messages = [f.message for f in run_audit(AuditScope(company_id=issued.company_id)).findings]
    assert any("history does not end at its head, event 2" in m for m in messages), messages


def test_events_added_past_the_head_are_reported(issued):
    """The head rolled back onto an earlier event: the events after it are past the head."""
    services.mark_paid(issued)
    first = StateEvent.objects.get(company_id=issued.company_id, seq=1)
    with guards_lifted(connection), connection.cursor() as cursor:
        cursor.execute("UPDATE counters_eventchain SET last = 1, last_hash = %s "
                       "WHERE company_id = %s", [first.event_hash, issued.company_id])
    messages = [f.message for f in run_audit(AuditScope(company_id=issued.company_id)).findings]
    assert any("history does not end at its head, event 1" in m for m in messages), messages


# --- The state machine in the database -------------------------------------------------------


@pytest.mark.parametrize("model, start, state", [
    (Invoice, "sent", "bogus"),      # not a state at all
    (Invoice, "sent", "draft"),      # never back to draft
    (Invoice, "paid", "sent"),       # never paid -> sent
    (Invoice, "sent", "cancelled"),  # not without credit notes covering it
    (CreditNote, "sent", "paid"),    # a credit note is never paid
])
def test_the_database_refuses_what_the_state_machine_does_not_allow(model, start, state):
    client = ClientFactory()
    if model is Invoice:
        document = services.send_document(InvoiceFactory(client=client))
        if start == "paid":
            services.mark_paid(document)
    else:
        invoice = services.send_document(InvoiceFactory(client=client))
        document = services.send_document(services.draft_credit_note(invoice))
    table = model._meta.db_table
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET state = %s WHERE id = %s", [state, document.pk])
    assert model.objects.get(pk=document.pk).state == start


def test_a_state_changed_past_the_guards_is_a_state_mismatch(issued):
    with guards_lifted(connection), connection.cursor() as cursor:
        cursor.execute("UPDATE billing_invoice SET state = 'paid' WHERE id = %s", [issued.pk])
    findings = list(run_audit(AuditScope(company_id=issued.company_id)).findings)
    assert [(f.kind, f.numbers) for f in findings] == [("state_mismatch", [issued.number])]
    assert "'paid'" in findings[0].message and "'sent'" in findings[0].message


def test_pages_show_a_state_they_do_not_know(client, issued):
    """Should the books ever hold a state outside the state machine, pages show it."""
    with guards_lifted(connection), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE billing_invoice "
                           "DROP CONSTRAINT billing_invoice_state_valid")
        else:
            cursor.execute("PRAGMA ignore_check_constraints = ON")
        cursor.execute("UPDATE billing_invoice SET state = 'bogus' WHERE id = %s", [issued.pk])
        if connection.vendor != "postgresql":
            cursor.execute("PRAGMA ignore_check_constraints = OFF")
    client.force_login(MembershipFactory(company=issued.company).user)
    for url in (reverse("home"), reverse("invoice_list"),
                reverse("invoice_detail", args=[issued.pk]),
                reverse("client_detail", args=[issued.client_id])):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "bogus" in response.content.decode(), url
    kinds = {f.kind for f in run_audit(AuditScope(company_id=issued.company_id)).findings}
    assert "state_mismatch" in kinds


@pytest.mark.parametrize("microsecond", [0, 120_034])
def test_the_audits_sql_computes_the_same_hashes_as_python(issued, microsecond):
    """counters.chain.hash_sql and record_hash agree on ledger entries and events."""
    from counters import chain
    from counters.audit import _register_sqlite_sha256
    from counters.models import IssuedNumber

    with guards_lifted(connection), connection.cursor() as cursor:
        at = StateEvent.objects.get().at.replace(microsecond=microsecond)
        cursor.execute("UPDATE counters_stateevent SET at = %s",  # as Django writes it
                       [connection.ops.adapt_datetimefield_value(at)])
    if connection.vendor == "sqlite":
        _register_sqlite_sha256()
    for model, table in ((IssuedNumber, "counters_issuednumber"),
                         (StateEvent, "counters_stateevent")):
        record = model.objects.get()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {chain.hash_sql('t', connection.vendor, model)} "
                           f"FROM {table} t WHERE t.id = %s", [record.pk])
            assert cursor.fetchone()[0] == chain.record_hash(record)


def test_an_invoice_partly_credited_at_an_odd_rate_can_still_be_cancelled():
    """Credits are measured in nets: each credit note's own tax rounding cannot block it."""
    invoice = services.send_document(InvoiceFactory(lines=[
        {"description": "Tea", "quantity": Decimal(1), "unit_price": Decimal("0.15"),
         "tax_rate": Decimal(10)}]))
    partial = services.draft_credit_note(invoice, amount_lines=[
        ("Returned", Decimal(1), Decimal("0.04"), Decimal(10))])
    services.send_document(partial)
    credit_note = services.cancel_invoice(invoice, reason="Closed")
    assert credit_note.subtotal == Decimal("0.11")
    invoice.refresh_from_db()
    assert invoice.state == "cancelled" and invoice.open_amount() == 0
    assert list(run_audit(AuditScope(company_id=invoice.company_id)).findings) == []


def test_a_credit_beyond_the_invoices_net_is_refused_in_nets():
    invoice = services.send_document(InvoiceFactory(lines=[
        {"description": "Work", "quantity": Decimal(1), "unit_price": Decimal("0.10"),
         "tax_rate": Decimal(10)}]))
    services.send_document(services.draft_credit_note(invoice, amount_lines=[
        ("Part", Decimal(1), Decimal("0.05"), Decimal(10))]))
    too_much = services.draft_credit_note(invoice, amount_lines=[
        ("Rest and more", Decimal(1), Decimal("0.06"), Decimal(10))])
    with pytest.raises(services.CreditExceedsInvoice) as refused:
        services.send_document(too_much)
    assert "(0.06\xa0EUR before tax)" in refused.value.message
    services.cancel_invoice(invoice)  # the 0.05 left is credited, and the invoice cancelled
    assert Invoice.objects.get(pk=invoice.pk).state == "cancelled"


def test_the_head_of_a_history_never_moves_back_nor_disappears(issued):
    for statement in ("UPDATE counters_eventchain SET last = 0",
                      "DELETE FROM counters_eventchain"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    with guards_lifted(connection), connection.cursor() as cursor:
        cursor.execute("DELETE FROM counters_eventchain")
    messages = [f.message for f in run_audit(AuditScope(company_id=issued.company_id)).findings]
    assert messages == ["the history has lost its head: its last event is unknown"]


def test_a_draft_never_shows_a_snapshot_forged_into_it():
    draft = InvoiceFactory()
    forged = services.send_document(InvoiceFactory()).snapshot.replace(
        draft.client.name, "Forged Buyer")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE billing_invoice SET snapshot = %s WHERE id = %s",
                       [forged, draft.pk])
    assert Invoice.objects.get(pk=draft.pk).content.buyer.name == draft.client.name
