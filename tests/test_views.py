"""The pages, through Django's test client: what a user can do and what they are refused."""

import io
import re
from datetime import date, timedelta
from decimal import Decimal

import pypdf
import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from billing.models import Client, CreditNote, EmailDelivery, Invoice, Membership
from billing.services import delete_client, send_document
from counters.models import IssuedNumber, NumberingSettings, NumberingSettingsChange

from .factories import (
    ClientFactory,
    CompanyFactory,
    CreditNoteFactory,
    InvoiceFactory,
    MembershipFactory,
    QuoteFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    return MembershipFactory(role=Membership.Role.OWNER)


@pytest.fixture
def browser(client, member):
    client.force_login(member.user)
    client.company = member.company
    return client


def lines_data(*lines, prefix="lines", initial=0):
    data = {f"{prefix}-TOTAL_FORMS": len(lines), f"{prefix}-INITIAL_FORMS": initial,
            f"{prefix}-MIN_NUM_FORMS": 0, f"{prefix}-MAX_NUM_FORMS": 1000}
    for i, (description, quantity, price, rate) in enumerate(lines):
        data.update({f"{prefix}-{i}-description": description, f"{prefix}-{i}-quantity": quantity,
                     f"{prefix}-{i}-unit_price": price, f"{prefix}-{i}-tax_rate": rate})
        if str(rate) == "0":  # a line without tax is zero rated
            data[f"{prefix}-{i}-tax_category"] = "Z"
    return data


def text_of(response):
    return response.content.decode()


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def test_pages_require_login(client):
    response = client.get(reverse("invoice_list"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_a_user_without_a_company_is_told_so(client):
    client.force_login(UserFactory())
    response = client.get(reverse("home"))
    assert response.status_code == 403 and "not a member of any company" in text_of(response)


def test_create_a_client_and_find_it(browser):
    response = browser.post(reverse("client_create"), {"name": "Épicerie <b>Nord</b>",
                                                      "email": "shop@nord.example"})
    client = Client.objects.get()
    assert response.status_code == 302 and client.company == browser.company
    listing = text_of(browser.get(reverse("client_list"), {"q": "picerie"}))
    assert "Épicerie &lt;b&gt;Nord&lt;/b&gt;" in listing  # escaped, never raw HTML
    assert "No client matches" in text_of(browser.get(reverse("client_list"), {"q": "zzz"}))


def test_a_client_without_documents_is_deleted_and_one_with_documents_is_kept(
        browser, client):
    mistaken, kept = (ClientFactory(company=browser.company) for _ in range(2))
    InvoiceFactory(client=kept)  # a draft names it
    page = text_of(browser.get(reverse("client_detail", args=[mistaken.pk])))
    assert "data-delete-client" in page
    # A page with documents offers no delete; a request anyway is refused with the reason.
    assert "data-delete-client" not in text_of(
        browser.get(reverse("client_detail", args=[kept.pk])))
    response = browser.post(reverse("client_delete", args=[kept.pk]), follow=True)
    assert "has documents or recurring invoices" in text_of(response)
    assert Client.objects.filter(pk=kept.pk).exists()

    response = browser.post(reverse("client_delete", args=[mistaken.pk]), follow=True)
    assert f"Client {mistaken.name} deleted." in text_of(response)
    assert not Client.objects.filter(pk=mistaken.pk).exists()
    # A second click finds the client gone (not found, never a server error), and the service
    # itself, reached by a request that raced the first one, is done without an error.
    assert browser.post(reverse("client_delete", args=[mistaken.pk])).status_code == 404
    delete_client(mistaken)
    # A client that only a quote names is offered no delete either.
    quoted = ClientFactory(company=browser.company)
    QuoteFactory(client=quoted)
    assert "data-delete-client" not in text_of(
        browser.get(reverse("client_detail", args=[quoted.pk])))

    viewer = MembershipFactory(company=browser.company, role=Membership.Role.VIEWER)
    client.force_login(viewer.user)
    assert client.post(reverse("client_delete", args=[kept.pk])).status_code == 403
    assert browser.get(reverse("client_delete", args=[kept.pk])).status_code == 405


def test_a_client_form_with_bad_input_keeps_what_was_typed(browser):
    response = browser.post(reverse("client_create"), {"name": "", "email": "not-an-email"})
    body = text_of(response)
    assert response.status_code == 200 and "This field is required." in body
    assert "Enter a valid email address." in body and 'value="not-an-email"' in body
    assert not Client.objects.exists()


def test_create_an_invoice_draft_with_two_lines(browser):
    client = ClientFactory(company=browser.company)
    data = {"client": client.pk, "currency": "eur", "notes": "",
            **lines_data(("Design", "2", "150.00", "20"), ("Hosting", "1", "19.99", "5.5"))}
    response = browser.post(reverse("invoice_create"), data)
    invoice = Invoice.objects.get()
    assert response.status_code == 302
    assert (invoice.state, invoice.number, invoice.currency) == ("draft", "", "EUR")
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
        Decimal("319.99"), Decimal("61.10"), Decimal("381.09"))
    page = text_of(browser.get(reverse("invoice_detail", args=[invoice.pk])))
    assert "number on send: <strong class=\"preview-number\">INV-" in page
    assert not IssuedNumber.objects.exists()


def test_invalid_lines_are_refused_with_a_message_and_nothing_is_saved(browser):
    client = ClientFactory(company=browser.company)
    data = {"client": client.pk, "currency": "EUR",
            **lines_data(("Design", "-2", "abc", "20"))}
    response = browser.post(reverse("invoice_create"), data)
    body = text_of(response)
    assert response.status_code == 200
    assert "Ensure this value is greater than or equal to 0.001." in body
    assert "Enter a number." in body
    assert not Invoice.objects.exists()
    empty = browser.post(reverse("invoice_create"), {"client": client.pk, "currency": "EUR",
                                                     **lines_data()})
    assert "A document needs at least one line." in text_of(empty)


def test_live_totals_use_the_model_rounding(browser):
    data = {"currency": "EUR", **lines_data(("a", "0.335", "3.00", "0"), ("b", "1", "10.05",
                                                                            "5.5"))}
    body = text_of(browser.post(reverse("invoice_totals"), data))
    assert 'data-total="subtotal">11.06' in body and 'data-total="total">11.61' in body


def test_send_assigns_the_number_and_locks_the_document(
        browser, mailoutbox, run_jobs):
    draft = InvoiceFactory(client=ClientFactory(company=browser.company))
    url = reverse("invoice_send", args=[draft.pk])
    page = text_of(browser.post(url, {"email": "on"}, follow=True))
    run_jobs()
    invoice = Invoice.objects.get(pk=draft.pk)
    assert invoice.number == "INV-" + invoice.issue_date.strftime("%Y") + "-0001"
    assert f"{invoice.number} issued on" in page and "can no longer be edited" in page
    assert len(mailoutbox) == 1 and mailoutbox[0].to == [draft.client.email]
    again = text_of(browser.post(url, follow=True))
    assert "Not sent:" in again and "already been issued" in again
    edit = text_of(browser.get(reverse("invoice_edit", args=[draft.pk]), follow=True))
    assert "can no longer be edited" in edit
    crafted = browser.post(reverse("invoice_edit", args=[draft.pk]), {
        "client": draft.client_id, "currency": "USD", **lines_data(("x", "1", "1", "0"))})
    assert crafted.status_code == 302
    deleted = text_of(browser.post(reverse("invoice_delete", args=[draft.pk]), follow=True))
    assert "can no longer be changed or deleted" in deleted
    invoice.refresh_from_db()
    assert invoice.currency == "EUR" and invoice.lines.count() == 1


def test_a_failed_send_leaves_the_draft_as_it_was(browser):
    draft = InvoiceFactory(client=ClientFactory(company=browser.company), lines=[])
    page = text_of(browser.post(reverse("invoice_send", args=[draft.pk]), follow=True))
    assert "Not sent: Add at least one line before sending." in page
    draft.refresh_from_db()
    assert draft.is_draft and draft.number == "" and not IssuedNumber.objects.exists()


def test_deleting_a_draft(browser):
    draft = InvoiceFactory(client=ClientFactory(company=browser.company))
    page = text_of(browser.post(reverse("invoice_delete", args=[draft.pk]), follow=True))
    assert "Draft deleted" in page and not Invoice.objects.exists()


def test_pdf_of_an_issued_invoice_and_of_a_draft(browser):
    client = ClientFactory(company=browser.company, name="Nordlicht GmbH")
    invoice = send_document(InvoiceFactory(client=client))
    response = browser.get(reverse("invoice_pdf", args=[invoice.pk]))
    assert response["Content-Type"] == "application/pdf"
    assert f'filename="{invoice.number}.pdf"' in response["Content-Disposition"]
    text = pdf_text(response.content)
    assert invoice.number in text and "Nordlicht GmbH" in text and "240.00" in text
    draft = InvoiceFactory(client=client)
    text = pdf_text(browser.get(reverse("invoice_pdf", args=[draft.pk])).content)
    assert "DRAFT" in text and "INV-" not in text


def test_credit_note_pdf_names_the_corrected_invoice(browser):
    invoice = send_document(InvoiceFactory(client=ClientFactory(company=browser.company)))
    browser.post(reverse("invoice_credit", args=[invoice.pk]), {"what": "open",
                                                                "reason": "Returned"})
    credit_note = send_document(CreditNote.objects.get())
    text = pdf_text(browser.get(reverse("credit_note_pdf", args=[credit_note.pk])).content)
    assert credit_note.number in text and invoice.number in text and "Returned" in text


def test_a_credit_of_more_than_is_left_to_credit_is_refused_as_it_is_drafted(browser):
    invoice = send_document(InvoiceFactory(client=ClientFactory(company=browser.company)))
    left = invoice.subtotal
    response = browser.post(reverse("invoice_credit", args=[invoice.pk]), {
        "what": "amount", "amount": str(left + Decimal("0.01")), "rate": "20.00"})
    assert response.status_code == 200
    assert "more than what is left to credit" in str(response.context["form"].errors["amount"])
    assert not CreditNote.objects.exists()
    browser.post(reverse("invoice_credit", args=[invoice.pk]), {
        "what": "amount", "amount": str(left), "rate": "20.00"})
    assert CreditNote.objects.get().subtotal == left


def test_credit_chosen_lines_then_cancel_the_rest(browser):
    invoice = send_document(InvoiceFactory(
        client=ClientFactory(company=browser.company),
        lines=[{"description": "A", "quantity": 1, "unit_price": 100, "tax_rate": 20},
               {"description": "B", "quantity": 1, "unit_price": 50, "tax_rate": 20}]))
    first_line = invoice.lines.get(description="B")
    response = browser.post(reverse("invoice_credit", args=[invoice.pk]),
                            {"what": "lines", "line": [first_line.pk], "reason": "B returned"})
    credit_note = CreditNote.objects.get()
    assert response["Location"] == reverse("credit_note_detail", args=[credit_note.pk])
    assert credit_note.is_draft and credit_note.total == Decimal("60.00")
    browser.post(reverse("credit_note_send", args=[credit_note.pk]))
    page = text_of(browser.post(reverse("invoice_cancel", args=[invoice.pk]),
                                {"reason": "Client closed"}, follow=True))
    invoice.refresh_from_db()
    assert invoice.state == "cancelled" and invoice.open_amount() == 0
    assert "cancelled by credit note" in page


def test_cancel_needs_a_reason(browser):
    invoice = send_document(InvoiceFactory(client=ClientFactory(company=browser.company)))
    page = text_of(browser.post(reverse("invoice_cancel", args=[invoice.pk]), {"reason": ""},
                                follow=True))
    assert "Say why the invoice is cancelled." in page
    assert Invoice.objects.get(pk=invoice.pk).state == "sent"


def test_mark_paid(browser):
    """Paid in full: a payment of the open amount today, by the method given."""
    invoice = send_document(InvoiceFactory(client=ClientFactory(company=browser.company)))
    paid = {"method": "card", "reference": "POS 7"}
    page = text_of(browser.post(reverse("invoice_mark_paid", args=[invoice.pk]), paid,
                                follow=True))
    assert "marked paid" in page and Invoice.objects.get(pk=invoice.pk).state == "paid"
    payment = invoice.payments.get()
    assert (payment.amount, payment.method, payment.reference) == (invoice.total, "card",
                                                                   "POS 7")
    again = text_of(browser.post(reverse("invoice_mark_paid", args=[invoice.pk]), paid,
                                 follow=True))
    assert "Only a sent invoice can be marked paid" in again


def test_an_email_failure_is_retried_with_backoff_then_failed_shown_and_retried(
        browser, monkeypatch, run_jobs, settings):
    settings.FOLIO_EMAIL_ATTEMPTS, settings.FOLIO_EMAIL_BACKOFF = 3, 60
    client = ClientFactory(company=browser.company)
    draft = InvoiceFactory(client=client)

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("SMTP server refused the connection")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", refuse)
    browser.post(reverse("invoice_send", args=[draft.pk]), {"email": "on"})
    invoice = Invoice.objects.get(pk=draft.pk)
    assert invoice.state == "sent"  # a failed delivery never un-issues
    waits = []
    for attempt in (1, 2):
        before = timezone.now()
        run_jobs()
        delivery = EmailDelivery.objects.get()
        assert (delivery.status, delivery.attempts) == ("pending", attempt)
        assert "refused" in delivery.error and delivery.claimed_at is None
        job = DBTaskResult.objects.get(status="READY")  # the next attempt, deferred
        assert job.run_after == delivery.next_attempt_at
        waits.append(round((job.run_after - before).total_seconds() / 60))
        run_jobs()  # not due yet: nothing runs
        assert EmailDelivery.objects.get().attempts == attempt
        DBTaskResult.objects.filter(pk=job.pk).update(run_after=timezone.now())  # time passes
    assert waits == [1, 2]  # 60 s, then twice as long
    run_jobs()
    delivery = EmailDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert not DBTaskResult.objects.filter(status="READY").exists()  # it ended
    page = text_of(browser.get(reverse("invoice_detail", args=[draft.pk])))
    assert 'data-delivery="failed"' in page and "SMTP server refused" in page
    assert "3 attempts" in page and f'data-retry-delivery="{delivery.pk}"' in page
    monkeypatch.undo()
    retry = text_of(browser.post(reverse("invoice_email", args=[draft.pk]),
                                 {"delivery": delivery.pk}, follow=True))
    assert f"The e-mail to {client.email} is on its way" in retry
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)  # the same one, re-queued
    assert DBTaskResult.objects.filter(status="READY").count() == 1
    run_jobs()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error) == ("sent", 1, "")
    assert len(mail.outbox) == 1 and EmailDelivery.objects.count() == 1
    page = text_of(browser.get(reverse("invoice_detail", args=[draft.pk])))
    assert 'data-delivery="sent"' in page and "data-retry-delivery" not in page
    # "E-mail again" is a new delivery.
    browser.post(reverse("invoice_email", args=[draft.pk]))
    run_jobs()
    assert len(mail.outbox) == 2 and EmailDelivery.objects.filter(status="sent").count() == 2


def test_a_client_without_an_address_fails_at_once(browser, run_jobs):
    draft = InvoiceFactory(client=ClientFactory(company=browser.company, email=""))
    browser.post(reverse("invoice_send", args=[draft.pk]), {"email": "on"})
    run_jobs()
    delivery = EmailDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "no e-mail address" in delivery.error


def test_a_viewer_cannot_retry_a_delivery(browser, member, run_jobs):
    draft = InvoiceFactory(client=ClientFactory(company=browser.company, email=""))
    browser.post(reverse("invoice_send", args=[draft.pk]), {"email": "on"})
    run_jobs()
    delivery = EmailDelivery.objects.get()
    Membership.objects.filter(pk=member.pk).update(role="viewer")
    page = text_of(browser.get(reverse("invoice_detail", args=[draft.pk])))
    assert 'data-delivery="failed"' in page and "data-retry-delivery" not in page
    response = browser.post(reverse("invoice_email", args=[draft.pk]),
                            {"delivery": delivery.pk})
    assert response.status_code == 403
    assert DBTaskResult.objects.filter(status="READY").count() == 0
    assert EmailDelivery.objects.get().status == "failed"


def test_a_pending_email_without_a_worker_says_so(browser):
    draft = InvoiceFactory(client=ClientFactory(company=browser.company))
    browser.post(reverse("invoice_send", args=[draft.pk]), {"email": "on"})
    page = text_of(browser.get(reverse("invoice_detail", args=[draft.pk])))
    assert 'data-delivery="pending"' in page and "No worker has taken" not in page
    EmailDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=11))
    page = text_of(browser.get(reverse("invoice_detail", args=[draft.pk])))
    assert "No worker has taken this e-mail yet" in page


def test_document_list_filters(browser):
    client = ClientFactory(company=browser.company, name="Alpha")
    other = ClientFactory(company=browser.company, name="Beta")
    sent = send_document(InvoiceFactory(client=client))
    InvoiceFactory(client=other)
    body = text_of(browser.get(reverse("invoice_list"), {"state": "sent"}))
    assert sent.number in body and "<td>Beta</td>" not in body
    body = text_of(browser.get(reverse("invoice_list"), {"client": other.pk}))
    assert "<td>Beta</td>" in body and sent.number not in body
    body = text_of(browser.get(reverse("invoice_list"), {"date_from": "2000-01-01",
                                                         "date_to": "2000-12-31"}))
    assert "Nothing matches these filters." in body
    body = text_of(browser.get(reverse("invoice_list"), {"date_from": "yesterday"}))
    assert "Enter a valid date." in body
    stranger = ClientFactory(name="Stranger")  # another company's client: refused by name
    body = text_of(browser.get(reverse("invoice_list"), {"client": stranger.pk}))
    assert "Select a valid choice" in body and sent.number in body


def options_of(body, name):
    """(value, selected, label) of each option of the page's <select name="``name``">."""
    select = body.split(f'<select name="{name}"')[1].split("</select>")[0]
    return [(value, bool(selected), label) for value, selected, label
            in re.findall(r'<option value="([^"]*)"( selected)?>([^<]*)</option>', select)]


def test_the_list_badges_each_state_and_an_overdue_invoice(browser, issue_on):
    client = ClientFactory(company=browser.company, name="<b>Gamma</b>")
    issue_on(date(2026, 1, 5))  # due 30 days later: long past
    overdue = send_document(InvoiceFactory(client=client))
    InvoiceFactory(client=client)
    issue_on(date(2026, 3, 1))
    body = text_of(browser.get(reverse("invoice_list")))
    assert overdue.due_date < date(2026, 3, 1)
    assert body.count('<span class="badge badge-sent">Sent</span> '
                      '<span class="badge badge-overdue">Overdue</span>') == 1
    assert body.count('<span class="badge badge-draft">Draft</span>') == 1
    assert body.count("badge-overdue") == 1
    # Escaped in the rows and in the client filter's options alike.
    assert body.count("<td>&lt;b&gt;Gamma&lt;/b&gt;</td>") == 2
    assert "&lt;b&gt;Gamma&lt;/b&gt;</option>" in body and "<b>Gamma</b>" not in body


def test_the_state_filter_keeps_the_chosen_state(browser):
    def states(url_name, query):
        return options_of(text_of(browser.get(reverse(url_name), query)), "state")

    assert states("invoice_list", {}) == [
        ("", True, "Any"), ("draft", False, "Draft"), ("sent", False, "Sent"),
        ("paid", False, "Paid"), ("cancelled", False, "Cancelled")]
    chosen = states("invoice_list", {"state": "sent"})
    assert [value for value, selected, _label in chosen if selected] == ["sent"]
    assert not any(selected for _value, selected, _label
                   in states("invoice_list", {"state": "<unknown>"}))
    assert states("credit_note_list", {"state": "draft"}) == [
        ("", False, "Any"), ("draft", True, "Draft"), ("sent", False, "Sent")]


def test_the_client_filter_offers_the_companys_clients_and_keeps_the_chosen_one(browser):
    company = browser.company
    kept = ClientFactory(company=company, name="Kept")
    alpha = ClientFactory(company=company, name="Alpha")
    zeta = ClientFactory(company=company, name="Zeta & <Co>")
    ClientFactory(name="Elsewhere")  # another company's client
    url = reverse("invoice_list")
    assert options_of(text_of(browser.get(url, {"client": kept.pk})), "client") == [
        ("", False, "Any"), (str(alpha.pk), False, "Alpha"), (str(kept.pk), True, "Kept"),
        (str(zeta.pk), False, "Zeta &amp; &lt;Co&gt;")]
    Client.objects.filter(pk=alpha.pk).update(name="Aleph")  # however a client is written
    assert options_of(text_of(browser.get(url)), "client") == [
        ("", True, "Any"), (str(alpha.pk), False, "Aleph"), (str(kept.pk), False, "Kept"),
        (str(zeta.pk), False, "Zeta &amp; &lt;Co&gt;")]


def test_the_navigation_marks_the_page_shown_and_the_companys_language(browser, member):
    def nav(user, url_name):
        browser.force_login(user)
        body = text_of(browser.get(reverse(url_name)))
        return (body.split("<html lang=")[1][:5],
                body.split('<nav class="nav"')[1].split("</nav>")[0])

    staff = MembershipFactory(company=member.company, user=UserFactory(is_staff=True)).user
    lang, links = nav(member.user, "invoice_list")
    assert lang == '"en">'
    assert f'<a href="{reverse("invoice_list")}" aria-current="page">Invoices</a>' in links
    assert links.count("aria-current") == 1 and "Audit" not in links
    assert f'<a href="{reverse("audit")}">Audit</a>' in nav(staff, "invoice_list")[1]
    lang, links = nav(member.user, "home")
    assert f'<a href="{reverse("home")}" aria-current="page">Dashboard</a>' in links
    assert links.count("aria-current") == 1
    member.company.locale = "fr"
    member.company.save()
    assert nav(member.user, "home")[0] == '"fr">'  # the company's language, for screen readers


def test_numbering_settings_page_validates_previews_and_records(browser):
    url = reverse("numbering_settings")
    form = {"invoice_pattern": "INV-{YYYY}-{counter}", "credit_note_pattern": "CN-{YYY}",
            "padding": "4", "reset_period": "yearly", "fiscal_year_start": "1"}
    page = text_of(browser.post(url, form))
    assert "Unknown token {YYY}" in page
    preview = text_of(browser.post(reverse("numbering_preview"),
                                   {**form, "credit_note_pattern": "AV-{YYYY}-{counter}",
                                    "padding": "6"}))
    assert 'data-example="credit_note">AV-' in preview and "-000001" in preview
    collide = text_of(browser.post(url, {**form, "credit_note_pattern": "INV-{YYYY}-{counter}"}))
    assert "would produce the same numbers" in collide
    response = browser.post(url, {**form, "credit_note_pattern": "AV-{YYYY}-{counter}"})
    assert response.status_code == 302
    numbering = NumberingSettings.objects.get(company=browser.company)
    assert numbering.credit_note_pattern == "AV-{YYYY}-{counter}"
    change = NumberingSettingsChange.objects.get()
    assert str(change.changed_by.pk) == browser.session["_auth_user_id"]
    # The history says what changed, with the fields' labels: old -> new.
    history = text_of(browser.get(url)).split("data-changes>")[1].split("</ul>")[0]
    assert history == "<li>Credit note pattern: CN-{YYYY}-{counter} → AV-{YYYY}-{counter}</li>"


def test_only_owners_change_numbering_settings(client):
    accountant = MembershipFactory(role=Membership.Role.ACCOUNTANT)
    client.force_login(accountant.user)
    response = client.post(reverse("numbering_settings"), {
        "invoice_pattern": "X-{counter}", "credit_note_pattern": "Y-{counter}", "padding": 1,
        "reset_period": "never", "fiscal_year_start": 1})
    assert response.status_code == 403
    assert not NumberingSettingsChange.objects.exists()


def test_audit_page_is_for_staff_and_shows_the_state_of_the_books(browser, member):
    send_document(InvoiceFactory(client=ClientFactory(company=browser.company)))
    assert browser.get(reverse("audit")).status_code == 403
    member.user.is_staff = True
    member.user.save()
    page = text_of(browser.get(reverse("audit")))
    assert 'data-audit="clean"' in page and "All series complete" in page
    from counters.dbguards import guards_lifted

    with guards_lifted(connection), connection.cursor() as cursor:
        cursor.execute("UPDATE billing_invoice SET total = 1, subtotal = 1, tax_total = 0")
    page = text_of(browser.get(reverse("audit")))
    assert 'data-audit="findings"' in page and "was changed after it was issued" in page


def test_another_companys_documents_are_not_found(browser):
    stranger = InvoiceFactory()  # another company
    for name in ("invoice_detail", "invoice_edit", "invoice_pdf"):
        assert browser.get(reverse(name, args=[stranger.pk])).status_code == 404
    assert browser.post(reverse("invoice_send", args=[stranger.pk])).status_code == 404
    assert browser.get(reverse("client_detail", args=[stranger.client_id])).status_code == 404
    stranger.refresh_from_db()
    assert stranger.is_draft


def test_a_credit_note_cannot_reference_another_companys_invoice(browser):
    foreign = send_document(InvoiceFactory())
    own_client = ClientFactory(company=browser.company)
    response = browser.post(reverse("credit_note_create"), {
        "client": own_client.pk, "invoice": foreign.pk, "currency": "EUR",
        **lines_data(("x", "1", "1", "0"))})
    assert "Select a valid choice" in text_of(response)
    assert not CreditNote.objects.exists()


def test_switching_company(client):
    user = UserFactory()
    first = MembershipFactory(user=user, company=CompanyFactory(name="Aardvark"))
    second = MembershipFactory(user=user, company=CompanyFactory(name="Zebra"))
    client.force_login(user)
    assert "<h1>Aardvark</h1>" in text_of(client.get(reverse("home")))
    client.post(reverse("switch_company"), {"company": second.company_id})
    assert "<h1>Zebra</h1>" in text_of(client.get(reverse("home")))
    refused = client.post(reverse("switch_company"), {"company": CompanyFactory().pk},
                          follow=True)
    assert "You are not a member of that company." in text_of(refused)
    assert "<h1>Zebra</h1>" in text_of(refused)  # still in the company chosen before
    client.post(reverse("switch_company"), {"company": first.company_id})
    assert "<h1>Aardvark</h1>" in text_of(client.get(reverse("home")))


SIZES = (1, 10, 30)  # past a list page's 25 rows, the dashboard's 6 and a client page's 25


def queries_at_sizes(browser, page_with, django_assert_num_queries):
    """
    The number of queries of a GET of ``page_with(n)``, the URL of a page that shows n of
    what it lists, the same at each of SIZES (checked): the page reads its rows in bulk.
    """
    url = page_with(SIZES[0])
    browser.get(url)  # the first view reads what the process keeps (numbering settings)
    with CaptureQueriesContext(connection) as first:
        assert browser.get(url).status_code == 200
    expected = len(first.captured_queries)
    for size in SIZES[1:]:
        url = page_with(size)
        with django_assert_num_queries(expected):
            assert browser.get(url).status_code == 200
    return expected


def growing(build):
    """``page_with(n)`` for ``queries_at_sizes``: calls ``build(k)`` to add the k missing."""
    built = 0

    def page_with(size):
        nonlocal built
        url = build(size - built)
        built = size
        return url
    return page_with


def documents_with_their_clients(company, url):
    def build(count):
        for _ in range(count):
            client = ClientFactory(company=company)
            send_document(InvoiceFactory(client=client))
            InvoiceFactory(client=client)
            send_document(CreditNoteFactory(client=client))
        return url
    return growing(build)


# The most queries each page may take: three to know who asks (the session, the user, the
# memberships with their companies), then the page's own: a list reads its rows and the
# client filter's options, the dashboard its sums (the invoices', what the credited or paid
# ones still owe, the payments) and two tables.
@pytest.mark.parametrize("url_name, query, most", [
    ("invoice_list", "", 5), ("invoice_list", "?state=sent&q=INV&date_from=2000-01-01", 5),
    ("credit_note_list", "", 5), ("client_list", "", 4), ("home", "", 8),
])
def test_list_pages_use_a_constant_number_of_queries(browser, django_assert_num_queries,
                                                     url_name, query, most):
    page_with = documents_with_their_clients(browser.company, reverse(url_name) + query)
    assert queries_at_sizes(browser, page_with, django_assert_num_queries) <= most


def test_a_list_filtered_by_client_uses_a_constant_number_of_queries(
        browser, django_assert_num_queries):
    chosen = ClientFactory(company=browser.company)
    others = documents_with_their_clients(browser.company, "")

    def build(count):
        others(count)
        InvoiceFactory.create_batch(count, client=chosen)
        return f"{reverse('invoice_list')}?client={chosen.pk}"

    # and the chosen client, checked against the company's
    assert queries_at_sizes(browser, growing(build), django_assert_num_queries) <= 6


def test_a_client_page_uses_a_constant_number_of_queries(browser, django_assert_num_queries):
    client = ClientFactory(company=browser.company)

    def build(count):
        for _ in range(count):
            send_document(InvoiceFactory(client=client))
            send_document(CreditNoteFactory(client=client))
        return reverse("client_detail", args=[client.pk])

    # the client, two tables, two sums
    assert queries_at_sizes(browser, growing(build), django_assert_num_queries) <= 8


@pytest.mark.parametrize("issued", [False, True], ids=["draft", "issued"])
@pytest.mark.parametrize("factory, url_name", [(InvoiceFactory, "invoice_detail"),
                                               (CreditNoteFactory, "credit_note_detail")])
def test_a_document_page_uses_a_constant_number_of_queries(
        browser, django_assert_num_queries, factory, url_name, issued):
    """A document with n lines; an issued one with n e-mails and, an invoice, n credit notes."""
    def page_with(size):
        document = factory(client=ClientFactory(company=browser.company), lines=[
            {"description": f"line {i}", "quantity": 1, "unit_price": i + 1,
             "tax_rate": (0, 5, 20)[i % 3], "tax_category": ("Z", "S", "S")[i % 3]}
            for i in range(size)])
        if issued:
            document = send_document(document)
            for _ in range(size):
                EmailDelivery.objects.create(company=browser.company, kind=document.kind,
                                             document_id=document.pk, recipient="a@b.example")
                if factory is InvoiceFactory:
                    CreditNoteFactory(client=document.client, invoice=document)
        return reverse(url_name, args=[document.pk])

    # An issued invoice: its payments, what they add up to and its credit notes' sums.
    assert queries_at_sizes(browser, page_with, django_assert_num_queries) <= 10


def test_a_client_page_shows_the_latest_documents_and_links_to_all(browser):
    client = ClientFactory(company=browser.company, name="Delta")
    first = send_document(InvoiceFactory(client=client))
    InvoiceFactory.create_batch(25, client=client)
    url = reverse("client_detail", args=[client.pk])
    page = text_of(browser.get(url))
    assert page.count("<tr>") == 25 + 1  # header and the latest 25: not the first invoice
    assert first.number not in page
    assert f'href="{reverse("invoice_list")}?client={client.pk}" data-all="invoice"' in page
    assert 'data-all="credit_note"' not in page  # no credit notes: nothing more to show


def test_error_pages_are_friendly(client, settings):
    settings.DEBUG = False
    client.force_login(MembershipFactory().user)
    response = client.get("/invoices/999999/")
    assert response.status_code == 404 and "Page not found" in text_of(response)


def test_amounts_and_dates_follow_the_company_locale(browser, issue_on):
    browser.company.locale = "de"
    browser.company.save()
    issue_on(date(2026, 3, 5))
    invoice = send_document(InvoiceFactory(
        client=ClientFactory(company=browser.company),
        lines=[{"description": "x", "quantity": 1, "unit_price": Decimal("1234.50"),
                "tax_rate": 0, "tax_category": "Z"}]))
    page = text_of(browser.get(reverse("invoice_detail", args=[invoice.pk])))
    # German: "." groups thousands, "," marks the decimals; dates read "j. F Y"; the labels
    # come from the German catalog.
    assert '<td class="num" data-document-total>1.234,50\xa0EUR</td>' in page
    assert "<dt>Ausstellungsdatum</dt><dd>5. März 2026</dd>" in page
    assert "<dt>Fälligkeitsdatum</dt><dd>4. April 2026</dd>" in page  # 30 days later


def test_lists_page_without_counting_everything(browser):
    client = ClientFactory(company=browser.company)
    InvoiceFactory.create_batch(30, client=client)
    first = text_of(browser.get(reverse("invoice_list")))
    assert "Page 1 (1–25)" in first and "page=2" in first
    second = text_of(browser.get(reverse("invoice_list"), {"page": 2}))
    assert "Page 2 (26–30)" in second and "page=3" not in second and "page=1" in second
    assert "Page 1 (1–25)" in text_of(browser.get(reverse("invoice_list"), {"page": "abc"}))
    beyond = browser.get(reverse("invoice_list"), {"page": "9" * 30})
    assert beyond.status_code == 200 and "Nothing here yet." in text_of(beyond)


def test_owners_manage_members_but_never_remove_the_last_owner(browser, member):
    newcomer = UserFactory(username="newcomer", email="new@example.com")
    MembershipFactory(user=newcomer, company=member.company, role="viewer")
    newcomer_row = Membership.objects.get(user=newcomer)
    page = text_of(browser.post(reverse("members"), {"member": newcomer_row.pk,
                                                    "role": "accountant"}, follow=True))
    assert "newcomer is now Accountant." in page
    assert Membership.objects.get(user=newcomer, company=member.company).role == "accountant"
    page = text_of(browser.post(reverse("members"), {"remove": member.pk}, follow=True))
    assert "needs at least one owner" in page
    page = text_of(browser.post(reverse("members"), {"member": member.pk, "role": "viewer"},
                                follow=True))
    assert "needs at least one owner" in page
    assert Membership.objects.get(pk=member.pk).role == "owner"
    page = text_of(browser.post(reverse("members"), {"remove": newcomer_row.pk}, follow=True))
    assert "newcomer removed." in page and not Membership.objects.filter(user=newcomer).exists()


def test_live_totals_of_a_saved_draft_count_its_existing_lines(browser):
    draft = InvoiceFactory(client=ClientFactory(company=browser.company))
    line = draft.lines.get()
    data = {"currency": "EUR", **lines_data(("Consulting", "2", "150.00", "20"), initial=1),
            "lines-0-id": line.pk, "lines-0-document": draft.pk}
    url = reverse("invoice_totals") + f"?pk={draft.pk}"
    body = text_of(browser.post(url, data))
    assert 'data-total="total">360.00' in body
    foreign = InvoiceFactory()
    assert browser.post(reverse("invoice_totals") + f"?pk={foreign.pk}", data).status_code \
        == 404


@pytest.mark.parametrize("name", ["client_create", "invoice_create", "company_settings",
                                  "numbering_settings", "recurring_invoice_create"])
def test_every_help_text_is_the_description_of_its_field(browser, name):
    """Screen readers read a field's help through ``aria-describedby``: each id it names
    exists on the page."""
    html = browser.get(reverse(name)).content.decode()
    described = re.findall(r'aria-describedby="([^"]+)"', html)
    assert described
    for ids in described:
        for id_ in ids.split():
            assert f'id="{id_}"' in html, id_


def test_an_address_that_takes_a_form_opened_directly_shows_a_way_back(browser):
    """Enter in the address bar after a refused payment form: not a blank 405."""
    invoice = send_document(InvoiceFactory(client=ClientFactory(company=browser.company)))
    response = browser.get(reverse("invoice_payment", args=[invoice.pk]))
    assert response.status_code == 405 and response["Allow"] == "POST"
    html = response.content.decode()
    assert f'href="{reverse("invoice_detail", args=[invoice.pk])}"' in html
    assert "has no page of its own" in html


def test_a_credit_amount_is_bounded_by_what_is_left_at_its_rate(browser):
    """100 at 20 % and 100 at 5.5 %: a credit of 150 at 20 % would give back tax never
    charged at that rate."""
    invoice = send_document(InvoiceFactory(
        client=ClientFactory(company=browser.company),
        lines=[{"description": "A", "quantity": 1, "unit_price": 100, "tax_rate": 20},
               {"description": "B", "quantity": 1, "unit_price": 100,
                "tax_rate": Decimal("5.5")}]))
    response = browser.post(reverse("invoice_credit", args=[invoice.pk]), {
        "what": "amount", "amount": "150.00", "rate": "20.00"})
    assert response.status_code == 200 and "amount" in response.context["form"].errors
    assert not CreditNote.objects.exists()
    browser.post(reverse("invoice_credit", args=[invoice.pk]), {
        "what": "amount", "amount": "100.00", "rate": "20.00"})
    assert CreditNote.objects.get().subtotal == Decimal("100.00")


def test_a_due_date_that_has_passed_since_it_was_set_is_kept_when_the_draft_is_edited(browser):
    """The rule is on setting a date: a draft whose due date passed while it waited can
    still be edited (and the date moved) and sent."""
    past = timezone.localdate() - timedelta(days=10)
    draft = InvoiceFactory(client=ClientFactory(company=browser.company))
    Invoice.objects.filter(pk=draft.pk).update(due_date=past)
    data = {"client": draft.client_id, "currency": "EUR", "due_date": past.isoformat(),
            "notes": "Still due", **lines_data(("Work", "1", "100", "20"))}
    response = browser.post(reverse("invoice_edit", args=[draft.pk]), data)
    assert response.status_code == 302
    assert Invoice.objects.get(pk=draft.pk).notes == "Still due"
    moved = browser.post(reverse("invoice_edit", args=[draft.pk]), {
        **data, "due_date": (past - timedelta(days=1)).isoformat()})
    assert moved.status_code == 200 and "due_date" in moved.context["form"].errors
    assert send_document(draft).due_date == past


def test_a_new_document_and_schedule_start_in_the_companys_currency_and_today(browser):
    Company = type(browser.company)
    Company.objects.filter(pk=browser.company.pk).update(currency="CHF")
    for name in ("invoice_create", "quote_create", "recurring_invoice_create"):
        form = browser.get(reverse(name)).context["form"]
        assert form["currency"].value() == "CHF", name
    form = browser.get(reverse("recurring_invoice_create")).context["form"]
    assert form["start_date"].value() == timezone.localdate()


@pytest.mark.parametrize("name", ["invoice_totals", "recurring_invoice_totals"])
def test_the_live_totals_say_when_a_line_is_left_out(browser, name):
    good = lines_data(("Work", "2", "10", "20"), ("Parts", "1", "5", "20"))
    html = browser.post(reverse(name), good).content.decode()
    assert "data-unread" not in html
    html = browser.post(reverse(name), {**good, "lines-1-unit_price": "abc"}).content.decode()
    assert "24.00" in html and "data-unread" in html and "left out" in html
