"""The admin issues through billing.services and shows drafts' numbers as previews only."""

import pytest
from django.db.models import ProtectedError
from django.urls import reverse

from billing.models import Invoice
from billing.services import send_document
from counters.models import IssuedNumber, NumberingSettings, NumberingSettingsChange, NumberJump
from counters.services import set_next_number

from .factories import InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_draft_change_page_shows_a_preview_not_a_number(admin_client):
    draft = InvoiceFactory()
    page = admin_client.get(reverse("admin:billing_invoice_change", args=[draft.pk]))
    assert "number on send: INV-" in page.content.decode()
    assert not IssuedNumber.objects.exists()


def test_send_action_issues_through_the_service(admin_client):
    drafts = [InvoiceFactory(), InvoiceFactory(lines=[])]
    response = admin_client.post(reverse("admin:billing_invoice_changelist"), {
        "action": "send_selected", "_selected_action": [d.pk for d in drafts]}, follow=True)
    text = response.content.decode()
    assert "1 document issued." in text and "Add at least one line" in text
    assert Invoice.objects.get(pk=drafts[0].pk).number.endswith("-0001")
    assert Invoice.objects.get(pk=drafts[1].pk).is_draft


def test_issued_documents_are_read_only_in_the_admin(admin_client):

    sent = send_document(InvoiceFactory())
    url = reverse("admin:billing_invoice_change", args=[sent.pk])
    admin_client.post(url, {"notes": "changed", "due_date": "2030-01-01"})
    assert Invoice.objects.get(pk=sent.pk).notes == ""
    assert admin_client.get(reverse("admin:billing_invoice_delete", args=[sent.pk])).status_code \
        == 403


def test_settings_admin_validates_and_records_changes(admin_client):
    numbering = NumberingSettings.for_company(InvoiceFactory().company_id)
    url = reverse("admin:counters_numberingsettings_change", args=[numbering.pk])
    form = {"company": numbering.company_id, "name": numbering.name,
            "invoice_pattern": "INV-{YYYY}-{countr}",
            "credit_note_pattern": "CN-{YYYY}-{counter}", "padding": 4, "reset_period": "yearly",
            "fiscal_year_start": 1}
    page = admin_client.post(url, form)
    assert "Unknown token {countr}" in page.content.decode()
    response = admin_client.post(url, {**form, "invoice_pattern": "FA-{YYYY}-{counter}"})
    assert response.status_code == 302
    numbering.refresh_from_db()
    assert numbering.invoice_pattern == "FA-{YYYY}-{counter}"
    change = NumberingSettingsChange.objects.get()
    assert change.old["invoice_pattern"] == "INV-{YYYY}-{counter}"


def test_set_next_number_action_moves_forward_only(admin_client, issue_on):
    from datetime import date

    from counters.models import Sequence

    issue_on(date(2026, 5, 1))
    first = send_document(InvoiceFactory())
    sequence = Sequence.objects.get()
    url = reverse("admin:counters_sequence_changelist")
    base = {"action": "set_next_number_action", "_selected_action": [sequence.pk], "apply": "1"}
    page = admin_client.post(url, {**base, "next_value": 1, "reason": "typo"})
    assert "can only move forward" in page.content.decode()
    admin_client.post(url, {**base, "next_value": 500, "reason": "Migrated from Sage"})
    jump = NumberJump.objects.get()
    assert (jump.first_value, jump.last_value, jump.reason) == (2, 499, "Migrated from Sage")
    assert send_document(InvoiceFactory(client=first.client)).number == "INV-2026-0500"


def test_the_ledger_cannot_be_edited_in_the_admin(admin_client):

    send_document(InvoiceFactory())
    entry = IssuedNumber.objects.get()
    assert admin_client.get(
        reverse("admin:counters_issuednumber_change", args=[entry.pk])).status_code == 200
    admin_client.post(reverse("admin:counters_issuednumber_change", args=[entry.pk]),
                      {"number": "X"})
    assert IssuedNumber.objects.get().number == entry.number
    assert admin_client.get(
        reverse("admin:counters_issuednumber_delete", args=[entry.pk])).status_code == 403


def test_cancel_action_issues_the_credit_note(admin_client):

    invoice = send_document(InvoiceFactory())
    response = admin_client.post(reverse("admin:billing_invoice_changelist"), {
        "action": "cancel_selected", "_selected_action": [invoice.pk]}, follow=True)
    assert "1 invoice cancelled." in response.content.decode()
    invoice.refresh_from_db()
    assert invoice.state == "cancelled"
    assert invoice.credit_notes.get().number.startswith("CN-")


@pytest.mark.parametrize("model", ["company", "client", "invoice", "creditnote", "emaildelivery"])
def test_every_billing_model_has_an_admin_page(admin_client, model):
    assert admin_client.get(reverse(f"admin:billing_{model}_changelist")).status_code == 200


def test_a_user_who_issued_numbers_cannot_be_deleted_only_deactivated(admin_client):
    issuer, jumper, idle = UserFactory(), UserFactory(), UserFactory()
    draft = InvoiceFactory()
    send_document(draft, user=issuer)
    set_next_number(company_id=draft.company_id, series="invoice", period="", next_value=9,
                    reason="Migrated from the old system", user=jumper)

    page = admin_client.get(reverse("admin:auth_user_delete", args=[issuer.pk]))
    assert page.status_code == 200
    assert "<title>Cannot delete user" in page.content.decode()
    for user in (issuer, jumper):
        with pytest.raises(ProtectedError):
            user.delete()
    issuer.is_active = False
    issuer.save()
    assert IssuedNumber.objects.get().issued_by == issuer  # the ledger still names them
    assert NumberJump.objects.get().created_by == jumper
    idle.delete()  # someone who never issued anything goes as before
