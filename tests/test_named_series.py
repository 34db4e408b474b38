"""
Named series, as a specification: a company may keep several numbering series ("Shop",
"Online", "Madrid"), each with its own patterns, padding, restart and counters; one is the
default. A draft is numbered in the series it chose, else its client's, else the default;
the books record each series under its code and the audit checks each on its own.
"""

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from billing.forms import ClientForm, InvoiceForm
from billing.models import Client, Invoice, Membership
from billing.services import accept_quote, draft_credit_note, send_document
from counters.audit import AuditScope, run_audit
from counters.models import ClientSequence, IssuedNumber, NumberingSettings, Sequence
from counters.services import (
    delete_series,
    make_default_series,
    preview_number,
    save_numbering_settings,
)

from .factories import (
    ClientFactory,
    CompanyFactory,
    InvoiceFactory,
    MembershipFactory,
    QuoteFactory,
    configure_numbering,
)
from .test_concurrency import Rollback, run_threads


def add_series(company, name="Shop", code="SHOP", **fields):
    """A second series of ``company``, made as the numbering page makes it."""
    fields = {"invoice_pattern": f"{code}-{{YYYY}}-{{counter}}",
              "credit_note_pattern": f"{code}-CN-{{YYYY}}-{{counter}}", **fields}
    return save_numbering_settings(NumberingSettings(company=company, name=name, code=code,
                                                     **fields))


# --- Numbering ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_series_counts_on_its_own_and_the_books_keep_them_apart(issue_on):
    issue_on(date(2026, 3, 10))
    client = ClientFactory()
    shop = add_series(client.company)
    numbers = [send_document(InvoiceFactory(client=client, series=series)).number
               for series in (None, shop, shop, None, shop)]
    assert numbers == ["INV-2026-0001", "SHOP-2026-0001", "SHOP-2026-0002", "INV-2026-0002",
                       "SHOP-2026-0003"]
    assert dict(Sequence.objects.values_list("series", "last")) == {"invoice": 2,
                                                                   "SHOP/invoice": 3}
    audit = run_audit(AuditScope(company_id=client.company_id))
    assert {(s.series, s.issued) for s in audit.series} == {("invoice", 2), ("SHOP/invoice", 3)}
    assert list(audit.findings) == []


@pytest.mark.django_db
def test_a_draft_is_numbered_in_its_own_series_else_its_clients_else_the_default(issue_on):
    issue_on(date(2026, 3, 10))
    company = CompanyFactory()
    shop, online = add_series(company), add_series(company, "Online", "WEB")
    walk_in, web_client = ClientFactory(company=company), ClientFactory(company=company,
                                                                        series=online)
    assert send_document(InvoiceFactory(client=walk_in)).number == "INV-2026-0001"
    assert send_document(InvoiceFactory(client=web_client)).number == "WEB-2026-0001"
    chosen = send_document(InvoiceFactory(client=web_client, series=shop))
    assert chosen.number == "SHOP-2026-0001"
    assert Invoice.objects.get(pk=chosen.pk).series == shop  # the issued one records it
    defaulted = send_document(InvoiceFactory(client=walk_in))
    assert Invoice.objects.get(pk=defaulted.pk).series == NumberingSettings.for_company(
        company.pk)


@pytest.mark.django_db
def test_a_credit_note_and_an_accepted_quotes_invoice_stay_in_their_series(issue_on):
    issue_on(date(2026, 3, 10))
    client = ClientFactory()
    shop = add_series(client.company)
    invoice = send_document(InvoiceFactory(client=client, series=shop))
    credit_note = send_document(draft_credit_note(invoice))
    assert credit_note.number == "SHOP-CN-2026-0001"
    quote = send_document(QuoteFactory(client=client, series=shop))
    assert quote.number == "Q-SHOP-2026-0001"  # the derived quote pattern of the series
    drafted = accept_quote(quote)
    assert drafted.series == shop
    assert send_document(drafted).number == "SHOP-2026-0002"


@pytest.mark.django_db
def test_the_preview_shows_the_next_number_of_the_drafts_series(issue_on):
    issue_on(date(2026, 3, 10))
    client = ClientFactory()
    shop = add_series(client.company, padding=6)
    send_document(InvoiceFactory(client=client, series=shop))
    assert preview_number(InvoiceFactory(client=client, series=shop)) == "SHOP-2026-000002"
    assert preview_number(InvoiceFactory(client=client)) == "INV-2026-0001"


@pytest.mark.django_db
def test_per_client_counters_count_per_series(issue_on):
    issue_on(date(2026, 3, 10))
    client = ClientFactory(code="ACME")
    configure_numbering(client.company, invoice_pattern="{YY}-{counter}-{client_ref}-"
                                                        "{client_counter}")
    shop = add_series(client.company, invoice_pattern="S{YY}-{counter}-{client_ref}-"
                                                      "{client_counter}")
    numbers = [send_document(InvoiceFactory(client=client, series=series)).number
               for series in (None, shop, shop)]
    assert numbers == ["26-0001-ACME-001", "S26-0001-ACME-001", "S26-0002-ACME-002"]
    assert dict(ClientSequence.objects.values_list("series", "last")) == {
        "invoice": 1, "SHOP/invoice": 2}
    assert list(run_audit(AuditScope(company_id=client.company_id)).findings) == []


@pytest.mark.django_db
def test_switching_a_series_layout_carries_over_its_own_values_only(issue_on):
    issue_on(date(2026, 3, 10))
    client = ClientFactory()
    shop = add_series(client.company)
    for _ in range(3):
        send_document(InvoiceFactory(client=client))
    send_document(InvoiceFactory(client=client, series=shop))
    shop.shared_counter = True
    shop.credit_note_pattern = "SHOP-C-{YYYY}-{counter}"
    save_numbering_settings(shop)
    # Shop's shared counter continues after Shop's own highest value, not the default's.
    assert send_document(InvoiceFactory(client=client, series=shop)).number == "SHOP-2026-0002"
    assert send_document(InvoiceFactory(client=client)).number == "INV-2026-0004"
    assert list(run_audit(AuditScope(company_id=client.company_id)).findings) == []


@pytest.mark.django_db
def test_a_draft_of_another_companys_series_is_refused():
    mine, theirs = ClientFactory(), ClientFactory()
    foreign = add_series(theirs.company)
    draft = InvoiceFactory(client=mine, series=foreign)
    with pytest.raises(ValidationError) as refused:
        draft.full_clean()
    assert "series" in refused.value.message_dict
    form = InvoiceForm({"client": mine.pk, "series": foreign.pk, "currency": "EUR"},
                       company=mine.company)
    assert "series" not in form.fields  # one series of its own: no choice to make
    add_series(mine.company)
    form = InvoiceForm({"client": mine.pk, "series": foreign.pk, "currency": "EUR"},
                       company=mine.company)
    assert not form.is_valid() and "series" in form.errors
    with pytest.raises(ValidationError, match="numbering series no longer exists"):
        send_document(draft)  # nor is it numbered there, however it got it
    assert not IssuedNumber.objects.exists()


# --- The series themselves -----------------------------------------------------------------


@pytest.mark.django_db
def test_only_the_first_series_goes_without_a_code_and_codes_are_checked():
    company = CompanyFactory()
    NumberingSettings.for_company(company.pk)
    with pytest.raises(ValidationError) as refused:
        add_series(company, code="")
    assert "Give this series a code" in str(refused.value)
    with pytest.raises(ValidationError) as refused:
        add_series(company, code="shop!")
    assert "capital letters and digits" in str(refused.value)
    add_series(company)
    with pytest.raises(ValidationError) as refused:
        add_series(company, name="Shop", code="WEB")
    assert "series of that name" in str(refused.value)


@pytest.mark.django_db
def test_series_whose_numbers_could_collide_are_refused():
    company = CompanyFactory()
    NumberingSettings.for_company(company.pk)
    with pytest.raises(ValidationError) as refused:
        add_series(company, invoice_pattern="INV-{YYYY}-{counter}")
    assert refused.value.message_dict["invoice_pattern"][0].startswith(
        "Numbers of this series could repeat those of the series Main (INV-")
    with pytest.raises(ValidationError):  # another kind's pattern of the other series too
        add_series(company, credit_note_pattern="CN-{YYYY}-{counter}")
    assert NumberingSettings.objects.filter(company=company).count() == 1


@pytest.mark.django_db
def test_a_series_never_takes_a_pattern_that_repeats_a_number_issued_elsewhere(issue_on):
    issue_on(date(2026, 3, 10))
    client = ClientFactory()
    send_document(InvoiceFactory(client=client))  # INV-2026-0001 in Main
    configure_numbering(client.company, invoice_pattern="FA-{YYYY}-{counter}")
    with pytest.raises(ValidationError) as refused:
        add_series(client.company, invoice_pattern="INV-{YYYY}-{counter}")
    assert "could repeat INV-2026-0001, already issued in another series" in str(
        refused.value)


@pytest.mark.django_db
def test_a_series_code_cannot_change_once_numbers_were_taken_under_it(issue_on):
    issue_on(date(2026, 3, 10))
    client = ClientFactory()
    shop = add_series(client.company)
    shop.code = "SHOP2"
    save_numbering_settings(shop)  # nothing issued yet: free to change
    send_document(InvoiceFactory(client=client, series=shop))
    shop.code = "STORE"
    with pytest.raises(ValidationError) as refused:
        save_numbering_settings(shop)
    assert "cannot change" in str(refused.value)


@pytest.mark.django_db
def test_a_layout_change_leaves_an_unused_series_unused():
    shop = add_series(CompanyFactory())
    shop.shared_counter = True
    shop.credit_note_pattern = "SHOP-C-{YYYY}-{counter}"
    save_numbering_settings(shop)
    shop.code = "STORE"
    shop.invoice_pattern = "STORE-{YYYY}-{counter}"
    shop.credit_note_pattern = "STORE-C-{YYYY}-{counter}"
    save_numbering_settings(shop)  # no value was taken: its code may still change
    delete_series(shop)


@pytest.mark.django_db
def test_saving_a_series_read_before_it_became_the_default_keeps_it_the_default():
    company = CompanyFactory()
    shop = add_series(company)
    stale = NumberingSettings.objects.get(pk=shop.pk)
    make_default_series(shop)
    stale.padding = 6
    save_numbering_settings(stale)  # the edit page was opened before "make default"
    assert NumberingSettings.objects.get(company=company, is_default=True) == shop


@pytest.mark.django_db
def test_one_default_series_per_company_and_it_can_move(issue_on):
    issue_on(date(2026, 3, 10))
    client = ClientFactory()
    main = NumberingSettings.for_company(client.company_id)
    shop = add_series(client.company)
    make_default_series(shop)
    assert NumberingSettings.for_company(client.company_id) == shop
    assert send_document(InvoiceFactory(client=client)).number == "SHOP-2026-0001"
    main.refresh_from_db()
    assert not main.is_default
    with pytest.raises(IntegrityError), transaction.atomic():
        NumberingSettings.objects.filter(pk=main.pk).update(is_default=True)


@pytest.mark.django_db
def test_only_an_unused_series_that_is_not_the_default_can_be_deleted(issue_on):
    issue_on(date(2026, 3, 10))
    client = ClientFactory()
    main = NumberingSettings.for_company(client.company_id)
    shop, web = add_series(client.company), add_series(client.company, "Online", "WEB")
    with pytest.raises(ValidationError, match="default series cannot be deleted"):
        delete_series(main)
    send_document(InvoiceFactory(client=client, series=shop))
    with pytest.raises(ValidationError, match="the books keep it"):
        delete_series(shop)
    draft = InvoiceFactory(client=client, series=web)
    delete_series(web)
    draft.refresh_from_db()
    assert draft.series is None  # it falls back to its client's series or the default
    assert send_document(draft).number == "INV-2026-0001"


@pytest.mark.django_db
def test_the_audit_reports_a_series_gap_under_its_code_and_filters_by_it(issue_on):
    issue_on(date(2026, 3, 10))
    client = ClientFactory()
    shop = add_series(client.company)
    for _ in range(2):
        send_document(InvoiceFactory(client=client, series=shop))
    Sequence.objects.filter(series="SHOP/invoice").update(last=5)  # values taken, not issued
    audit = run_audit(AuditScope(company_id=client.company_id))
    assert [(f.kind, f.series) for f in audit.findings] == [("gap", "SHOP/invoice")]
    assert list(run_audit(AuditScope(company_id=client.company_id,
                                     series="invoice")).findings) == []


def test_the_audit_command_takes_a_named_series_and_refuses_a_malformed_one():
    root = Path(__file__).resolve().parent.parent
    bad = subprocess.run([sys.executable, "manage.py", "audit_gaps", "--series", "shop/x"],
                         capture_output=True, text=True, timeout=60, cwd=root)
    assert bad.returncode == 2 and "invalid choice: 'shop/x'" in bad.stderr


# --- Pages ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_owner_creates_a_series_and_a_draft_chooses_it(client, issue_on):
    issue_on(date(2026, 3, 10))
    owner = MembershipFactory(role=Membership.Role.OWNER)
    client.force_login(owner.user)
    form = {"name": "Madrid", "code": "MAD", "invoice_pattern": "MAD-{YYYY}-{counter}",
            "credit_note_pattern": "MAD-R-{YYYY}-{counter}", "padding": "3",
            "client_padding": "3", "reset_period": "yearly", "fiscal_year_start": "1"}
    refused = client.post(reverse("numbering_series_create"),
                          {**form, "invoice_pattern": "INV-{YYYY}-{counter}"})
    assert refused.status_code == 200 and "could repeat those of the series" in \
        refused.content.decode()
    response = client.post(reverse("numbering_series_create"), form)
    madrid = NumberingSettings.objects.get(company=owner.company, code="MAD")
    assert response.url == reverse("numbering_series", args=[madrid.pk])
    page = client.get(response.url).content.decode()
    assert "Madrid" in page and "Make it the default series" in page

    buyer = ClientFactory(company=owner.company)
    draft_page = client.get(reverse("invoice_create")).content.decode()
    assert 'name="series"' in draft_page
    created = client.post(reverse("invoice_create"), {
        "client": buyer.pk, "series": madrid.pk, "currency": "EUR",
        "lines-TOTAL_FORMS": "1", "lines-INITIAL_FORMS": "0", "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000", "lines-0-description": "Rent", "lines-0-quantity": "1",
        "lines-0-unit_code": "C62", "lines-0-unit_price": "100", "lines-0-tax_category": "S",
        "lines-0-tax_rate": "21"})
    assert created.status_code == 302
    draft = Invoice.objects.get(company=owner.company, series=madrid)
    assert "MAD-2026-001" in client.get(reverse("invoice_detail", args=[draft.pk])).content \
        .decode()
    client.post(reverse("invoice_send", args=[draft.pk]), {"email": ""})
    assert IssuedNumber.objects.get(document_id=draft.pk, kind="invoice").number == \
        "MAD-2026-001"


@pytest.mark.django_db
def test_the_numbering_page_makes_a_series_the_default_and_deletes_an_unused_one(client):
    owner = MembershipFactory(role=Membership.Role.OWNER)
    client.force_login(owner.user)
    shop = add_series(owner.company)
    web = add_series(owner.company, "Online", "WEB")
    client.post(reverse("numbering_series_default", args=[shop.pk]))
    assert NumberingSettings.for_company(owner.company_id) == shop
    response = client.post(reverse("numbering_series_delete", args=[shop.pk]), follow=True)
    assert "default series cannot be deleted" in response.content.decode()
    client.post(reverse("numbering_series_delete", args=[web.pk]))
    assert not NumberingSettings.objects.filter(pk=web.pk).exists()
    changes = client.get(reverse("numbering_settings")).content.decode()
    assert "Default series" in changes and "Online" in changes


@pytest.mark.django_db
def test_a_name_or_code_taken_by_another_series_is_a_form_error(client):
    owner = MembershipFactory(role=Membership.Role.OWNER)
    client.force_login(owner.user)
    add_series(owner.company)
    form = {"name": "Shop", "code": "WEB", "invoice_pattern": "WEB-{YYYY}-{counter}",
            "credit_note_pattern": "WEB-C-{YYYY}-{counter}", "padding": "4",
            "client_padding": "3", "reset_period": "yearly", "fiscal_year_start": "1"}
    page = client.post(reverse("numbering_series_create"), form)
    assert page.status_code == 200 and "already has a series of that name" in \
        page.content.decode()
    page = client.post(reverse("numbering_series_create"), {**form, "name": "Web",
                                                           "code": "SHOP"})
    assert page.status_code == 200 and "already has a series with that code" in \
        page.content.decode()
    assert NumberingSettings.objects.filter(company=owner.company).count() == 2


@pytest.mark.django_db
def test_the_live_preview_shows_the_series_being_edited(client):
    owner = MembershipFactory(role=Membership.Role.OWNER)
    client.force_login(owner.user)
    shop = add_series(owner.company, padding=2)
    form = {"name": "Shop", "code": "SHOP", "invoice_pattern": "SHOP-{counter}",
            "credit_note_pattern": "SHOP-C-{counter}", "padding": "2", "client_padding": "3",
            "reset_period": "never", "fiscal_year_start": "1"}
    preview = client.post(reverse("numbering_preview") + f"?series={shop.pk}", form)
    assert 'data-example="invoice">SHOP-01<' in preview.content.decode()
    new = client.post(reverse("numbering_preview") + "?series=new", form).content.decode()
    assert "already has a series" in new or "could repeat" in new


@pytest.mark.django_db
def test_the_admin_moves_the_default_and_never_a_series_to_another_company(admin_client):
    shop = add_series(CompanyFactory())
    changelist = reverse("admin:counters_numberingsettings_changelist")
    admin_client.post(changelist, {"action": "make_default_action",
                                   "_selected_action": [shop.pk]})
    assert NumberingSettings.for_company(shop.company_id) == shop
    page = admin_client.get(reverse("admin:counters_numberingsettings_change",
                                    args=[shop.pk])).content.decode()
    assert 'name="company"' not in page and 'name="name"' in page


@pytest.mark.django_db
def test_an_accountant_reads_the_series_but_cannot_add_or_change_them(client):
    accountant = MembershipFactory(role=Membership.Role.ACCOUNTANT)
    client.force_login(accountant.user)
    shop = add_series(accountant.company)
    assert client.get(reverse("numbering_series", args=[shop.pk])).status_code == 200
    assert client.get(reverse("numbering_series_create")).status_code == 403
    assert client.post(reverse("numbering_series_default", args=[shop.pk])).status_code == 403
    assert client.post(reverse("numbering_series_delete", args=[shop.pk])).status_code == 403


@pytest.mark.django_db
def test_the_client_form_offers_the_companys_series_and_keeps_it_when_left_out():
    buyer = ClientFactory()
    assert "series" not in ClientForm(instance=buyer).fields
    shop = add_series(buyer.company)
    form = ClientForm({"name": buyer.name, "series": shop.pk}, instance=buyer)
    assert form.is_valid(), form.errors
    form.save()
    renamed = ClientForm({"name": "Renamed"}, instance=Client.objects.get(pk=buyer.pk))
    renamed.save()
    buyer.refresh_from_db()
    assert (buyer.name, buyer.series) == ("Renamed", shop)  # a form without the field (the
    # API's) keeps it


# --- Recurring invoices ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_recurring_schedule_numbers_its_invoices_in_the_series_it_chose(issue_on):
    from billing import recurring
    from billing.models import RecurringMode

    from .test_recurring import schedule_of

    issue_on(date(2026, 3, 2))
    sender = MembershipFactory(role=Membership.Role.ACCOUNTANT)
    shop = add_series(sender.company)
    schedule = schedule_of(ClientFactory(company=sender.company), owner=sender.user,
                           mode=RecurringMode.SEND, series=shop)
    outcome = recurring.run_schedule(schedule, date(2026, 3, 2))
    assert outcome.failed == []
    invoices = list(schedule.invoices.order_by("recurring_period"))
    assert [i.number for i in invoices] == [f"SHOP-2026-000{n}" for n in (1, 2, 3)]
    assert {i.series for i in invoices} == {shop}
    # A schedule without a series keeps the default's numbers.
    plain = schedule_of(ClientFactory(company=sender.company), owner=sender.user,
                        mode=RecurringMode.SEND, start_date=date(2026, 3, 1))
    [invoice] = recurring.run_schedule(plain, date(2026, 3, 2)).created
    invoice.refresh_from_db()
    assert invoice.number == "INV-2026-0001"


@pytest.mark.django_db
def test_the_schedule_page_offers_the_companys_series_only_and_shows_the_choice(client):
    from billing.models import RecurringInvoice

    from .test_recurring import form_data

    owner = MembershipFactory(role=Membership.Role.OWNER)
    client.force_login(owner.user)
    buyer = ClientFactory(company=owner.company)
    page = client.get(reverse("recurring_invoice_create"))
    assert "series" not in page.context["form"].fields  # one series: nothing to choose
    shop = add_series(owner.company)
    foreign = add_series(CompanyFactory(), name="Theirs", code="THEIRS")
    response = client.post(reverse("recurring_invoice_create"),
                           form_data(buyer, series=foreign.pk))
    assert "series" in response.context["form"].errors
    assert not RecurringInvoice.objects.exists()
    response = client.post(reverse("recurring_invoice_create"), form_data(buyer, series=shop.pk))
    schedule = RecurringInvoice.objects.get()
    assert response.status_code == 302 and schedule.series == shop
    page = client.get(reverse("recurring_invoice_detail", args=[schedule.pk]))
    assert "Series: Shop" in page.content.decode()
    with pytest.raises(ValidationError):  # the model refuses it too (the admin's path)
        RecurringInvoice(company=owner.company, client=buyer, series=foreign, name="x",
                         start_date=date(2026, 1, 1)).full_clean()


# --- Under concurrency -----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_workers_sending_in_two_series_keep_each_whole():
    client = ClientFactory()
    shop = add_series(client.company)
    threads, per_thread = 6, 6
    plans = [[(InvoiceFactory(client=client, series=shop if (t + i) % 2 else None),
               (t * per_thread + i) % 5 == 0) for i in range(per_thread)]
             for t in range(threads)]

    def sender(plan):
        def send_all():
            for document, roll_back in plan:
                try:
                    with transaction.atomic():
                        send_document(document)
                        if roll_back:
                            raise Rollback
                except Rollback:
                    pass
        return send_all

    run_threads([sender(plan) for plan in plans])
    for key in ("invoice", "SHOP/invoice"):
        values = sorted(IssuedNumber.objects.filter(series=key)
                        .values_list("value", flat=True))
        assert values == list(range(1, len(values) + 1)) and values
    assert IssuedNumber.objects.count() == Invoice.objects.exclude(state="draft").count()
    assert list(run_audit(AuditScope(company_id=client.company_id)).findings) == []
