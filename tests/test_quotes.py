"""
Quotes, as a specification: numbered only when sent (their own series, or the invoices'),
frozen from then on (in Python and in the database), accepted into a linked invoice draft,
declined or expired with their numbers kept, audited like the other kinds.
"""

import io
from datetime import date, timedelta
from decimal import Decimal

import pypdf
import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from billing import services
from billing.einvoice.exports import NotExportable, export
from billing.models import DocumentLocked, Invoice, Membership, Quote, QuoteLine, QuoteState
from billing.pdf import document_pdf
from counters.audit import AuditScope, run_audit
from counters.dbguards import guards_lifted
from counters.history import history_of
from counters.models import IssuedNumber, NumberingSettings, Sequence

from .factories import (
    ClientFactory,
    CreditNoteFactory,
    InvoiceFactory,
    MembershipFactory,
    QuoteFactory,
    configure_numbering,
)
from .test_browser import chromium, owner, page  # noqa: F401 - the browser test's fixtures

pytestmark = pytest.mark.django_db

TWO_LINES = [
    {"description": "Website redesign", "quantity": Decimal("1"),
     "unit_price": Decimal("2400.00"), "tax_rate": Decimal("20")},
    {"description": "Training day", "quantity": Decimal("2"), "unit_price": Decimal("650.00"),
     "tax_rate": Decimal("10"), "unit_code": "DAY"},
]


@pytest.fixture
def company(issue_on):
    issue_on(date(2026, 3, 2))
    client = ClientFactory()
    configure_numbering(client.company, quote_pattern="Q-{YYYY}-{counter}")
    return client.company


def quote_for(company, **kwargs):
    return QuoteFactory(client=ClientFactory(company=company), **kwargs)


def findings(company, kind):
    result = run_audit(AuditScope(company_id=company.pk))
    return [f for f in result.findings if f.kind == kind]


# --- Numbering -----------------------------------------------------------------------------


def test_a_quote_is_numbered_only_when_it_is_sent(company):
    quote = quote_for(company)
    assert quote.number == "" and quote.is_draft
    assert not IssuedNumber.objects.exists()
    sent = services.send_document(quote)
    assert sent.number == "Q-2026-0001" and sent.state == QuoteState.SENT
    entry = IssuedNumber.objects.get()
    assert (entry.kind, entry.series, entry.number) == ("quote", "quote", "Q-2026-0001")
    assert sent.valid_until == date(2026, 4, 1)  # 30 days when the draft left it empty


def test_separate_series_leave_the_invoices_untouched(company):
    services.send_document(quote_for(company))
    services.send_document(quote_for(company))
    invoice = services.send_document(InvoiceFactory(client=ClientFactory(company=company)))
    assert invoice.number == "INV-2026-0001"
    assert services.send_document(quote_for(company)).number == "Q-2026-0003"


def test_quotes_may_share_the_invoices_counter(company):
    configure_numbering(company, quotes_share_invoice_counter=True)
    client = ClientFactory(company=company)
    first = services.send_document(InvoiceFactory(client=client))
    quote = services.send_document(QuoteFactory(client=client))
    second = services.send_document(InvoiceFactory(client=client))
    assert (first.number, quote.number, second.number) == (
        "INV-2026-0001", "Q-2026-0002", "INV-2026-0003")
    assert set(IssuedNumber.objects.values_list("series", flat=True)) == {"invoice"}
    assert findings(company, "gap") == []


def test_a_quote_pattern_left_empty_is_the_invoice_pattern_after_q(issue_on):
    issue_on(date(2026, 3, 2))
    quote = services.send_document(QuoteFactory())
    assert quote.number == "Q-INV-2026-0001"


def test_patterns_that_could_collide_are_refused_when_series_are_separate(company):
    numbering = NumberingSettings.for_company(company.pk)
    for other in ("INV-{YYYY}-{counter}", "CN-{YYYY}-{counter}"):
        numbering.quote_pattern = other
        with pytest.raises(ValidationError) as refused:
            numbering.full_clean()
        assert "quote_pattern" in refused.value.message_dict
        assert "would produce the same numbers" in refused.value.message_dict[
            "quote_pattern"][0]
    # Sharing the invoices' counter, their pattern never repeats a number; the credit
    # notes' still could (they draw from their own series).
    numbering.quotes_share_invoice_counter = True
    numbering.quote_pattern = "INV-{YYYY}-{counter}"
    numbering.full_clean()
    numbering.quote_pattern = "CN-{YYYY}-{counter}"
    with pytest.raises(ValidationError) as refused:
        numbering.full_clean()
    assert "quote_pattern" in refused.value.message_dict
    numbering.quote_pattern = "D-{YYYY}-{counter}"
    numbering.reset_period = "monthly"
    with pytest.raises(ValidationError) as refused:
        numbering.full_clean()
    assert "{MM}" in refused.value.message_dict["quote_pattern"][0]


def test_switching_the_quote_series_carries_values_over(company):
    for _ in range(3):
        services.send_document(quote_for(company))
    configure_numbering(company, quotes_share_invoice_counter=True)
    # The invoices' series continues after the quotes' highest value: no quote repeats.
    assert services.send_document(quote_for(company)).number == "Q-2026-0004"
    configure_numbering(company, quotes_share_invoice_counter=False)
    assert services.send_document(quote_for(company)).number == "Q-2026-0005"
    assert findings(company, "gap") == []


def test_a_layout_change_leaves_an_unused_quote_series_alone(company):
    client = ClientFactory(company=company)
    for _ in range(3):
        services.send_document(InvoiceFactory(client=client))
    configure_numbering(company, shared_counter=True)
    assert services.send_document(quote_for(company)).number == "Q-2026-0001"
    assert findings(company, "gap") == []


def test_deleted_drafts_burn_no_number(company):
    for _ in range(3):
        quote_for(company).delete()
    assert services.send_document(quote_for(company)).number == "Q-2026-0001"
    assert Sequence.objects.get(series="quote").last == 1


def test_a_rolled_back_send_returns_its_number(company):
    quote = quote_for(company)
    with pytest.raises(IntegrityError), transaction.atomic():
        services.send_document(quote)
        raise IntegrityError("the e-mail could not be queued")
    assert Quote.objects.get(pk=quote.pk).is_draft
    assert services.send_document(quote).number == "Q-2026-0001"


def test_a_quote_valid_until_a_past_day_is_not_sent(company):
    quote = quote_for(company, valid_until=date(2026, 3, 1))
    with pytest.raises(ValidationError, match="valid-until date has passed"):
        services.send_document(quote)
    assert not IssuedNumber.objects.exists()


def test_no_einvoice_check_stops_a_quote(company):
    """A quote is not an EN 16931 invoice: a buyer an e-invoice could not name is fine."""
    client = ClientFactory(company=company, vat_id="", endpoint_scheme="", endpoint_id="",
                           street="")
    assert services.send_document(QuoteFactory(client=client)).number == "Q-2026-0001"
    with pytest.raises(ValidationError):
        services.send_document(InvoiceFactory(client=client))


# --- Frozen once sent ----------------------------------------------------------------------


@pytest.fixture
def sent_quote(company):
    return services.send_document(quote_for(company, lines=TWO_LINES))


def test_a_sent_quote_cannot_be_changed_or_deleted(sent_quote):
    sent_quote.notes = "changed"
    with pytest.raises(DocumentLocked, match="has been sent"):
        sent_quote.save()
    with pytest.raises(DocumentLocked):
        sent_quote.delete()
    with pytest.raises(DocumentLocked):
        sent_quote.lines.first().delete()
    with pytest.raises(DocumentLocked):
        QuoteLine(document=sent_quote, description="x", unit_price=1).save()


@pytest.mark.parametrize("statement", [
    "UPDATE billing_quote SET total = 1 WHERE id = %s",
    "UPDATE billing_quote SET valid_until = '2099-01-01' WHERE id = %s",
    "UPDATE billing_quote SET state = 'draft' WHERE id = %s",
    "UPDATE billing_quote SET state = 'accepted' WHERE id = %s",  # without its invoice
    "DELETE FROM billing_quote WHERE id = %s",
    "UPDATE billing_quoteline SET unit_price = 0 WHERE document_id = %s",
    "DELETE FROM billing_quoteline WHERE document_id = %s",
    "INSERT INTO billing_quoteline (document_id, description, quantity, unit_price, tax_rate,"
    " unit_code, tax_category, tax_exemption_reason, tax_exemption_code, position)"
    " VALUES (%s, 'extra', 1, 1, 0, 'C62', 'Z', '', '', 9)",
])
def test_the_database_refuses_raw_sql_that_rewrites_a_sent_quote(sent_quote, statement):
    before = (Quote.objects.filter(pk=sent_quote.pk).values().get(),
              list(QuoteLine.objects.filter(document=sent_quote).values()))
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [sent_quote.pk])
    after = (Quote.objects.filter(pk=sent_quote.pk).values().get(),
             list(QuoteLine.objects.filter(document=sent_quote).values()))
    assert after == before


def test_the_database_lets_a_sent_quote_be_declined_or_expired(sent_quote):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE billing_quote SET state = 'expired' WHERE id = %s",
                       [sent_quote.pk])
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE billing_quote SET state = 'declined' WHERE id = %s",
                       [sent_quote.pk])  # expired is final


def test_a_sent_quote_shows_what_it_said_when_sent(sent_quote):
    client = sent_quote.client
    client.name = "Renamed Ltd"
    client.save()
    content = Quote.objects.get(pk=sent_quote.pk).content
    assert content.buyer.name != "Renamed Ltd" and content.kind == "quote"
    assert content.valid_until == sent_quote.valid_until


# --- Accept, decline, expire ---------------------------------------------------------------


def test_accepting_drafts_a_linked_invoice_with_the_same_lines_and_totals(sent_quote):
    invoice = services.accept_quote(sent_quote)
    quote = Quote.objects.get(pk=sent_quote.pk)
    assert quote.state == QuoteState.ACCEPTED and quote.number == sent_quote.number
    assert invoice.is_draft and invoice.number == "" and invoice.quote_id == quote.pk
    assert (invoice.client_id, invoice.currency) == (quote.client_id, quote.currency)
    fields = ("description", "quantity", "unit_price", "tax_rate", "unit_code",
              "tax_category", "position")
    assert list(invoice.lines.values_list(*fields)) == list(quote.lines.values_list(*fields))
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
        quote.subtotal, quote.tax_total, quote.total) == (
        Decimal("3700.00"), Decimal("610.00"), Decimal("4310.00"))
    assert [(e.from_state, e.to_state) for e in history_of("quote", quote.pk)] == [
        ("draft", "sent"), ("sent", "accepted")]
    # The invoice is then sent like any other, in the invoices' series.
    assert services.send_document(invoice).number == "INV-2026-0001"


def test_a_quote_is_accepted_once(sent_quote):
    services.accept_quote(sent_quote)
    with pytest.raises(ValidationError, match="Only a sent quote can be accepted"):
        services.accept_quote(sent_quote)
    assert Invoice.objects.filter(quote=sent_quote).count() == 1
    # The database refuses a second invoice of the same quote, whatever writes it.
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.create(company=sent_quote.company, client=sent_quote.client,
                               quote=sent_quote)


def test_the_invoice_drafted_from_a_quote_is_edited_not_deleted(sent_quote):
    """An accepted quote keeps its invoice: deleting that draft is refused with a message."""
    invoice = services.accept_quote(sent_quote)
    with pytest.raises(ValidationError, match="made from an accepted quote"):
        invoice.delete()
    assert Invoice.objects.filter(pk=invoice.pk, quote=sent_quote).exists()


def test_a_draft_quote_cannot_be_accepted(company):
    draft = quote_for(company)
    with pytest.raises(ValidationError):
        services.accept_quote(draft)
    assert not Invoice.objects.exists()


@pytest.mark.parametrize("answer, state", [(services.decline_quote, QuoteState.DECLINED),
                                           (services.expire_quote, QuoteState.EXPIRED)])
def test_declined_and_expired_quotes_keep_their_numbers(sent_quote, answer, state):
    answered = answer(sent_quote, reason="Too expensive")
    assert answered.state == state and answered.number == sent_quote.number
    assert IssuedNumber.objects.get(kind="quote").number == sent_quote.number
    assert list(history_of("quote", sent_quote.pk).values_list("to_state", "reason")) == [
        ("sent", ""), (state, "Too expensive")]
    with pytest.raises(ValidationError):
        services.accept_quote(answered)
    assert findings(sent_quote.company, "state_mismatch") == []


def test_a_sent_quote_past_its_date_shows_expired_until_someone_says_so(sent_quote):
    assert not sent_quote.is_expired_on(sent_quote.valid_until)
    assert sent_quote.is_expired_on(sent_quote.valid_until + timedelta(days=1))
    services.decline_quote(sent_quote)
    assert not Quote.objects.get(pk=sent_quote.pk).is_expired_on(date(2099, 1, 1))


# --- Audit ---------------------------------------------------------------------------------


def test_the_audit_is_clean_and_finds_a_gap_in_the_quote_series(company):
    quotes = [services.send_document(quote_for(company)) for _ in range(3)]
    services.accept_quote(quotes[0])
    services.decline_quote(quotes[2])
    assert list(run_audit(AuditScope(company_id=company.pk)).findings) == []
    with guards_lifted(connection), connection.cursor() as cursor:
        cursor.execute("DELETE FROM counters_issuednumber WHERE number = 'Q-2026-0002'")
        cursor.execute("DELETE FROM billing_quoteline WHERE document_id = %s", [quotes[1].pk])
        cursor.execute("DELETE FROM billing_quote WHERE id = %s", [quotes[1].pk])
    gaps = findings(company, "gap")
    assert [(g.series, g.values) for g in gaps] == [("quote", [2])]


def test_the_audit_finds_a_quote_altered_after_it_was_sent(sent_quote):
    with guards_lifted(connection), connection.cursor() as cursor:
        cursor.execute("UPDATE billing_quote SET snapshot = replace(snapshot, 'Website', "
                       "'Webshop') WHERE id = %s", [sent_quote.pk])
    assert [f.numbers for f in findings(sent_quote.company, "tampered")] == [
        [sent_quote.number]]


# --- No e-invoice --------------------------------------------------------------------------


def test_a_quote_has_a_pdf_and_no_einvoice(sent_quote):
    for syntax in ("ubl", "cii", "facturx"):
        with pytest.raises(NotExportable):
            export(sent_quote, syntax)
    reader = pypdf.PdfReader(io.BytesIO(document_pdf(sent_quote)))
    text = "".join(sheet.extract_text() for sheet in reader.pages)
    assert f"Quote {sent_quote.number}" in text and "VALID UNTIL" in text.upper()
    assert not reader.attachments  # not a Factur-X


def test_the_quote_pdf_is_in_the_clients_language(company):
    client = ClientFactory(company=company, language="fr")
    quote = services.send_document(QuoteFactory(client=client))
    text = pypdf.PdfReader(io.BytesIO(document_pdf(quote))).pages[0].extract_text()
    assert f"Devis {quote.number}" in text


# --- Pages and roles -----------------------------------------------------------------------


@pytest.fixture
def browser(client, company):
    membership = MembershipFactory(company=company, role=Membership.Role.OWNER)
    client.force_login(membership.user)
    return client


def lines_data(*lines):
    data = {"lines-TOTAL_FORMS": len(lines), "lines-INITIAL_FORMS": 0,
            "lines-MIN_NUM_FORMS": 0, "lines-MAX_NUM_FORMS": 1000}
    for i, (description, quantity, price, rate) in enumerate(lines):
        data.update({f"lines-{i}-description": description, f"lines-{i}-quantity": quantity,
                     f"lines-{i}-unit_price": price, f"lines-{i}-tax_rate": rate})
    return data


def test_the_pages_create_send_and_accept_a_quote(browser, company):
    client = ClientFactory(company=company)
    assert 'href="/quotes/"' in browser.get(reverse("home")).content.decode()
    response = browser.post(reverse("quote_create"), {
        "client": client.pk, "currency": "EUR", "valid_until": "2026-04-30",
        **lines_data(("Audit", "1", "900", "20"))})
    quote = Quote.objects.get()
    assert response["Location"] == reverse("quote_detail", args=[quote.pk])
    html = browser.get(response["Location"]).content.decode()
    assert 'preview-number">Q-2026-0001<' in html and "data-einvoice" not in html
    browser.post(reverse("quote_send", args=[quote.pk]))
    html = browser.get(reverse("quote_detail", args=[quote.pk])).content.decode()
    assert "Q-2026-0001" in html and "data-accept-quote" in html and "UBL" not in html
    assert "PDF (Factur-X)" not in html
    listing = browser.get(reverse("quote_list")).content.decode()
    assert "Q-2026-0001" in listing and "Valid until" in listing
    response = browser.post(reverse("quote_accept", args=[quote.pk]))
    invoice = Invoice.objects.get(quote=quote)
    assert response["Location"] == reverse("invoice_detail", args=[invoice.pk])
    invoice_page = browser.get(response["Location"]).content.decode()
    assert "data-from-quote" in invoice_page and "Q-2026-0001" in invoice_page
    quote_page = browser.get(reverse("quote_detail", args=[quote.pk])).content.decode()
    assert reverse("invoice_detail", args=[invoice.pk]) in quote_page
    assert "data-accept-quote" not in quote_page
    # Accepting again from a stale page is refused with a message, not an error page.
    response = browser.post(reverse("quote_accept", args=[quote.pk]), follow=True)
    assert "Only a sent quote can be accepted" in response.content.decode()
    assert Invoice.objects.count() == 1


def test_a_past_valid_until_date_is_refused_by_the_form(browser, company):
    client = ClientFactory(company=company)
    response = browser.post(reverse("quote_create"), {
        "client": client.pk, "currency": "EUR", "valid_until": "2026-03-01",
        **lines_data(("Audit", "1", "900", "20"))})
    assert response.status_code == 200
    assert "cannot be valid until a day that has passed" in response.content.decode()
    assert not Quote.objects.exists()


def test_decline_and_expire_from_the_page(browser, company):
    declined = services.send_document(quote_for(company))
    expired = services.send_document(quote_for(company))
    browser.post(reverse("quote_decline", args=[declined.pk]), {"reason": "No budget"})
    browser.post(reverse("quote_expire", args=[expired.pk]), {})
    assert Quote.objects.get(pk=declined.pk).state == QuoteState.DECLINED
    assert Quote.objects.get(pk=expired.pk).state == QuoteState.EXPIRED
    html = browser.get(reverse("quote_detail", args=[declined.pk])).content.decode()
    assert "No budget" in html and declined.number in html


def test_the_numbering_page_sets_the_quote_series(browser, company):
    form = {"invoice_pattern": "INV-{YYYY}-{counter}", "credit_note_pattern": "CN-{YYYY}-{counter}",
            "padding": "4", "reset_period": "yearly", "fiscal_year_start": "1"}
    html = browser.get(reverse("numbering_settings")).content.decode()
    assert 'data-example="quote">Q-2026-0001<' in html
    refused = browser.post(reverse("numbering_settings"),
                           {**form, "quote_pattern": "INV-{YYYY}-{counter}"}).content.decode()
    assert "quotes and invoices would produce the same numbers" in refused
    browser.post(reverse("numbering_settings"),
                 {**form, "quote_pattern": "OF{YY}-{counter}",
                  "quotes_share_invoice_counter": "on"})
    numbering = NumberingSettings.for_company(company.pk)
    assert numbering.quote_pattern == "OF{YY}-{counter}"
    assert numbering.quotes_share_invoice_counter
    assert services.send_document(quote_for(company)).number == "OF26-0001"


def test_the_quote_ubl_urls_do_not_exist():
    from django.urls import NoReverseMatch

    with pytest.raises(NoReverseMatch):
        reverse("quote_ubl", args=[1])


@pytest.mark.parametrize("role, allowed", [("owner", True), ("accountant", True),
                                           ("viewer", False)])
def test_roles_as_for_invoices(client, company, role, allowed):
    membership = MembershipFactory(company=company, role=role)
    client.force_login(membership.user)
    draft = quote_for(company)
    sent = services.send_document(quote_for(company))
    assert client.get(reverse("quote_list")).status_code == 200
    assert client.get(reverse("quote_detail", args=[sent.pk])).status_code == 200
    for name, target in (("quote_send", draft), ("quote_accept", sent)):
        response = client.post(reverse(name, args=[target.pk]))
        assert response.status_code == (302 if allowed else 403)
    assert Quote.objects.get(pk=draft.pk).is_issued == allowed
    assert Invoice.objects.filter(quote=sent).exists() == allowed


def test_the_admin_shows_a_sent_quote_read_only(admin_client, sent_quote):
    response = admin_client.get(reverse("admin:billing_quote_change", args=[sent_quote.pk]))
    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()


def test_a_quote_is_emailed_with_its_pdf_only(company, run_jobs, mailoutbox):
    client = ClientFactory(company=company, attach_ubl=True)
    quote = services.send_document(QuoteFactory(client=client), email=True)
    run_jobs()
    message = mailoutbox[-1]
    assert message.subject == f"Quote {quote.number} from {company.name}"
    assert "valid until" in message.body
    assert [name for name, _data, _type in message.attachments] == [f"{quote.number}.pdf"]


def test_credit_notes_of_invoices_from_quotes_are_unaffected(sent_quote):
    invoice = services.send_document(services.accept_quote(sent_quote))
    credit = services.send_document(CreditNoteFactory(client=invoice.client, invoice=invoice))
    assert credit.number == "CN-2026-0001"


def test_an_issued_invoice_keeps_the_quote_it_came_from(sent_quote):
    invoice = services.send_document(services.accept_quote(sent_quote))
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE billing_invoice SET quote_id = NULL WHERE id = %s", [invoice.pk])
    assert Invoice.objects.get(pk=invoice.pk).quote_id == sent_quote.pk


# --- In a real browser ---------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_create_send_and_accept_a_quote_in_the_browser(page, owner):  # noqa: F811
    import re

    from playwright.sync_api import expect

    from .test_browser import log_in

    ClientFactory(company=owner.company, name="Boulangerie Martin")
    configure_numbering(owner.company, quote_pattern="Q-{YYYY}-{counter}")
    log_in(page)
    page.get_by_role("link", name="Quotes", exact=True).click()
    page.get_by_role("link", name="New quote").click()
    page.get_by_label("Client").select_option(label="Boulangerie Martin")
    rows = page.locator("#line-rows tr.line-row:visible")
    rows.nth(0).get_by_label("Description").fill("Website redesign")
    rows.nth(0).get_by_label("Quantity").fill("1")
    rows.nth(0).get_by_label("Unit price").fill("2400")
    rows.nth(0).get_by_label("Tax %").fill("20")
    expect(page.locator("[data-total=total]")).to_have_text("2,880.00\u00a0EUR")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator("[data-preview]")).to_contain_text(
        re.compile(r"number on send: Q-\d{4}-0001 \(preview\)"))
    assert not IssuedNumber.objects.exists()
    page.shot("quote-draft")

    page.get_by_role("button", name="Send…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(re.compile(r"take the number Q-\d{4}-0001"))
    dialog.get_by_role("button", name="Send and issue").click()
    expect(page.locator("[data-number]")).to_have_text(re.compile(r"Q-\d{4}-0001"))
    expect(page.locator("[data-pdf]")).to_have_text("PDF")
    expect(page.locator("[data-einvoice]")).to_have_count(0)
    quote_number = page.locator("[data-number]").inner_text()
    page.shot("quote-sent")

    page.get_by_role("button", name="Accept (draft the invoice)").click()
    expect(page.get_by_text("here is its invoice, as a draft")).to_be_visible()
    expect(page.locator("[data-preview]")).to_contain_text(
        re.compile(r"INV-\d{4}-0001 \(preview\)"))
    expect(page.locator("[data-from-quote]")).to_have_text(quote_number)
    expect(page.locator("[data-document-total]")).to_have_text("2,880.00\u00a0EUR")
    page.shot("invoice-draft")
    invoice = Invoice.objects.get()
    assert invoice.is_draft and invoice.quote.number == quote_number
    assert invoice.quote.state == QuoteState.ACCEPTED


# --- Under concurrency (PostgreSQL) --------------------------------------------------------


class Rollback(Exception):
    """Raised after the allocation to make the whole transaction roll back."""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_quotes_and_invoices_on_one_counter_under_concurrency_stay_whole():
    """8 threads send quotes and invoices drawing from the invoices' counter, a third of them
    rolled back after their number was allocated: the values are 1..N, the audit is clean."""
    from .test_concurrency import run_threads

    client = ClientFactory()
    configure_numbering(client.company, quote_pattern="Q-{YYYY}-{counter}",
                        quotes_share_invoice_counter=True)
    plans = [[((QuoteFactory if (t + i) % 2 else InvoiceFactory)(client=client),
               (t * 6 + i) % 3 == 0) for i in range(6)] for t in range(8)]
    committed = []

    def worker(plan):
        def work():
            for document, roll_back in plan:
                try:
                    with transaction.atomic():
                        services.send_document(document)
                        if roll_back:
                            raise Rollback
                except Rollback:
                    continue
                committed.append(document)
        return work

    run_threads([worker(plan) for plan in plans])
    assert len(committed) == 32
    values = sorted(IssuedNumber.objects.values_list("value", flat=True))
    assert values == list(range(1, 33))
    assert set(IssuedNumber.objects.values_list("kind", flat=True)) == {"invoice", "quote"}
    assert list(run_audit(AuditScope(company_id=client.company_id)).findings) == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_people_accepting_one_quote_at_once_draft_one_invoice():
    from .test_concurrency import run_threads

    quote = services.send_document(QuoteFactory())
    outcomes = []

    def accept():
        try:
            outcomes.append(services.accept_quote(Quote.objects.get(pk=quote.pk)).pk)
        except ValidationError:
            outcomes.append("refused")

    run_threads([accept, accept])
    assert sorted(outcomes, key=str).count("refused") == 1
    assert Invoice.objects.filter(quote=quote).count() == 1
    assert Quote.objects.get(pk=quote.pk).state == QuoteState.ACCEPTED
