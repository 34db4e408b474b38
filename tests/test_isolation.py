"""
Companies never see each other's data, tested as an attacker would: every URL that takes an
object id, every form field that names an object, every admin page and action, and every
role — generated from the URL configuration, not picked by hand. Each attempt must be
refused (404 or 403) and leave the database exactly as it was; the same request from the
object's own company must get through, so that the refusal is the company check's.
"""

import logging
from datetime import date
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth.models import AnonymousUser
from django.forms import BaseForm, BaseFormSet
from django.test import Client as Browser
from django.test import RequestFactory, override_settings
from django.urls import URLPattern, get_resolver, reverse

from billing import batches
from billing.models import Membership, RecurringInvoice
from billing.services import record_payment, reverse_payment, send_document
from billing.tenancy import SESSION_KEY
from counters.models import NumberingSettings
from counters.services import save_numbering_settings

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

# What a POST to each page sends: plausible data, so that only the scoping can refuse it.
POST_DATA = {
    "send": {"email": "on"},
    "cancel": {"reason": "attack"},
    "credit": {"what": "open", "reason": "attack"},
    "paid": {"method": "cash", "reference": "attack"},
    "payment": {"date": "2026-01-02", "amount": "1.00", "method": "cash", "reference": "attack"},
    "reverse": {"reason": "attack"},
    "edit": {"name": "Hacked", "currency": "EUR", "lines-TOTAL_FORMS": "1",
             "lines-INITIAL_FORMS": "0", "lines-0-description": "x", "lines-0-quantity": "1",
             "lines-0-unit_price": "1", "lines-0-tax_rate": "20"},
}


def snapshot():
    """Every row of Folio's own tables and its jobs, to compare before and after an attempt."""
    rows = {}
    for label in ("billing", "counters", "django_tasks_database"):
        for model in apps.get_app_config(label).get_models():
            rows[model._meta.label] = sorted(
                (tuple(sorted(row.items())) for row in model.objects.values()), key=repr)
    return rows


def taken_methods(pattern):
    """
    The methods a view takes, in its own words: behind ``require_POST``, ``require_GET`` or
    ``require_http_methods`` it refuses the others with 405; any other view answers GET and
    POST. Asked of the bare view, logged out, so it stops in
    its decorators and never reaches the database.
    """
    kwargs = {**pattern.default_args, **dict.fromkeys(pattern.pattern.converters, 0)}
    logger = logging.getLogger("django.request")
    level, logger.level = logger.level, logging.ERROR  # no "Method Not Allowed" at import
    taken = []
    try:
        for method in ("GET", "POST"):
            request = getattr(RequestFactory(), method.lower())("/")
            request.user = AnonymousUser()
            with override_settings(ALLOWED_HOSTS=["testserver"]):  # the login redirect's host
                if pattern.callback(request, **kwargs).status_code != 405:
                    taken.append(method)
    finally:
        logger.level = level
    return taken


def object_kind(pattern):
    """
    The model whose id the URL takes, by its name in ``company_with_documents``: the document
    kind the URL is made for, else that of the billing model its URL name begins with
    (underscores ignored: ``credit_note_pdf`` aims at a CreditNote, kind ``credit_note``).
    """
    if "kind" in pattern.default_args:
        return str(pattern.default_args["kind"])
    if (pattern.name or "").startswith("numbering_series"):
        return "numberingsettings"  # a named series (counters)
    squashed = (pattern.name or "").replace("_", "")
    models = sorted(apps.get_app_config("billing").get_models(),
                    key=lambda model: len(model._meta.model_name), reverse=True)
    return next((_kind_of(model) for model in models
                 if squashed.startswith(model._meta.model_name)), None)


def _kind_of(model):
    """A document model's kind (a ``Kind``, a string); any other model's name (a run's
    ``kind`` is a field, the kind of documents it sends)."""
    kind = getattr(model, "kind", None)
    return str(kind) if isinstance(kind, str) else model._meta.model_name


def object_urls():
    """(name, kind, method) of every app URL whose path takes an argument: generated."""
    found = []
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLPattern) and pattern.pattern.converters:
            for method in taken_methods(pattern):
                found.append((pattern.name, object_kind(pattern), method))
    return found


OBJECT_URLS = object_urls()

# Each view's POST, built for the object aimed at, as its own page would send it.
VIEW_POST_DATA = {
    "client_form": lambda target: {"name": "Hacked"},
    "document_form": lambda target: {
        **POST_DATA["edit"], "client": target.client_id,
        **({"invoice": target.invoice_id} if hasattr(target, "invoice_id") else {})},
    "document_send": lambda target: POST_DATA["send"],
    "invoice_cancel": lambda target: POST_DATA["cancel"],
    "invoice_credit": lambda target: POST_DATA["credit"],
    "invoice_mark_paid": lambda target: POST_DATA["paid"],
    "invoice_payment": lambda target: POST_DATA["payment"],
    "payment_reverse": lambda target: POST_DATA["reverse"],
    "recurring_invoice_form": lambda target: recurring_data(target.client_id),
}


def recurring_data(client_id):
    """A recurring schedule's form, as its page sends it."""
    return {**POST_DATA["edit"], "name": "Hosting", "client": client_id,
            "frequency": "monthly", "day_of_month": "1", "start_date": "2026-01-01",
            "mode": "draft", "currency": "EUR"}


def request_object(browser, name, method, target):
    url = reverse(name, args=[target.pk])
    if method == "GET":
        return browser.get(url)
    view = get_resolver().resolve(url).func.__name__
    return browser.post(url, VIEW_POST_DATA.get(view, lambda target: {})(target))


def company_with_documents():
    """Every kind of object in every state the pages act on; small credit notes, so that
    sending the draft one and cancelling the invoice both succeed for the company itself."""
    client = ClientFactory(company=CompanyFactory())
    draft = InvoiceFactory(client=client)
    sent = send_document(InvoiceFactory(client=client))
    refund = [{"description": "r", "quantity": 1, "unit_price": 1, "tax_rate": 20}]
    credit_draft = CreditNoteFactory(client=client, invoice=sent, lines=refund)
    credit_sent = send_document(CreditNoteFactory(client=client, invoice=sent, lines=refund))
    # Payments on an invoice of their own (one of them reversed), so that the sent one can
    # still be cancelled and credited.
    part_paid = send_document(InvoiceFactory(client=client))
    payment = record_payment(part_paid, amount=Decimal("10.00"), method="card")
    reversed_payment = record_payment(part_paid, amount=Decimal("5.00"), method="cash")
    reverse_payment(reversed_payment, reason="Mistake")
    # Recurring schedules: one with periods due (it makes invoices when run), one not yet
    # started (it can still be deleted).
    schedules = [RecurringInvoice.objects.create(company=client.company, client=client,
                                                 name=name, start_date=start)
                 for name, start in (("Due", date(2026, 1, 1)), ("Later", date(2099, 1, 1)))]
    for schedule in schedules:
        schedule.lines.create(description="Hosting", quantity=1, unit_price=10, tax_rate=20)
    quotes = [QuoteFactory(client=client), send_document(QuoteFactory(client=client))]
    run = batches.create(client.company, "invoice", [draft.pk])  # a month-end run
    # Numbering series: the default, and another that can still be deleted.
    series = [NumberingSettings.for_company(client.company.pk),
              save_numbering_settings(NumberingSettings(
                  company=client.company, name="Shop", code="SHOP",
                  invoice_pattern="SHOP-{YYYY}-{counter}",
                  credit_note_pattern="SHOP-CN-{YYYY}-{counter}"))]
    return {"numberingsettings": series,
            # A client without documents too: it can be deleted.
            "client": [client, ClientFactory(company=client.company)],
            "invoice": [draft, sent], "credit_note": [credit_draft,
                                                                          credit_sent],
            "payment": [payment, reversed_payment], "recurringinvoice": schedules,
            "sendbatch": [run], "quote": quotes}


@pytest.fixture
def victim():
    return company_with_documents()


@pytest.fixture
def victim_owner(victim):
    """An owner of the victim's company, the same role as the attacker."""
    membership = MembershipFactory(role=Membership.Role.OWNER,
                                   company=victim["client"][0].company)
    browser = Browser()
    browser.force_login(membership.user)
    return browser


@pytest.fixture
def attacker(client):
    membership = MembershipFactory(role=Membership.Role.OWNER)
    company_with_documents_for = ClientFactory(company=membership.company)
    client.force_login(membership.user)
    client.own_client = company_with_documents_for
    return client


def test_every_object_url_is_aimed_at_objects_of_its_kind(victim):
    """The matrix knows what every id-taking URL names, and reaches every kind of object."""
    unknown = [name for name, kind, _method in OBJECT_URLS if kind not in victim]
    assert not unknown, f"add objects of these URLs' kind to company_with_documents: {unknown}"
    assert {kind for _name, kind, _method in OBJECT_URLS} == set(victim)


MATRIX_IDS = [f"{name}-{method}" for name, _kind, method in OBJECT_URLS]


@pytest.mark.parametrize("name, kind, method", OBJECT_URLS, ids=MATRIX_IDS)
def test_another_companys_objects_are_out_of_reach(attacker, victim, name, kind, method):
    for target in victim[kind]:
        before = snapshot()
        response = request_object(attacker, name, method, target)
        assert response.status_code in (404, 403), (name, method, target, response.status_code)
        assert snapshot() == before, (name, method, target)


def form_errors(response):
    """The errors of the forms and formsets the page rendered, if any."""
    contexts = response.context or []  # [] for a redirect, a Context for one template
    contexts = contexts if isinstance(contexts, list) else [contexts]
    values = {id(value): value for context in contexts
              for value in context.flatten().values()}  # once each, however often included
    errors = []
    for value in values.values():
        if isinstance(value, BaseForm) and value.errors:
            errors.append(value.errors)
        elif isinstance(value, BaseFormSet) and (any(value.errors) or value.non_form_errors()):
            errors.append((value.errors, value.non_form_errors()))
    return errors


@pytest.mark.parametrize("name, kind, method", OBJECT_URLS, ids=MATRIX_IDS)
def test_the_same_requests_reach_the_objects_of_their_own_company(victim_owner, victim, name,
                                                                  kind, method):
    """
    The attacker's very request, from an owner of the object's company, is not refused: the
    URL takes that method and that object, so the attacker's 404 is the company check. A POST
    is valid (no form sends it back with errors) and, where the view acts on it (a redirect),
    changes the database for at least one of the objects: so the attacker's unchanged
    database is the company check too, not data the view would have refused anyway.
    """
    acted = changed = False
    for target in victim[kind]:
        before = snapshot()
        response = request_object(victim_owner, name, method, target)
        assert response.status_code not in (403, 404, 405), (name, method, target,
                                                            response.status_code)
        if method == "POST":
            assert not form_errors(response), (name, target, form_errors(response))
            acted = acted or response.status_code == 302
            changed = changed or snapshot() != before
    assert changed or not acted, f"no POST to {name} changed anything for its own company"


# The live totals take the draft being edited as ``?pk=``, not in the path.
TOTALS_URLS = [(pattern.name, pattern.default_args["kind"])
               for pattern in get_resolver().url_patterns
               if isinstance(pattern, URLPattern)
               and pattern.callback.__name__ == "document_totals"]


@pytest.mark.parametrize("name, kind", TOTALS_URLS, ids=[name for name, _kind in TOTALS_URLS])
def test_live_totals_refuse_another_companys_draft(attacker, victim_owner, victim, name, kind):
    draft = victim[kind][0]
    url = f"{reverse(name)}?pk={draft.pk}"
    before = snapshot()
    assert attacker.post(url, POST_DATA["edit"]).status_code == 404
    assert snapshot() == before
    # The same request from the draft's own company gets the totals.
    assert victim_owner.post(url, POST_DATA["edit"]).status_code == 200


@pytest.mark.parametrize("url_name, field, kind", [
    ("invoice_create", "client", "client"),
    ("credit_note_create", "client", "client"),
    ("credit_note_create", "invoice", "invoice"),
])
def test_forms_refuse_another_companys_objects(attacker, victim, url_name, field, kind):
    target = victim[kind][-1]
    data = {**POST_DATA["edit"], "client": attacker.own_client.pk, field: target.pk}
    before = snapshot()
    response = attacker.post(reverse(url_name), data)
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert snapshot() == before


def test_switching_to_a_company_you_do_not_belong_to_is_refused(attacker, victim):
    foreign = victim["client"][0].company_id
    response = attacker.post(reverse("switch_company"), {"company": foreign}, follow=True)
    assert "You are not a member of that company." in response.content.decode()
    assert attacker.session.get(SESSION_KEY) != foreign
    response = attacker.get(reverse("client_detail", args=[victim["client"][0].pk]))
    assert response.status_code == 404


def test_a_foreign_company_in_the_session_is_not_entered(attacker, victim):
    """A session that names a company its user is not (or no longer) a member of."""
    session = attacker.session
    session[SESSION_KEY] = victim["client"][0].company_id
    session.save()
    response = attacker.get(reverse("client_detail", args=[victim["client"][0].pk]))
    assert response.status_code == 404


@pytest.fixture
def staff_attacker(client):
    """Staff, not superuser: administers its own company only."""
    membership = MembershipFactory(role=Membership.Role.OWNER, user__is_staff=True)
    user = membership.user
    from django.contrib.auth.models import Permission

    user.user_permissions.set(Permission.objects.filter(
        content_type__app_label__in=["billing", "counters"]))
    client.force_login(user)
    return client


ADMIN_MODELS = [
    ("billing", "invoice"), ("billing", "creditnote"), ("billing", "client"),
    ("billing", "company"), ("counters", "issuednumber"), ("counters", "sequence"),
    ("counters", "numberingsettings"), ("billing", "payment"), ("billing", "paymentreversal"),
    ("billing", "quote"),
]


@pytest.mark.parametrize("app, model", ADMIN_MODELS)
def test_staff_see_only_their_companies_in_the_admin(staff_attacker, victim, app, model):
    victim_company = victim["client"][0].company
    from counters.models import NumberingSettings

    NumberingSettings.for_company(victim_company.pk)
    model_class = apps.get_model(app, model)
    foreign = model_class.objects.filter(
        **({"pk": victim_company.pk} if model == "company" else {"company": victim_company}))
    assert foreign.exists()
    listing = staff_attacker.get(reverse(f"admin:{app}_{model}_changelist"))
    assert listing.status_code == 200
    for obj in foreign:
        response = staff_attacker.get(reverse(f"admin:{app}_{model}_change", args=[obj.pk]))
        assert response.status_code in (302, 404), response.status_code


@pytest.mark.parametrize("action", ["send_selected", "mark_paid_selected", "cancel_selected"])
def test_admin_actions_ignore_another_companys_documents(staff_attacker, victim, action):
    before = snapshot()
    staff_attacker.post(reverse("admin:billing_invoice_changelist"), {
        "action": action, "_selected_action": [i.pk for i in victim["invoice"]]})
    assert snapshot() == before


# --- Roles ---------------------------------------------------------------------------------

ROLE_ACTIONS = [
    # (url name, target kind or None, POST data, allowed roles)
    ("client_create", None, {"name": "New"}, {"owner", "accountant"}),
    ("client_edit", "client", {"name": "Renamed"}, {"owner", "accountant"}),
    ("client_delete", "unnamed_client", {}, {"owner", "accountant"}),
    ("invoice_create", None, POST_DATA["edit"], {"owner", "accountant"}),
    ("invoice_edit", "draft", POST_DATA["edit"], {"owner", "accountant"}),
    ("invoice_send", "draft", {}, {"owner", "accountant"}),
    ("invoice_delete", "draft", {}, {"owner", "accountant"}),
    ("invoice_mark_paid", "sent", POST_DATA["paid"], {"owner", "accountant"}),
    ("invoice_payment", "sent", POST_DATA["payment"], {"owner", "accountant"}),
    ("payment_reverse", "payment", POST_DATA["reverse"], {"owner", "accountant"}),
    ("invoice_cancel", "sent", {"reason": "r"}, {"owner", "accountant"}),
    ("invoice_credit", "sent", {"what": "open"}, {"owner", "accountant"}),
    ("invoice_email", "sent", {}, {"owner", "accountant"}),
    ("members", None, {"email": "newcomer@example.com", "role": "viewer"}, {"owner"}),
    ("numbering_settings", None, {"invoice_pattern": "A-{YYYY}-{counter}",
                                  "credit_note_pattern": "B-{YYYY}-{counter}",
                                  "padding": "3", "reset_period": "yearly",
                                  "fiscal_year_start": "1"}, {"owner"}),
]


@pytest.mark.parametrize("role", ["owner", "accountant", "viewer"])
@pytest.mark.parametrize("name, target, data, allowed", ROLE_ACTIONS,
                         ids=[a[0] for a in ROLE_ACTIONS])
def test_roles(client, role, name, target, data, allowed, django_capture_on_commit_callbacks):
    membership = MembershipFactory(role=role)
    UserFactory(username="newcomer")
    own = ClientFactory(company=membership.company)
    targets = {"client": own, "unnamed_client": ClientFactory(company=membership.company),
               "draft": InvoiceFactory(client=own),
               "sent": send_document(InvoiceFactory(client=own))}
    targets["payment"] = record_payment(send_document(InvoiceFactory(client=own)),
                                        amount=Decimal("1.00"), method="cash")
    client.force_login(membership.user)
    url = reverse(name, args=[targets[target].pk]) if target else reverse(name)
    data = {**data, "client": own.pk} if "lines-TOTAL_FORMS" in data else data
    before = snapshot()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data)
    if role in allowed:
        assert response.status_code in (200, 302)
        assert snapshot() != before, f"{role} could not {name}"
    else:
        assert response.status_code == 403
        assert snapshot() == before


@pytest.mark.parametrize("name", ["home", "client_list", "invoice_list", "credit_note_list",
                                  "numbering_settings", "members"])
def test_viewers_can_read(client, name):
    membership = MembershipFactory(role="viewer")
    client.force_login(membership.user)
    assert client.get(reverse(name)).status_code == 200


def test_removing_another_companys_member_is_refused(attacker, victim):
    foreign = MembershipFactory(company=victim["client"][0].company)
    before = snapshot()
    response = attacker.post(reverse("members"), {"remove": foreign.pk})
    assert response.status_code == 404 and snapshot() == before
