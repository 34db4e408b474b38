"""
One permission rule for every door: the admin asks ``billing.permissions`` what a role may
do in a company, for every registered model's list, change, add and delete, every action and
every inline. The matrix is generated from the admin's registry, as the page matrix of
test_isolation is generated from the URL configuration: a model, action or inline added later
is in it without anyone writing a test.
"""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import RequestFactory
from django.urls import reverse

from billing.models import EmailDelivery, Invitation, Membership, Reminder
from billing.permissions import RULES, Action, can, user_can
from counters.admin import CompanyScopedAdmin
from counters.models import ClientSequence, NumberingSettings, Sequence
from counters.services import save_numbering_settings, set_next_number

from .factories import InvoiceFactory, MembershipFactory, UserFactory
from .test_isolation import company_with_documents, snapshot

pytestmark = pytest.mark.django_db

ROLES = list(Membership.Role.values)
FOLIO_APPS = ("billing", "counters")
REGISTERED = sorted(
    ((model, model_admin) for model, model_admin in admin.site._registry.items()
     if model._meta.app_label in FOLIO_APPS),
    key=lambda entry: entry[0]._meta.label)
REFUSED = "Your role does not allow this"


def test_the_rule():
    assert RULES["viewer"] == {Action.READ}
    assert set(RULES["accountant"]) == {Action.READ, Action.CREATE, Action.SEND, Action.CREDIT,
                                        Action.CANCEL, Action.RECORD_PAYMENT}
    assert set(RULES["owner"]) == set(Action.values)
    assert not can(None, Action.READ)
    with pytest.raises(ValueError):
        can("owner", "fly")


def test_every_folio_model_in_the_admin_is_company_scoped():
    assert REGISTERED
    loose = [m._meta.label for m, a in REGISTERED if not isinstance(a, CompanyScopedAdmin)]
    assert not loose


@pytest.fixture
def world():
    objects = company_with_documents()
    company = objects["client"][0].company
    numbering = NumberingSettings.for_company(company.pk)
    numbering.padding = 5
    save_numbering_settings(numbering)
    set_next_number(company_id=company.pk, series="invoice", period="2099", next_value=5,
                    reason="migration")
    sent = objects["invoice"][1]
    EmailDelivery.objects.create(company=company, kind="invoice", document_id=sent.pk,
                                 recipient="a@example.com")
    Invitation.objects.create(company=company, email="b@example.com", role="viewer")
    Reminder.objects.create(company=company, invoice=sent, step=3, due_on=sent.issue_date)
    ClientSequence.objects.create(company=company, client_id=sent.client_id, series="invoice",
                                  period="2026", last=1)
    return company


def staff(role, company):
    """A staff member with every model permission of Folio's apps: only the role limits."""
    membership = MembershipFactory(role=role, company=company, user__is_staff=True)
    membership.user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=FOLIO_APPS))
    return membership.user


def request_as(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def company_objects(model, model_admin, company):
    path = model_admin.company_path
    return list(model.objects.filter(**({"pk": company.pk} if path == "pk"
                                        else {path: company})))


def actions_of(model_admin, request):
    """(name, the action its role needs) of each action the admin offers a superuser."""
    found = []
    for name, (function, _name, _description) in model_admin.get_actions(request).items():
        needed = getattr(function, "company_action", None)
        if name == "delete_selected":
            needed = model_admin.write_action
        assert needed, f"{model_admin} action {name} does not say what role it needs"
        found.append((name, needed))
    return found


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model, model_admin", REGISTERED,
                         ids=[m._meta.label for m, _a in REGISTERED])
def test_admin_permissions_follow_the_rule(world, role, model, model_admin):
    """
    Whatever the admin lets a superuser do with an object (its own rules: issued documents
    and the ledger are read-only), a staff member may do it only when their role allows the
    action in the object's company; the same for each inline and each action.
    """
    superuser = request_as(UserFactory(is_staff=True, is_superuser=True))
    member = request_as(staff(role, world))
    objects = company_objects(model, model_admin, world)
    assert objects, f"add {model._meta.label} objects to the world"
    write = model_admin.write_action
    assert model_admin.has_add_permission(member) == (
        model_admin.has_add_permission(superuser) and can(role, write))
    for obj in [None, *objects]:
        for perm, needed in (("view", model_admin.read_action), ("change", write),
                             ("delete", write)):
            check = f"has_{perm}_permission"
            expected = getattr(model_admin, check)(superuser, obj) and can(role, needed)
            assert getattr(model_admin, check)(member, obj) == expected, (perm, obj)
        for inline_class in model_admin.inlines:
            inline = inline_class(model, model_admin.admin_site)
            inline_write = inline.write_action or write
            for perm, needed in (("view", model_admin.read_action), ("add", inline_write),
                                 ("change", inline_write), ("delete", inline_write)):
                check = f"has_{perm}_permission"
                expected = getattr(inline, check)(superuser, obj) and can(role, needed)
                assert getattr(inline, check)(member, obj) == expected, (inline, perm, obj)
    offered = model_admin.get_actions(member)
    for name, needed in actions_of(model_admin, superuser):
        assert (name in offered) == can(role, needed), name


def _admin_actions():
    superuser = request_as(UserFactory.build(is_staff=True, is_superuser=True))
    return [(model, name, needed) for model, model_admin in REGISTERED
            for name, needed in actions_of(model_admin, superuser)]


@pytest.fixture(scope="module")
def admin_actions(django_db_blocker):
    with django_db_blocker.unblock():
        return _admin_actions()


def test_every_action_is_in_the_matrix(admin_actions):
    names = {name for _model, name, _needed in admin_actions}
    assert {"send_selected", "mark_paid_selected", "cancel_selected", "delete_selected",
            "set_next_number_action"} <= names


@pytest.mark.parametrize("role", ROLES)
def test_admin_actions_posted_by_each_role(world, client, role, admin_actions,
                                           django_capture_on_commit_callbacks):
    """
    Every action, posted straight to the list (as a hand-made request would, whatever the
    page offers) with every object of the company selected: refused, nothing changes.
    """
    client.force_login(staff(role, world))
    for model, name, needed in admin_actions:
        if can(role, needed):
            continue
        model_admin = admin.site._registry[model]
        selected = [obj.pk for obj in company_objects(model, model_admin, world)]
        before = snapshot()
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"),
                {"action": name, "_selected_action": selected, "post": "yes", "apply": "1",
                 "next_value": "99", "reason": "r"})
        assert response.status_code in (200, 302, 403), (name, response.status_code)
        assert snapshot() == before, (role, model, name)


def test_the_action_runs_only_where_the_role_allows_it(client):
    """An accountant of one company and a viewer of another sends only the first's draft."""
    mine, theirs = InvoiceFactory(), InvoiceFactory()
    user = staff("accountant", mine.company)
    MembershipFactory(user=user, company=theirs.company, role="viewer")
    client.force_login(user)
    response = client.post(reverse("admin:billing_invoice_changelist"), {
        "action": "send_selected", "_selected_action": [mine.pk, theirs.pk]}, follow=True)
    text = response.content.decode()
    assert "1 document issued." in text and REFUSED in text
    mine.refresh_from_db(), theirs.refresh_from_db()
    assert mine.is_issued and theirs.is_draft


@pytest.mark.parametrize("role", ROLES)
def test_a_viewer_cannot_send_a_draft_with_the_admin_action(client, role,
                                                            django_capture_on_commit_callbacks):
    draft = InvoiceFactory()
    client.force_login(staff(role, draft.company))
    client.post(reverse("admin:billing_invoice_changelist"), {
        "action": "send_selected", "_selected_action": [draft.pk]})
    draft.refresh_from_db()
    assert draft.is_issued == can(role, Action.SEND)


def membership_inline_post(client, company, membership, new_role):
    """The company's admin page posted back as a browser would, one member's role changed."""
    url = reverse("admin:billing_company_change", args=[company.pk])
    page = client.get(url)
    assert page.status_code == 200
    data = {"name": company.name, "currency": company.currency, "locale": company.locale,
            "payment_terms_days": company.payment_terms_days, "_save": "Save"}
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update({formset.management_form.add_prefix(name): value
                     for name, value in formset.management_form.initial.items()})
        for form in formset.forms:
            data[form.add_prefix("id")] = form.instance.pk
            data[form.add_prefix("user")] = form.instance.user_id
            data[form.add_prefix("company")] = company.pk
            data[form.add_prefix("role")] = (new_role if form.instance.pk == membership.pk
                                             else form.instance.role)
    return client.post(url, data)


@pytest.mark.parametrize("role", ROLES)
def test_a_member_cannot_make_themselves_owner_in_the_admin_unless_owner(client, role):
    company = MembershipFactory(role="owner").company
    user = staff(role, company)
    own_row = Membership.objects.get(user=user, company=company)
    other = MembershipFactory(company=company, role="viewer")
    client.force_login(user)
    target = other if role == "owner" else own_row
    response = membership_inline_post(client, company, target, "owner")
    target.refresh_from_db()
    if can(role, Action.MANAGE_MEMBERS):
        assert response.status_code == 302 and target.role == "owner"
    else:
        assert response.status_code == 403 and target.role == role


def test_user_can_asks_the_membership_of_that_company():
    membership = MembershipFactory(role="accountant")
    elsewhere = MembershipFactory(role="owner")
    user = membership.user
    assert user_can(user, membership.company_id, Action.SEND)
    assert not user_can(user, membership.company_id, Action.MANAGE_MEMBERS)
    assert not user_can(user, elsewhere.company_id, Action.READ)
    assert user_can(UserFactory(is_superuser=True), elsewhere.company_id, Action.MANAGE_MEMBERS)


def test_sequences_exist_for_the_set_next_number_action(world):
    assert Sequence.objects.filter(company=world).exists()


@pytest.mark.parametrize("role", ROLES)
def test_send_drafts_in_a_users_name_asks_the_rule(role):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    from counters.models import IssuedNumber

    draft = InvoiceFactory()
    user = MembershipFactory(role=role, company=draft.company).user
    args = ["send_drafts", "--company", str(draft.company_id), "--user", user.username,
            "--no-progress"]
    if can(role, Action.SEND):
        call_command(*args, stdout=StringIO(), stderr=StringIO())
        assert IssuedNumber.objects.get().issued_by == user
    else:
        before = snapshot()
        with pytest.raises(CommandError, match="does not allow sending"):
            call_command(*args, stdout=StringIO(), stderr=StringIO())
        assert snapshot() == before
