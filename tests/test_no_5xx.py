"""
No 5xx for any input: the cases found by probing (a total too large to store, a 20-digit
page, ``remove=abc``, a padding of 99999999999), the bounds of every text field in forms and
in the database, and a fuzz test that posts random values to every page of the URL
configuration: never a 5xx, and the database unchanged whenever the page refuses.
"""

import os
from decimal import Decimal

import pytest
from django.contrib.admin import site as admin_site
from django.contrib.messages import constants as message_levels
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, transaction
from django.test import Client as Browser
from django.urls import URLPattern, get_resolver, reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.forms import MAX_LINES
from billing.models import (
    NOTES_MAX_LENGTH,
    Company,
    Invoice,
    Membership,
)
from counters import patterns
from counters.models import REASON_MAX_LENGTH, NumberingSettings, NumberJump

from .factories import ClientFactory, InvoiceFactory, MembershipFactory, UserFactory
from .test_bad_input import GOOD_LINE, SETTINGS, in_a_month, lines
from .test_isolation import company_with_documents, object_kind, snapshot, taken_methods

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client):
    membership = MembershipFactory(role=Membership.Role.OWNER)
    client.force_login(membership.user)
    client.company = membership.company
    client.own = ClientFactory(company=membership.company)
    return client


def invoice_data(client, *rows, **fields):
    return {"client": client.own.pk, "currency": "EUR", **lines(*rows), **fields}


# --- The cases found by probing --------------------------------------------------------------


def test_a_line_too_large_to_store_is_refused_with_a_message(owner):
    before = snapshot()
    response = owner.post(reverse("invoice_create"), invoice_data(
        owner, ("Huge", "999999999.999", "9999999999.99", "0")))
    assert response.status_code == 200
    assert "the largest amount a document can hold" in response.content.decode()
    assert snapshot() == before


def test_lines_that_each_fit_but_add_up_to_too_much_are_refused(owner):
    before = snapshot()
    response = owner.post(reverse("invoice_create"), invoice_data(   # 2 x 599,999,999,999.40
        owner, ("A", "60", "9999999999.99", "0"), ("B", "60", "9999999999.99", "0")))
    assert "The document&#x27;s total comes to more than" in response.content.decode()
    assert snapshot() == before


def test_the_largest_total_that_fits_is_accepted(owner):
    """The bound's baseline: a document at the largest amount is saved, not refused."""
    response = owner.post(reverse("invoice_create"), invoice_data(
        owner, ("Max", "99.999", "9999999999.99", "0", "Z")))
    assert response.status_code == 302
    assert Invoice.objects.get().total == Decimal("999989999999.00")  # 99.999 x 9999999999.99


def test_the_admin_refuses_a_line_too_large_to_store(client):
    superuser = UserFactory(is_staff=True, is_superuser=True)
    draft = InvoiceFactory()
    NumberingSettings.for_company(draft.company_id)  # the page's preview creates them
    client.force_login(superuser)
    url = reverse("admin:billing_invoice_change", args=[draft.pk])
    line = draft.lines.get()
    data = {"client": draft.client_id, "company": draft.company_id, "currency": "EUR",
            "lines-TOTAL_FORMS": "1", "lines-INITIAL_FORMS": "1", "lines-0-id": line.pk,
            "lines-0-document": draft.pk, "lines-0-position": "0",
            "lines-0-description": "x", "lines-0-quantity": "999999999.999",
            "lines-0-unit_price": "9999999999.99", "lines-0-tax_rate": "0", "_save": "Save"}
    before = snapshot()
    response = client.post(url, data)
    assert response.status_code == 200
    assert "the largest amount a document can hold" in response.content.decode()
    assert snapshot() == before


@pytest.mark.parametrize("name", ["invoice_list", "credit_note_list", "client_list"])
@pytest.mark.parametrize("page", ["9" * 20, "9" * 5000, "-3", "abc", "1e9", "\x00"])
def test_any_page_number_is_clamped(owner, name, page):
    response = owner.get(reverse(name), {"page": page})
    assert response.status_code == 200


@pytest.mark.parametrize("remove", ["abc", "", "9" * 40, "-1", "1.5"])
def test_removing_a_member_by_a_malformed_id_is_not_found(owner, remove):
    before = snapshot()
    assert owner.post(reverse("members"), {"remove": remove}).status_code == 404
    assert snapshot() == before


@pytest.mark.parametrize("name, role", [("numbering_settings", "owner"),
                                        ("numbering_preview", "viewer"),
                                        ("numbering_preview", "owner")])
def test_a_huge_padding_is_refused_without_allocating(client, name, role):
    membership = MembershipFactory(role=role)
    NumberingSettings.for_company(membership.company_id)
    client.force_login(membership.user)
    before = snapshot()
    response = client.post(reverse(name), {**SETTINGS, "padding": "99999999999"})
    assert response.status_code == 200
    assert "less than or equal to 12" in response.content.decode()
    assert snapshot() == before


def test_formatting_reads_the_padding_within_its_bound():
    from datetime import date

    number = patterns.format_number("N-{counter}", date(2026, 1, 1), 7, 99999999999)
    assert number == "N-" + "7".zfill(patterns.MAX_PADDING)


@pytest.mark.parametrize("name, method, target, data", [
    ("invoice_credit", "post", "sent", {"what": "open", "reason": "a\x00b"}),
    ("client_list", "get", None, {"q": "a\x00b"}),
    ("invoice_list", "get", None, {"q": "a\x00b"}),
    ("invoice_cancel", "post", "sent", {"reason": "a\x00b"}),
    ("client_list", "get", None, {"q": "x" * 100_000}),
])
def test_nul_and_huge_text_straight_from_the_request(owner, name, method, target, data):
    from billing.services import send_document

    sent = send_document(InvoiceFactory(client=owner.own))
    url = reverse(name, args=[sent.pk]) if target else reverse(name)
    response = getattr(owner, method)(url, data)
    assert response.status_code in (200, 302)


# --- Text bounds, in the forms and in the database ------------------------------------------


@pytest.mark.parametrize("url_name, field, limit", [
    ("client_create", "street", 200),
    ("invoice_create", "notes", NOTES_MAX_LENGTH),
    ("credit_note_create", "notes", NOTES_MAX_LENGTH),
])
def test_text_beyond_its_bound_is_refused_and_at_its_bound_accepted(owner, url_name, field,
                                                                    limit):
    base = ({"name": "A"} if url_name == "client_create"
            else invoice_data(owner, GOOD_LINE))
    before = snapshot()
    response = owner.post(reverse(url_name), {**base, field: "x" * (limit + 1)})
    assert f"at most {limit} characters" in response.content.decode()
    assert snapshot() == before
    assert owner.post(reverse(url_name), {**base, field: "x" * limit}).status_code == 302


def test_more_lines_than_the_bound_are_refused(owner):
    before = snapshot()
    response = owner.post(reverse("invoice_create"), invoice_data(
        owner, *[GOOD_LINE] * (MAX_LINES + 1)))
    assert f"Please submit at most {MAX_LINES} forms" in response.content.decode()
    assert snapshot() == before


@pytest.mark.parametrize("make", [
    lambda: InvoiceFactory(notes="x" * (NOTES_MAX_LENGTH + 1)),
    lambda: InvoiceFactory(lines=[{"description": "x", "quantity": Decimal("999999999.999"),
                                   "unit_price": Decimal("9999999999.99")}]),
    lambda: NumberJump.objects.create(company=Company.objects.create(name="D"),
                                      series="invoice", first_value=1, last_value=2,
                                      reason="x" * (REASON_MAX_LENGTH + 1)),
], ids=["notes", "total", "jump reason"])
def test_the_database_refuses_what_bypasses_the_forms(make):
    # PostgreSQL: the column itself (DataError) or the check (IntegrityError); SQLite: the check.
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        make()


# --- Fuzz: every page of the URL configuration ----------------------------------------------

FUZZ_EXAMPLES = int(os.environ.get("FOLIO_FUZZ_EXAMPLES", "8"))
SKIPPED_VIEWS = {"health", "whoami"}  # plain text, no input


def app_pages():
    """(URL name, method) of every app page that takes input: generated, not listed."""
    found = []
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLPattern) and pattern.name not in SKIPPED_VIEWS:
            try:
                methods = taken_methods(pattern)
            except Exception:  # noqa: BLE001 - a page for the logged-out (invitations) renders
                methods = ["GET", "POST"]
            for method in methods:
                found.append((pattern.name, method))
    return found


APP_PAGES = app_pages()


def good_data(view, world, target):
    """What the page's own form would send: the fuzz spoils some of it."""
    own = world["client"][0]
    document = {"client": own.pk, "currency": "EUR", "notes": "n", "due_date": in_a_month(),
                "reason": "r", **lines(GOOD_LINE)}
    if target is not None and hasattr(target, "invoice_id") and target.invoice_id:
        document["invoice"] = target.invoice_id
    sent = world["invoice"][1]
    return {
        "client_form": {"name": "A", "email": "a@example.com", "street": "x", "vat_id": "FR1"},
        "client_list": {"q": "A", "page": "1"},
        "document_list": {"q": "", "state": "sent", "client": own.pk, "date_from":
                          "2026-01-01", "date_to": "2026-12-31", "page": "1"},
        "document_form": document,
        "document_totals": document,
        "document_send": {"email": "on"},
        "invoice_cancel": {"reason": "r"},
        "invoice_credit": {"what": "lines", "line": sent.lines.first().pk, "reason": "r"},
        "members": {"email": "newcomer@example.com", "role": "viewer"},
        "numbering_settings": SETTINGS,
        "numbering_preview": SETTINGS,
        "switch_company": {"company": own.company_id},
        "recurring_invoice_form": {**document, "name": "Hosting", "frequency": "monthly",
                                   "day_of_month": "1", "start_date": "2026-01-01",
                                   "mode": "draft"},
        "recurring_invoice_totals": document,
        "recurring_invoice_pause": {"active": "1"},
    }.get(view, {})


EXTRA_KEYS = ["remove", "page", "email", "invoice", "line", "what", "company", "q",
              "lines-1-description", "lines-0-DELETE", "lines-0-id"]
hostile = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", "0", "-1", "1e999", "NaN", "-Infinity", "9" * 25, "1.0001", "abc",
                     "999999999.999", "9999999999.99", "\x00", "2026-02-31", "99999-01-01",
                     "on", "lines", "owner", "<script>", "1" * 5000, "é" * 3000]),
    st.text(max_size=5).map(lambda text: text + "\x00"),  # PostgreSQL refuses NUL in text
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)


@pytest.fixture
def fuzz_world(client):
    world = company_with_documents()
    company = world["client"][0].company
    NumberingSettings.for_company(company.pk)
    UserFactory(username="newcomer")
    owner = MembershipFactory(company=company, role="owner").user
    client.force_login(owner)
    return world


@pytest.mark.parametrize("name, method", APP_PAGES, ids=[f"{n}-{m}" for n, m in APP_PAGES])
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(spoil=st.dictionaries(st.text(max_size=3), hostile, max_size=2),
       spoil_known=st.data())
def test_random_input_never_answers_5xx(client, fuzz_world, name, method, spoil,
                                        spoil_known):
    pattern = next(p for p in get_resolver().url_patterns
                   if isinstance(p, URLPattern) and p.name == name)
    kind = object_kind(pattern) if pattern.pattern.converters else None
    targets = fuzz_world[kind] if kind else [None]
    target = spoil_known.draw(st.sampled_from(targets))
    url = reverse(name, args=[target.pk] if target is not None else [])
    data = dict(good_data(pattern.callback.__name__, fuzz_world, target))
    keys = sorted(set(data) | set(EXTRA_KEYS))
    data.update(spoil_known.draw(st.dictionaries(st.sampled_from(keys), hostile,
                                                 min_size=1, max_size=3)))
    data.update(spoil)
    client.cookies.pop("messages", None)  # only this request's messages say it refused
    with transaction.atomic():
        before = snapshot()
        response = (client.get if method == "GET" else client.post)(url, data)
        assert response.status_code < 500, (name, data)
        refused = response.status_code != 302 or any(
            m.level >= message_levels.ERROR for m in response.wsgi_request._messages)
        if refused:
            assert snapshot() == before, (name, data, response.status_code)
        transaction.set_rollback(True)


def test_the_fuzz_reaches_every_page_that_takes_input():
    names = {name for name, _method in APP_PAGES}
    assert {"client_create", "invoice_create", "credit_note_edit", "invoice_send",
            "invoice_credit", "members", "numbering_settings", "numbering_preview",
            "invoice_totals", "switch_company", "invitation_accept", "invitation_signup",
            "leave_company"} <= names


def test_the_fuzz_data_is_accepted_unspoilt(fuzz_world):
    """The fuzz's good data is good: so its refusals are the spoilt values'."""
    browser = Browser()
    company = fuzz_world["client"][0].company
    browser.force_login(Membership.objects.filter(company=company, role="owner").last().user)
    for name in ("client_create", "invoice_create", "numbering_settings", "members"):
        pattern = next(p for p in get_resolver().url_patterns
                       if isinstance(p, URLPattern) and p.name == name)
        response = browser.post(reverse(name), good_data(pattern.callback.__name__,
                                                         fuzz_world, None))
        assert response.status_code == 302, name


# --- Fuzz: every change form of the admin ----------------------------------------------------

ADMIN_MODELS = sorted((model._meta.label, model) for model in admin_site._registry
                      if model._meta.app_label in ("billing", "counters"))


def admin_form_data(page):
    """The change form (and its inlines) posted back as the browser would send it."""
    data = {"_save": "Save"}
    forms = [page.context["adminform"].form]
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update({formset.management_form.add_prefix(name): value
                     for name, value in formset.management_form.initial.items()})
        forms += formset.forms
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is None or value is False:
                continue
            key = form.add_prefix(name)
            data[key] = ("on" if value is True else [str(v) for v in value]
                         if isinstance(value, list | tuple) else str(value))
    return data


@pytest.mark.parametrize("label, model", ADMIN_MODELS, ids=[label for label, _m in ADMIN_MODELS])
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_random_input_to_the_admin_never_answers_5xx(client, fuzz_world, label, model, data):
    client.force_login(UserFactory(username="fuzz-admin", is_staff=True, is_superuser=True))
    objects = list(model.objects.all()[:4])
    if not objects:
        return
    obj = data.draw(st.sampled_from(objects))
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change",
                  args=[obj.pk])
    page = client.get(url)
    assert page.status_code == 200
    posted = admin_form_data(page)
    keys = sorted(set(posted) - {"_save"}) or ["x"]
    posted.update(data.draw(st.dictionaries(st.sampled_from(keys), hostile, min_size=1,
                                            max_size=3)))
    with transaction.atomic():
        before = snapshot()
        response = client.post(url, posted)
        assert response.status_code < 500, (label, posted)
        if response.status_code != 302:
            assert snapshot() == before, (label, posted, response.status_code)
        transaction.set_rollback(True)


def test_the_admin_fuzz_reaches_every_folio_model():
    assert {"billing.Invoice", "billing.Company", "counters.NumberingSettings"} <= {
        label for label, _model in ADMIN_MODELS}


@pytest.mark.parametrize("name", ["invoice_totals", "credit_note_totals", "quote_totals",
                                  "recurring_invoice_totals"])
@pytest.mark.parametrize("pk", ["²", "١", "9" * 40])
def test_a_totals_request_for_a_malformed_id_is_not_a_server_error(owner, name, pk):
    response = owner.post(f"{reverse(name)}?pk={pk}", invoice_data(owner, GOOD_LINE))
    assert response.status_code in (200, 404)


@pytest.mark.parametrize("series", ["²", "١", "9" * 40])
def test_a_numbering_preview_for_a_malformed_series_is_not_a_server_error(owner, series):
    response = owner.post(f"{reverse('numbering_preview')}?series={series}", SETTINGS)
    assert response.status_code in (200, 404)


@pytest.mark.parametrize("due", ["9999-12-31", "0001-01-01"])
def test_a_due_date_outside_the_calendar_is_refused(owner, due):
    """Reminders are dated from the due date: year 9999 would make dates that do not
    exist."""
    before = snapshot()
    response = owner.post(reverse("invoice_create"),
                          invoice_data(owner, GOOD_LINE, due_date=due))
    assert response.status_code == 200 and "due_date" in response.context["form"].errors
    assert snapshot() == before


@pytest.mark.parametrize("day", ["0001-01-01", "1899-12-31"])
def test_a_payment_date_outside_the_calendar_is_refused(owner, day):
    from billing.services import send_document

    invoice = send_document(InvoiceFactory(company=owner.company,
                                           client=ClientFactory(company=owner.company)))
    response = owner.post(reverse("invoice_payment", args=[invoice.pk]),
                          {"date": day, "amount": "1.00", "method": "bank_transfer"})
    assert not invoice.payments.exists()
    assert response.status_code in (200, 302)


def test_dates_saved_before_they_were_bounded_break_no_page(owner):
    """Year 9999, saved by an earlier version: the send refuses it with a message, and the
    pages that compute dates from it still answer."""
    from datetime import date

    from billing import recurring, reminders
    from billing.models import DocumentState, RecurringInvoice
    from billing.services import send_document

    from .test_recurring import schedule_of

    draft = InvoiceFactory(company=owner.company, client=owner.own)
    Invoice.objects.filter(pk=draft.pk).update(due_date=date(9999, 12, 31))
    with pytest.raises(ValidationError, match="correct it in the draft"):
        send_document(draft)
    late = Invoice(company=owner.company, state=DocumentState.SENT, due_date=date(9999, 12, 31))
    assert reminders.next_reminder(late, done=[], open_amount=Decimal("1")) is None

    schedule = schedule_of(owner.own)
    RecurringInvoice.objects.filter(pk=schedule.pk).update(start_date=date(9999, 12, 15))
    schedule.refresh_from_db()
    assert recurring.next_period(schedule) is None
    assert recurring.period_dates(schedule, date(9999, 12, 31)) == []
    assert owner.get(reverse("recurring_invoice_list")).status_code == 200
    assert owner.get(reverse("recurring_invoice_detail", args=[schedule.pk])).status_code == 200
