"""
The REST API (``/api/v1/``): company tokens, the operations on clients and documents,
problem details, idempotent POSTs, roles, and the tokens page and command.
"""

import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from billing.api.idempotency import prune
from billing.api.models import ApiToken, IdempotencyKey
from billing.api.tokens import create_token
from billing.models import Client, DocumentState, Invoice, Membership, Payment
from counters.models import IssuedNumber

from .factories import (
    ClientFactory,
    CompanyFactory,
    InvoiceFactory,
    MembershipFactory,
)

pytestmark = pytest.mark.django_db
API = "/api/v1"


class Api:
    """A test client that speaks to the API with one token."""

    def __init__(self, client, token):
        self.client, self.token = client, token

    def call(self, method, path, body=None, key=None, **headers):
        if self.token:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {self.token}"
        if key is not None:
            headers["HTTP_IDEMPOTENCY_KEY"] = key
        if method == "get":
            return self.client.get(API + path, **headers)
        data = json.dumps(body) if body is not None else ""  # a bare POST: no body at all
        return getattr(self.client, method)(API + path, data, content_type="application/json",
                                            **headers)

    def get(self, path, **kw):
        return self.call("get", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("post", path, body, **kw)

    def patch(self, path, body, **kw):
        return self.call("patch", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("delete", path, **kw)


@pytest.fixture
def company():
    return CompanyFactory()


@pytest.fixture
def owner(company):
    return MembershipFactory(company=company, role=Membership.Role.OWNER).user


def api_for(client, company, role="accountant", user=None):
    _row, token = create_token(company, role, name="test", user=user)
    return Api(client, token)


@pytest.fixture
def api(client, company, owner):
    return api_for(client, company, "accountant", owner)


def a_draft_body(client_id, **extra):
    return {"client": client_id, "lines": [
        {"description": "Consulting", "quantity": "2", "unit_price": "100.00",
         "tax_rate": "20"}], **extra}


def assert_problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body


# --- Tokens -------------------------------------------------------------------------------


def test_a_token_is_stored_hashed_and_found_by_its_prefix(company):
    row, token = create_token(company, "viewer", name="shop")
    assert token.startswith(f"folio_{row.prefix}_")
    assert token not in row.secret_hash and len(row.secret_hash) == 64
    assert ApiToken.objects.filter(secret_hash__contains=token.split("_", 2)[2]).count() == 0


@pytest.mark.parametrize("header", [
    None, "Bearer nonsense", "Bearer folio_00000000_wrong", "Basic dXNlcjpwYXNz",
])
def test_without_a_valid_token_the_api_answers_401_problem(client, header):
    headers = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get(f"{API}/invoices", **headers)
    body = assert_problem(response, 401)
    assert "Bearer" in body["detail"]
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_token_with_a_wrong_secret_is_refused(client, company):
    row, token = create_token(company, "owner")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert_problem(Api(client, forged).get("/invoices"), 401)
    assert Api(client, token).get("/invoices").status_code == 200


def test_a_revoked_token_no_longer_works(client, company):
    row, token = create_token(company, "owner")
    api = Api(client, token)
    assert api.get("/clients").status_code == 200
    row.revoked_at = timezone.now()
    row.save()
    assert_problem(api.get("/clients"), 401)


def test_a_member_who_leaves_takes_the_tokens_they_made(client, company, owner):
    """Removing a member revokes their tokens of that company; the others' keep working."""
    from billing.services import remove_membership

    leaving = MembershipFactory(company=company, role=Membership.Role.OWNER)
    theirs = api_for(client, company, "owner", leaving.user)
    staying = api_for(client, company, "owner", owner)
    elsewhere = MembershipFactory(user=leaving.user, role=Membership.Role.OWNER)
    other_company = api_for(client, elsewhere.company, "owner", leaving.user)
    remove_membership(leaving)
    assert_problem(theirs.get("/clients"), 401)
    assert staying.get("/clients").status_code == 200
    assert other_company.get("/clients").status_code == 200


def test_a_lowered_role_revokes_the_makers_tokens_above_it(client, company, owner):
    """A token never acts above its maker's role."""
    from billing.services import set_membership

    member = MembershipFactory(company=company, role=Membership.Role.OWNER)
    as_owner = api_for(client, company, "owner", member.user)
    as_viewer = api_for(client, company, "viewer", member.user)
    set_membership(company, member.user, Membership.Role.ACCOUNTANT)
    assert_problem(as_owner.get("/clients"), 401)
    assert as_viewer.get("/clients").status_code == 200


def test_a_token_records_when_it_was_last_used(client, company):
    row, token = create_token(company, "viewer")
    assert row.last_used_at is None
    Api(client, token).get("/clients")
    row.refresh_from_db()
    assert row.last_used_at is not None


def test_the_command_prints_a_working_token(client, company, owner):
    out = StringIO()
    call_command("api_token", "--company", str(company.pk), "--role", "viewer",
                 "--name", "provisioning", "--user", owner.username, stdout=out)
    token = out.getvalue().strip()
    row = ApiToken.objects.get()
    assert (row.company, row.role, row.name, row.created_by) == (company, "viewer",
                                                                  "provisioning", owner)
    assert Api(client, token).get("/clients").status_code == 200


def test_the_command_refuses_an_unknown_company():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No company"):
        call_command("api_token", "--company", "999999", "--role", "viewer")


# --- Roles --------------------------------------------------------------------------------


def test_a_viewer_token_reads_but_cannot_write(client, company):
    draft = InvoiceFactory(client=ClientFactory(company=company))
    viewer = api_for(client, company, "viewer")
    assert viewer.get(f"/invoices/{draft.pk}").status_code == 200
    attempts = [
        viewer.post("/clients", {"name": "New"}),
        viewer.post("/invoices", a_draft_body(draft.client_id)),
        viewer.patch(f"/invoices/{draft.pk}", {"notes": "changed"}),
        viewer.delete(f"/invoices/{draft.pk}"),
        viewer.post(f"/invoices/{draft.pk}/send"),
    ]
    for response in attempts:
        assert_problem(response, 403)
    draft.refresh_from_db()
    assert draft.state == DocumentState.DRAFT and draft.notes == ""
    assert Invoice.objects.count() == 1 and IssuedNumber.objects.count() == 0


def test_the_audit_summary_is_for_owner_tokens(client, company):
    InvoiceFactory(client=ClientFactory(company=company))
    assert_problem(api_for(client, company, "accountant").get("/audit"), 403)
    response = api_for(client, company, "owner").get("/audit")
    assert response.status_code == 200
    assert response.json()["findings"] == 0


# --- Clients and drafts ------------------------------------------------------------------


def test_create_read_update_a_client(api):
    response = api.post("/clients", {"name": "Acme", "country": "FR", "city": "Lyon",
                                     "email": "ap@acme.example"})
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["name"] == "Acme" and created["country"] == "FR"
    response = api.patch(f"/clients/{created['id']}", {"city": "Paris"})
    assert response.json()["city"] == "Paris" and response.json()["name"] == "Acme"
    assert api.get(f"/clients/{created['id']}").json()["city"] == "Paris"


def test_a_clients_code_is_read_written_and_kept_by_a_partial_update(api):
    created = api.post("/clients", {"name": "Acme", "country": "FR", "code": "acme"}).json()
    assert created["code"] == "ACME"
    patched = api.patch(f"/clients/{created['id']}", {"email": "ap@acme.example"}).json()
    assert patched["code"] == "ACME" and patched["email"] == "ap@acme.example"


def test_a_client_is_checked_by_the_pages_form(api):
    response = api.post("/clients", {"name": "", "vat_id": "123", "country": "FR"})
    body = assert_problem(response, 422)
    fields = {error["field"] for error in body["errors"]}
    assert {"name", "vat_id"} <= fields


def test_a_draft_with_lines_is_created_read_updated_and_deleted(api, company):
    buyer = ClientFactory(company=company)
    response = api.post("/invoices", a_draft_body(buyer.pk, notes="Thanks"))
    assert response.status_code == 201, response.content
    draft = response.json()
    assert draft["state"] == "draft" and draft["number"] is None
    assert draft["number_preview"].startswith("INV-")
    assert (draft["subtotal"], draft["tax_total"], draft["total"]) == ("200.00", "40.00",
                                                                       "240.00")
    assert draft["lines"][0]["unit_price"] == "100.00"
    response = api.patch(f"/invoices/{draft['id']}", {"lines": [
        {"description": "Design", "quantity": "1.5", "unit_price": "80.00", "tax_rate": "20"},
        {"description": "Hosting", "unit_price": "10.00", "tax_rate": "20"},
    ]})
    assert response.status_code == 200, response.content
    changed = response.json()
    assert [line["description"] for line in changed["lines"]] == ["Design", "Hosting"]
    assert changed["total"] == "156.00" and changed["notes"] == "Thanks"
    assert api.delete(f"/invoices/{draft['id']}").status_code == 204
    assert not Invoice.objects.exists()


def test_money_is_written_as_decimal_strings_never_floats(api, company):
    draft = InvoiceFactory(client=ClientFactory(company=company))
    text = api.get(f"/invoices/{draft.pk}").content.decode()
    body = json.loads(text, parse_float=lambda _: pytest.fail("a float in " + text))
    assert isinstance(body["total"], str) and Decimal(body["total"]) == Decimal("240.00")


def test_bad_lines_are_refused_with_each_fields_message(api, company):
    buyer = ClientFactory(company=company)
    response = api.post("/invoices", {"client": buyer.pk, "lines": [
        {"description": "Ok", "unit_price": "10.00"},
        {"description": "Bad", "quantity": "-1", "unit_price": "abc"}]})
    body = assert_problem(response, 422)
    fields = {error["field"] for error in body["errors"]}
    assert {"lines[1].quantity", "lines[1].unit_price"} <= fields
    assert not Invoice.objects.exists()


def test_a_draft_needs_a_line_and_a_client_of_the_company(api, company):
    stranger = ClientFactory()  # another company's
    body = assert_problem(api.post("/invoices", {"client": stranger.pk, "lines": []}), 422)
    fields = {error["field"] for error in body["errors"]}
    assert "client" in fields and "" in fields


def test_an_issued_document_cannot_be_changed_or_deleted(api, company):
    draft = InvoiceFactory(client=ClientFactory(company=company))
    api.post(f"/invoices/{draft.pk}/send")
    assert_problem(api.patch(f"/invoices/{draft.pk}", {"notes": "x"}), 409)
    assert_problem(api.delete(f"/invoices/{draft.pk}"), 409)
    assert_problem(api.post(f"/invoices/{draft.pk}/send"), 409)


def test_schema_errors_are_problems_too(api):
    body = assert_problem(api.post("/invoices", {"client": "x"}), 422)
    assert body["errors"]


def test_an_unreadable_body_is_a_documented_400_problem(client, api):
    """A body that is not JSON answers 400, which the schema lists for operations with one."""
    response = client.patch(f"{API}/clients/1", data=b"\t\x1fY",
                            content_type="application/json",
                            HTTP_AUTHORIZATION=f"Bearer {api.token}")
    assert_problem(response, 400)
    schema = client.get(f"{API}/openapi.json").json()
    assert "400" in schema["paths"]["/api/v1/clients/{id}"]["patch"]["responses"]
    assert "400" not in schema["paths"]["/api/v1/clients/{id}"]["get"]["responses"]


# --- Lists ----------------------------------------------------------------------------------


def test_lists_are_filtered_and_paged_by_an_opaque_cursor(api, company):
    buyer, other = ClientFactory(company=company), ClientFactory(company=company)
    drafts = [InvoiceFactory(client=buyer) for _ in range(5)]
    InvoiceFactory(client=other)
    api.post(f"/invoices/{drafts[0].pk}/send")
    seen, cursor = [], None
    while True:
        query = f"?client={buyer.pk}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = api.get("/invoices" + query).json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert not cursor.isdigit()  # opaque: not an id to compute with
    assert seen == sorted((d.pk for d in drafts), reverse=True)
    sent = api.get("/invoices?state=sent").json()["items"]
    assert [item["id"] for item in sent] == [drafts[0].pk]
    today = timezone.localdate()
    dated = api.get(f"/invoices?date_from={today}&date_to={today}").json()["items"]
    assert [item["id"] for item in dated] == [drafts[0].pk]
    assert dated[0]["open_amount"] == "240.00"
    assert_problem(api.get("/invoices?state=lost"), 422)
    assert_problem(api.get("/invoices?cursor=nonsense!"), 422)


# --- Actions ------------------------------------------------------------------------------


def test_send_answers_the_issued_document_with_its_number(api, company):
    draft = InvoiceFactory(client=ClientFactory(company=company))
    response = api.post(f"/invoices/{draft.pk}/send", {"email": False})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "sent" and body["number"].startswith("INV-")
    assert body["number_preview"] is None and body["open_amount"] == "240.00"
    assert Invoice.objects.get().number == body["number"]


def test_a_send_refused_by_the_rules_says_why_and_issues_nothing(api, company):
    draft = InvoiceFactory(client=ClientFactory(company=company), lines=[])
    body = assert_problem(api.post(f"/invoices/{draft.pk}/send"), 422)
    assert "line" in body["detail"]
    assert not IssuedNumber.objects.exists()


def test_payments_credit_and_cancel(api, company):
    buyer = ClientFactory(company=company)
    invoice = InvoiceFactory(client=buyer)
    api.post(f"/invoices/{invoice.pk}/send")
    body = assert_problem(api.post(f"/invoices/{invoice.pk}/payments",
                                   {"amount": "999.00", "method": "card"}), 422)
    assert body["errors"][0]["field"] == "amount"
    response = api.post(f"/invoices/{invoice.pk}/payments",
                        {"amount": "40.00", "method": "bank_transfer", "reference": "X1"})
    assert response.status_code == 201, response.content
    assert response.json()["amount"] == "40.00"
    assert [p["amount"] for p in api.get(f"/invoices/{invoice.pk}/payments").json()] == [
        "40.00"]
    response = api.post(f"/invoices/{invoice.pk}/credit",
                        {"amount": "50.00", "rate": "20.00", "reason": "Discount"})
    assert response.status_code == 201, response.content
    credit = response.json()
    assert credit["state"] == "draft" and credit["invoice"] == invoice.pk
    sent = api.post(f"/credit-notes/{credit['id']}/send").json()
    assert sent["number"].startswith("CN-")
    assert api.get(f"/invoices/{invoice.pk}").json()["open_amount"] == "140.00"
    # Cancelling needs the payments reversed first: the service says so.
    body = assert_problem(api.post(f"/invoices/{invoice.pk}/cancel", {"reason": "Oops"}), 409)
    assert "payments" in body["detail"]
    other = InvoiceFactory(client=buyer)
    api.post(f"/invoices/{other.pk}/send")
    response = api.post(f"/invoices/{other.pk}/cancel", {"reason": "Wrong client"})
    assert response.status_code == 200, response.content
    assert response.json()["invoice"]["state"] == "cancelled"
    assert response.json()["credit_note"]["state"] == "sent"
    assert Payment.objects.count() == 1


def test_a_mistaken_payment_is_reversed_with_a_reason_and_the_invoice_reopens(
        api, client, company):
    buyer = ClientFactory(company=company)
    invoice, other = InvoiceFactory(client=buyer), InvoiceFactory(client=buyer)
    for draft in (invoice, other):
        api.post(f"/invoices/{draft.pk}/send")
    total = api.get(f"/invoices/{invoice.pk}").json()["total"]
    paid = api.post(f"/invoices/{invoice.pk}/payments",
                    {"amount": total, "method": "cash"}).json()
    other_paid = api.post(f"/invoices/{other.pk}/payments",
                          {"amount": "10.00", "method": "cash"}).json()
    assert api.get(f"/invoices/{invoice.pk}").json()["state"] == "paid"
    reverse = f"/invoices/{invoice.pk}/payments/{paid['id']}/reverse"

    body = assert_problem(api.post(reverse, {"reason": "  "}), 422)
    assert body["errors"][0]["field"] == "reason"
    # Only this invoice's payments, and only for roles that record payments.
    assert_problem(api.post(f"/invoices/{invoice.pk}/payments/{other_paid['id']}/reverse",
                            {"reason": "Not ours"}), 404)
    assert_problem(api_for(client, company, "viewer").post(reverse, {"reason": "No"}), 403)
    assert_problem(api_for(client, CompanyFactory(), "owner").post(
        reverse, {"reason": "Theirs"}), 404)

    response = api.post(reverse, {"reason": "Booked on the wrong invoice"})
    assert response.status_code == 200, response.content
    assert response.json() == {**paid, "reversed": True}
    reopened = api.get(f"/invoices/{invoice.pk}").json()
    assert (reopened["state"], reopened["open_amount"]) == ("sent", total)
    assert "already" in assert_problem(api.post(reverse, {"reason": "Again"}), 409)["detail"]
    assert Payment.objects.count() == 2  # kept, never deleted


def test_a_client_is_deleted_unless_documents_name_it(api, client, company):
    mistaken, kept = (ClientFactory(company=company) for _ in range(2))
    InvoiceFactory(client=kept)
    body = assert_problem(api.delete(f"/clients/{kept.pk}"), 409)
    assert "has documents" in body["detail"]
    assert_problem(api_for(client, company, "viewer").delete(f"/clients/{mistaken.pk}"), 403)
    assert api.delete(f"/clients/{mistaken.pk}").status_code == 204
    assert_problem(api.get(f"/clients/{mistaken.pk}"), 404)
    assert list(Client.objects.values_list("pk", flat=True)) == [kept.pk]


def test_downloads(api, company):
    invoice = InvoiceFactory(client=ClientFactory(company=company))
    response = api.get(f"/invoices/{invoice.pk}/pdf")
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    assert_problem(api.get(f"/invoices/{invoice.pk}/ubl"), 409)  # a draft has none
    api.post(f"/invoices/{invoice.pk}/send")
    for syntax, start in [("ubl", b"<?xml"), ("cii", b"<?xml"), ("facturx", b"%PDF"),
                          ("pdf", b"%PDF")]:
        response = api.get(f"/invoices/{invoice.pk}/{syntax}")
        assert response.status_code == 200, (syntax, response.content[:300])
        assert response.content.startswith(start), syntax


def test_a_draft_chooses_its_numbering_series(api, company):
    from counters.models import NumberingSettings
    from counters.services import save_numbering_settings

    shop = save_numbering_settings(NumberingSettings(
        company=company, name="Shop", code="SHOP", invoice_pattern="SHOP-{YYYY}-{counter}",
        credit_note_pattern="SHOP-C-{YYYY}-{counter}"))
    listed = api.get("/numbering/series").json()
    assert [(s["name"], s["code"], s["is_default"]) for s in listed] == [
        ("Main", "", True), ("Shop", "SHOP", False)]
    assert api.get(f"/numbering/preview?series={shop.pk}").json()["invoice"].startswith(
        "SHOP-")
    buyer = ClientFactory(company=company)
    draft = api.post("/invoices", a_draft_body(buyer.pk, series=shop.pk)).json()
    assert draft["series"] == shop.pk and draft["number_preview"].startswith("SHOP-")
    patched = api.patch(f"/invoices/{draft['id']}", {"notes": "kept"}).json()
    assert patched["series"] == shop.pk  # a patch without it keeps it
    sent = api.post(f"/invoices/{draft['id']}/send").json()
    assert sent["number"].startswith("SHOP-") and sent["series"] == shop.pk
    foreign = save_numbering_settings(NumberingSettings(
        company=CompanyFactory(), name="Theirs", code="T", invoice_pattern="T-{counter}",
        credit_note_pattern="TC-{counter}", reset_period="never"))
    assert_problem(api.post("/invoices", a_draft_body(buyer.pk, series=foreign.pk)), 422)
    assert api.get(f"/numbering/preview?series={foreign.pk}").status_code == 404


def test_numbering_preview_consumes_nothing(api, company):
    body = api.get("/numbering/preview").json()
    assert body["invoice"].startswith("INV-") and body["credit_note"].startswith("CN-")
    assert api.get("/numbering/preview").json() == body
    assert not IssuedNumber.objects.exists()


# --- Idempotency --------------------------------------------------------------------------


def test_a_retried_send_replays_the_first_answer(api, company):
    draft = InvoiceFactory(client=ClientFactory(company=company))
    first = api.post(f"/invoices/{draft.pk}/send", key="send-1")
    again = api.post(f"/invoices/{draft.pk}/send", key="send-1")
    assert first.status_code == again.status_code == 200
    assert first.content == again.content
    assert again["Idempotent-Replayed"] == "true"
    assert IssuedNumber.objects.count() == 1


def test_a_retried_create_makes_one_draft(api, company):
    body = a_draft_body(ClientFactory(company=company).pk)
    first = api.post("/invoices", body, key="create-1")
    again = api.post("/invoices", body, key="create-1")
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert Invoice.objects.count() == 1


def test_a_refusal_is_replayed_too(api, company):
    draft = InvoiceFactory(client=ClientFactory(company=company), lines=[])
    first = api.post(f"/invoices/{draft.pk}/send", key="k")
    draft.lines.create(description="Late", quantity=1, unit_price=Decimal("1"))
    again = api.post(f"/invoices/{draft.pk}/send", key="k")
    assert first.status_code == again.status_code == 422 and first.content == again.content
    assert not IssuedNumber.objects.exists()


def test_the_same_key_with_another_body_is_refused(api, company):
    buyer = ClientFactory(company=company)
    api.post("/invoices", a_draft_body(buyer.pk), key="k")
    body = assert_problem(api.post("/invoices", a_draft_body(buyer.pk, notes="other"),
                                   key="k"), 422)
    assert "Idempotency-Key" in body["detail"]
    assert Invoice.objects.count() == 1


def test_keys_belong_to_their_company(client, company):
    other = CompanyFactory()
    mine, theirs = api_for(client, company), api_for(client, other)
    assert mine.post("/clients", {"name": "A"}, key="same").status_code == 201
    assert theirs.post("/clients", {"name": "B"}, key="same").status_code == 201
    assert IdempotencyKey.objects.count() == 2


def test_keys_are_kept_a_day_then_pruned(api, company):
    api.post("/clients", {"name": "A"}, key="old")
    api.post("/clients", {"name": "B"}, key="new")
    IdempotencyKey.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=25))
    assert prune() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    assert prune(now=timezone.now() + timedelta(hours=23)) == 0


def test_the_prune_command(api):
    api.post("/clients", {"name": "A"}, key="old")
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(days=2))
    out = StringIO()
    call_command("prune_idempotency_keys", stdout=out)
    assert "1" in out.getvalue() and not IdempotencyKey.objects.exists()


def test_a_bad_key_is_refused(api):
    assert_problem(api.post("/clients", {"name": "A"}, key="x" * 256), 422)


# --- The tokens page ----------------------------------------------------------------------


def test_owners_create_a_token_shown_once_and_revoke_it(client, company, owner):
    client.force_login(owner)
    url = reverse("api_tokens")
    response = client.post(url, {"create": "1", "name": "Shop", "role": "accountant"})
    assert response.status_code == 200
    token = response.context["new_token"]
    assert token in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    page = client.get(url).content.decode()
    assert token not in page and ApiToken.objects.get().prefix in page
    assert Api(client, token).get("/clients").status_code == 200
    row = ApiToken.objects.get()
    response = client.post(url, {"revoke": str(row.pk)}, follow=True)
    assert "revoked" in response.content.decode()
    assert_problem(Api(client, token).get("/clients"), 401)


@pytest.mark.parametrize("role", ["accountant", "viewer"])
def test_only_owners_see_the_tokens_page(client, company, role):
    member = MembershipFactory(company=company, role=role).user
    client.force_login(member)
    assert client.get(reverse("api_tokens")).status_code == 403
    assert client.post(reverse("api_tokens"), {"create": "1", "role": "owner"}
                       ).status_code == 403
    assert not ApiToken.objects.exists()


def test_an_owner_cannot_revoke_another_companys_token(client, company, owner):
    theirs, _token = create_token(CompanyFactory(), "owner")
    client.force_login(owner)
    assert client.post(reverse("api_tokens"), {"revoke": str(theirs.pk)}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_the_docs_and_schema_are_served(client):
    assert client.get(f"{API}/openapi.json").status_code == 200
    assert client.get(f"{API}/docs").status_code == 200


def test_a_key_replays_only_to_the_token_that_used_it(client, company):
    owner_api, viewer_api = api_for(client, company, "owner"), api_for(client, company, "viewer")
    assert owner_api.post("/clients", {"name": "By the owner"}, key="shared").status_code == 201
    # A viewer may not create clients: another token's answer is not replayed to it.
    body = assert_problem(viewer_api.post("/clients", {"name": "By the owner"}, key="shared"),
                          422)
    assert "another token" in body["detail"]
    assert Client.objects.filter(name="By the owner").count() == 1


def test_a_refusal_of_the_token_itself_is_not_kept_under_the_key(client, company):
    owner_api, viewer_api = api_for(client, company, "owner"), api_for(client, company, "viewer")
    assert_problem(viewer_api.post("/clients", {"name": "First"}, key="vk"), 403)
    assert not IdempotencyKey.objects.exists()
    assert owner_api.post("/clients", {"name": "First"}, key="vk").status_code == 201
    assert Client.objects.filter(name="First").exists()


@pytest.mark.parametrize("key", [None, "big"])
def test_a_body_over_the_upload_limit_is_a_413_problem(api, company, settings, key):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = a_draft_body(ClientFactory(company=company).pk, notes="x" * 2000)
    assert_problem(api.post("/invoices", body, key=key), 413)
    draft = InvoiceFactory(client=ClientFactory(company=company))
    assert_problem(api.post(f"/invoices/{draft.pk}/send", {"email": False, "x": "y" * 2000},
                            key=key), 413)
    assert not Invoice.objects.exclude(pk=draft.pk).exists()
    assert not IssuedNumber.objects.exists() and not IdempotencyKey.objects.exists()


@pytest.mark.parametrize("body", [[], "x", 123, None])
def test_a_send_body_that_is_not_an_object_is_refused(api, company, body):
    draft = InvoiceFactory(client=ClientFactory(company=company))
    response = api.client.post(f"{API}/invoices/{draft.pk}/send", json.dumps(body),
                               content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {api.token}")
    assert_problem(response, 422)
    assert not IssuedNumber.objects.exists()


@pytest.mark.parametrize("typed, stored", [("1e2", "100.00"), ("0.1", "0.10"), ("7", "7.00")])
def test_a_payment_is_answered_as_stored(api, company, typed, stored):
    invoice = InvoiceFactory(client=ClientFactory(company=company))
    api.post(f"/invoices/{invoice.pk}/send")
    response = api.post(f"/invoices/{invoice.pk}/payments",
                        {"amount": typed, "method": "bank_transfer"})
    assert response.status_code == 201, response.content
    assert response.json()["amount"] == stored
    assert str(Payment.objects.get().amount) == stored


@pytest.mark.parametrize("body, field", [
    ({"lines": []}, "lines"),
    ({"amount": "1.00", "rate": "20.00", "lines": [{"line": "LINE"}]}, "amount"),
    ({"lines": [{"line": "LINE"}, {"line": "LINE", "quantity": "0.5"}]}, "lines[1].line"),
    ({"rate": "20"}, "rate"),
    ({"lines": [{"line": "LINE"}], "rate": "20"}, "rate"),
])
def test_an_ambiguous_credit_request_is_refused(api, company, body, field):
    invoice = InvoiceFactory(client=ClientFactory(company=company))
    api.post(f"/invoices/{invoice.pk}/send")
    line = invoice.lines.get().pk
    body = json.loads(json.dumps(body).replace('"LINE"', str(line)))
    problem = assert_problem(api.post(f"/invoices/{invoice.pk}/credit", body), 422)
    assert field in [e["field"] for e in problem["errors"]]
    assert not invoice.credit_notes.exists()


@pytest.mark.parametrize("operation", ["cancel", "credit"])
def test_an_operation_the_documents_state_refuses_is_a_conflict(api, company, operation):
    """409, as the schema says: "not in a state that allows this"; 422 is for input."""
    draft = InvoiceFactory(client=ClientFactory(company=company))
    body = assert_problem(api.post(f"/invoices/{draft.pk}/{operation}", {"reason": "x"}), 409)
    assert body["detail"]
    assert not draft.credit_notes.exists()


def test_credit_errors_name_the_apis_fields(api, company):
    invoice = InvoiceFactory(client=ClientFactory(company=company))
    api.post(f"/invoices/{invoice.pk}/send")
    line = invoice.lines.get()
    too_many = str(line.quantity + 1)
    problem = assert_problem(api.post(f"/invoices/{invoice.pk}/credit", {
        "lines": [{"line": line.pk, "quantity": too_many}]}), 422)
    assert [e["field"] for e in problem["errors"]] == ["lines[0].quantity"]
    problem = assert_problem(api.post(f"/invoices/{invoice.pk}/credit", {"amount": "5.00"}),
                             422)
    assert [e["field"] for e in problem["errors"]] == ["rate"]
    problem = assert_problem(api.post(f"/invoices/{invoice.pk}/credit", {
        "lines": [{"line": 999999}]}), 422)
    assert [e["field"] for e in problem["errors"]] == ["lines"]
    assert not invoice.credit_notes.exists()


@pytest.mark.parametrize("rate", ["20", "20.0", "20.00", "S 20"])
def test_a_credit_rate_is_read_as_a_number(api, company, rate):
    invoice = InvoiceFactory(client=ClientFactory(company=company))
    api.post(f"/invoices/{invoice.pk}/send")
    response = api.post(f"/invoices/{invoice.pk}/credit", {"amount": "5.00", "rate": rate})
    assert response.status_code == 201, response.content
    assert response.json()["subtotal"] == "5.00"


def test_a_credit_rate_the_invoice_does_not_have_is_refused(api, company):
    invoice = InvoiceFactory(client=ClientFactory(company=company))
    api.post(f"/invoices/{invoice.pk}/send")
    problem = assert_problem(api.post(f"/invoices/{invoice.pk}/credit", {
        "amount": "5.00", "rate": "7"}), 422)
    assert [e["field"] for e in problem["errors"]] == ["rate"]


@pytest.mark.parametrize("language", ["en", "fr", "de"])
def test_api_numbers_are_read_the_same_in_every_language(api, company, language):
    """Accept-Language sets the messages' language, never how a number is read."""
    buyer = ClientFactory(company=company).pk
    comma = {"client": buyer, "lines": [{"description": "W", "quantity": "1,5",
                                         "unit_price": "10.00"}]}
    problem = assert_problem(api.post("/invoices", comma, HTTP_ACCEPT_LANGUAGE=language), 422)
    assert [e["field"] for e in problem["errors"]] == ["lines[0].quantity"]
    point = {"client": buyer, "lines": [{"description": "W", "quantity": "1.000",
                                         "unit_price": "10.00"}]}
    response = api.post("/invoices", point, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 201, response.content
    assert Invoice.objects.get().lines.get().quantity == Decimal("1")
    invoice = Invoice.objects.get()
    api.post(f"/invoices/{invoice.pk}/send")
    assert_problem(api.post(f"/invoices/{invoice.pk}/payments",
                            {"amount": "1,00", "method": "cash"},
                            HTTP_ACCEPT_LANGUAGE=language), 422)
    assert not Payment.objects.exists()


def test_a_schema_refusal_names_fields_as_the_forms_do(api, company):
    response = api.post("/invoices", {"client": ClientFactory(company=company).pk, "lines": [
        {"description": "Ok", "unit_price": "10.00"}, {"description": "x" * 600,
                                                       "unit_price": "1"}]})
    problem = assert_problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == ["lines[1].description"]
