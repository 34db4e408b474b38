"""
Companies never see each other's data, tested as an attacker would: every URL that takes an
object id, every form field that names an object, every admin page and action, and every
role — generated from the URL configuration, not picked by hand. Each attempt must be
refused (404, 403 or 405) and leave the database exactly as it was.
"""

import pytest
from django.apps import apps
from django.urls import URLPattern, get_resolver, reverse

from billing.models import Membership
from billing.services import send_document

from .factories import (
    ClientFactory,
    CompanyFactory,
    CreditNoteFactory,
    InvoiceFactory,
    MembershipFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

# What a POST to each page sends: plausible data, so that only the scoping can refuse it.
POST_DATA = {
    "send": {"email": "on"},
    "cancel": {"reason": "attack"},
    "credit": {"what": "open", "reason": "attack"},
    "edit": {"name": "Hacked", "currency": "EUR", "lines-TOTAL_FORMS": "1",
             "lines-INITIAL_FORMS": "0", "lines-0-description": "x", "lines-0-quantity": "1",
             "lines-0-unit_price": "1", "lines-0-tax_rate": "0"},
}


def snapshot():
    """Every row of Folio's own tables, to compare before and after an attempt."""
    rows = {}
    for label in ("billing", "counters"):
        for model in apps.get_app_config(label).get_models():
            rows[model._meta.label] = sorted(
                tuple(sorted(row.items())) for row in model.objects.values())
    return rows


def object_urls():
    """
    (name, kind) of every billing URL that takes a pk: generated, never listed by hand. The
    kind is the one the document pages are given (invoice, credit_note), else the name's
    first word (client, invoice for invoice_mark_paid).
    """
    found = []
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLPattern) and "<int:pk>" in str(pattern.pattern):
            name = pattern.name
            kind = str(pattern.default_args.get("kind", name.split("_")[0]))
            found.append((name, kind))
    return found


OBJECT_URLS = object_urls()


def company_with_documents():
    client = ClientFactory(company=CompanyFactory())
    draft = InvoiceFactory(client=client)
    sent = send_document(InvoiceFactory(client=client))
    credit_draft = CreditNoteFactory(client=client, invoice=sent)
    credit_sent = send_document(CreditNoteFactory(
        client=client, invoice=sent,
        lines=[{"description": "r", "quantity": 1, "unit_price": 1, "tax_rate": 0}]))
    return {"client": [client], "invoice": [draft, sent], "credit_note": [credit_draft,
                                                                          credit_sent]}


@pytest.fixture
def victim():
    return company_with_documents()


@pytest.fixture
def attacker(client):
    membership = MembershipFactory(role=Membership.Role.OWNER)
    company_with_documents_for = ClientFactory(company=membership.company)
    client.force_login(membership.user)
    client.own_client = company_with_documents_for
    return client


def test_the_matrix_covers_every_object_url():
    names = {name for name, _kind in OBJECT_URLS}
    assert {"invoice_detail", "invoice_send", "invoice_cancel", "invoice_credit",
            "invoice_mark_paid", "credit_note_pdf", "client_edit"} <= names
    assert len(OBJECT_URLS) >= 17


@pytest.mark.parametrize("name, kind", OBJECT_URLS)
@pytest.mark.parametrize("method", ["get", "post"])
def test_another_companys_objects_are_out_of_reach(attacker, victim, name, kind, method):
    action = name.removeprefix(f"{kind}_")
    before = snapshot()
    for target in victim[kind]:
        url = reverse(name, args=[target.pk])
        if method == "get":
            response = attacker.get(url)
        else:
            response = attacker.post(url, POST_DATA.get(action, {}))
        assert response.status_code in (404, 403, 405), (url, response.status_code)
    assert snapshot() == before


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
    attacker.post(reverse("switch_company"), {"company": foreign})
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
    ("counters", "numberingsettings"),
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
    ("invoice_create", None, POST_DATA["edit"], {"owner", "accountant"}),
    ("invoice_edit", "draft", POST_DATA["edit"], {"owner", "accountant"}),
    ("invoice_send", "draft", {}, {"owner", "accountant"}),
    ("invoice_delete", "draft", {}, {"owner", "accountant"}),
    ("invoice_mark_paid", "sent", {}, {"owner", "accountant"}),
    ("invoice_cancel", "sent", {"reason": "r"}, {"owner", "accountant"}),
    ("invoice_credit", "sent", {"what": "open"}, {"owner", "accountant"}),
    ("invoice_email", "sent", {}, {"owner", "accountant"}),
    ("members", None, {"user": "newcomer", "role": "viewer"}, {"owner"}),
    ("numbering_settings", None, {"invoice_pattern": "A-{YYYY}-{counter}",
                                  "credit_note_pattern": "B-{YYYY}-{counter}",
                                  "padding": "3", "reset_period": "yearly"}, {"owner"}),
]


@pytest.mark.parametrize("role", ["owner", "accountant", "viewer"])
@pytest.mark.parametrize("name, target, data, allowed", ROLE_ACTIONS,
                         ids=[a[0] for a in ROLE_ACTIONS])
def test_roles(client, role, name, target, data, allowed, django_capture_on_commit_callbacks):
    membership = MembershipFactory(role=role)
    UserFactory(username="newcomer")
    own = ClientFactory(company=membership.company)
    targets = {"client": own, "draft": InvoiceFactory(client=own),
               "sent": send_document(InvoiceFactory(client=own))}
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
