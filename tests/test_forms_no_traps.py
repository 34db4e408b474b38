"""Forms that cannot trap: what the user sees is what happens, whatever order they act in."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import Invoice, Membership

from .factories import ClientFactory, InvoiceFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client):
    member = MembershipFactory(role=Membership.Role.OWNER)
    client.force_login(member.user)
    return member


def line(description, price):
    return {"description": description, "quantity": Decimal("1"), "unit_price": Decimal(price),
            "tax_rate": Decimal("20")}


def edit_data(draft, changes):
    """The edit form of ``draft`` as the page fills it, with ``changes`` {row: description}."""
    lines = list(draft.lines.all())
    data = {"client": draft.client_id, "currency": draft.currency, "due_date": "", "notes": "",
            "lines-TOTAL_FORMS": len(lines), "lines-INITIAL_FORMS": len(lines),
            "lines-MIN_NUM_FORMS": 0, "lines-MAX_NUM_FORMS": 1000}
    for i, item in enumerate(lines):
        data.update({f"lines-{i}-id": item.pk, f"lines-{i}-document": draft.pk,
                     f"lines-{i}-description": changes.get(i, item.description),
                     f"lines-{i}-quantity": item.quantity, f"lines-{i}-unit_price": item.unit_price,
                     f"lines-{i}-tax_rate": item.tax_rate})
    return data


def test_editing_one_line_of_a_draft_keeps_the_order_of_its_lines(client, owner):
    draft = InvoiceFactory(client=ClientFactory(company=owner.company),
                           lines=[line("First", "1"), line("Second", "2"), line("Third", "3")])
    response = client.post(reverse("invoice_edit", args=[draft.pk]),
                           edit_data(draft, {2: "Third, corrected"}))
    assert response.status_code == 302
    assert [item.description for item in Invoice.objects.get(pk=draft.pk).lines.all()] == [
        "First", "Second", "Third, corrected"]


def test_removing_and_adding_lines_keeps_the_rows_order(client, owner):
    draft = InvoiceFactory(client=ClientFactory(company=owner.company),
                           lines=[line("First", "1"), line("Second", "2"), line("Third", "3")])
    data = edit_data(draft, {})
    data.update({"lines-0-DELETE": "on", "lines-TOTAL_FORMS": 4, "lines-3-description": "Fourth",
                 "lines-3-quantity": "1", "lines-3-unit_price": "4", "lines-3-tax_rate": "20"})
    assert client.post(reverse("invoice_edit", args=[draft.pk]), data).status_code == 302
    assert [(item.position, item.description) for item in draft.lines.all()] == [
        (0, "Second"), (1, "Third"), (2, "Fourth")]


def new_invoice_data(client_id, token):
    return {"client": client_id, "currency": "EUR", "due_date": "", "notes": "",
            "form_token": token, "lines-TOTAL_FORMS": 1, "lines-INITIAL_FORMS": 0,
            "lines-MIN_NUM_FORMS": 0, "lines-MAX_NUM_FORMS": 1000,
            "lines-0-description": "Work", "lines-0-quantity": "1",
            "lines-0-unit_price": "100", "lines-0-tax_rate": "20"}


def test_a_new_draft_form_submitted_twice_creates_one_draft(client, owner):
    buyer = ClientFactory(company=owner.company)
    page = client.get(reverse("invoice_create")).content.decode()
    token = page.split('name="form_token" value="')[1].split('"')[0]
    assert len(token) >= 16
    first = client.post(reverse("invoice_create"), new_invoice_data(buyer.pk, token))
    draft = Invoice.objects.get()
    assert first.url == reverse("invoice_detail", args=[draft.pk])

    again = client.post(reverse("invoice_create"), new_invoice_data(buyer.pk, token), follow=True)
    assert Invoice.objects.count() == 1  # the same form: no second draft
    assert again.redirect_chain == [(reverse("invoice_detail", args=[draft.pk]), 302)]
    assert "This form was already saved: here is the draft it created." in \
        again.content.decode()

    another = client.get(reverse("invoice_create")).content.decode()
    other_token = another.split('name="form_token" value="')[1].split('"')[0]
    assert other_token != token  # a new form is a new draft
    client.post(reverse("invoice_create"), new_invoice_data(buyer.pk, other_token))
    assert Invoice.objects.count() == 2


def test_a_form_with_errors_keeps_its_token(client, owner):
    buyer = ClientFactory(company=owner.company)
    data = {**new_invoice_data(buyer.pk, "tok-123456789abcdef"), "currency": "EURO"}
    page = client.post(reverse("invoice_create"), data).content.decode()
    assert 'name="form_token" value="tok-123456789abcdef"' in page
    assert not Invoice.objects.exists()
    client.post(reverse("invoice_create"), {**data, "currency": "EUR"})
    client.post(reverse("invoice_create"), {**data, "currency": "EUR"})
    assert Invoice.objects.count() == 1


def test_another_users_form_token_leads_nowhere(client, owner):
    """The tokens live in the session: someone else's token is just a new form."""
    buyer = ClientFactory(company=owner.company)
    client.post(reverse("invoice_create"), new_invoice_data(buyer.pk, "shared-token-0123"))
    colleague = MembershipFactory(company=owner.company, role=Membership.Role.ACCOUNTANT)
    client.force_login(colleague.user)
    client.post(reverse("invoice_create"), new_invoice_data(buyer.pk, "shared-token-0123"))
    assert Invoice.objects.count() == 2


def test_lines_ticked_under_the_whole_open_amount_draft_nothing(client, owner):
    from billing.models import CreditNote
    from billing.services import send_document

    invoice = send_document(InvoiceFactory(client=ClientFactory(company=owner.company),
                                           lines=[line("First", "100"), line("Second", "50")]))
    first = invoice.lines.first()
    response = client.post(reverse("invoice_credit", args=[invoice.pk]),
                           {"what": "open", "line": [first.pk], "reason": ""}, follow=True)
    assert not CreditNote.objects.exists()  # before: the whole invoice, silently
    assert "You ticked lines but chose the whole open amount" in response.content.decode()
    client.post(reverse("invoice_credit", args=[invoice.pk]),
                {"what": "lines", "line": [first.pk], "reason": ""})
    assert [item.description for item in CreditNote.objects.get().lines.all()] == ["First"]


def test_ticking_a_line_chooses_only_these_lines(client, owner):
    from billing.services import send_document

    invoice = send_document(InvoiceFactory(client=ClientFactory(company=owner.company)))
    page = client.get(reverse("invoice_credit", args=[invoice.pk])).content.decode()
    assert 'name="what" value="lines" id="what-lines"' in page and "data-choose-lines" in page


def test_deleting_a_draft_is_a_button_that_asks_first(client, owner):
    draft = InvoiceFactory(client=ClientFactory(company=owner.company))
    page = client.get(reverse("invoice_detail", args=[draft.pk])).content.decode()
    form = page.split(f'action="{reverse("invoice_delete", args=[draft.pk])}"')[1].split(
        "</form>")[0]
    assert 'data-confirm="Delete this draft? It has no number, so none is lost."' in form
    assert '<button class="button small danger" type="submit">Delete this draft</button>' in form


def test_the_user_reorders_the_lines_of_a_draft(client, owner):
    draft = InvoiceFactory(client=ClientFactory(company=owner.company),
                           lines=[line("First", "1"), line("Second", "2"), line("Third", "3")])
    page = client.get(reverse("invoice_edit", args=[draft.pk])).content.decode()
    assert '<input type="hidden" name="lines-2-ORDER" value="3"' in page  # each row's place
    assert 'data-move-line="up"' in page and 'data-move-line="down"' in page
    data = edit_data(draft, {})
    data.update({"lines-0-ORDER": "2", "lines-1-ORDER": "3", "lines-2-ORDER": "1"})
    assert client.post(reverse("invoice_edit", args=[draft.pk]), data).status_code == 302
    assert [item.description for item in draft.lines.all()] == ["Third", "First", "Second"]


@pytest.fixture
def sent_invoice(owner):
    from billing.services import send_document

    return send_document(InvoiceFactory(
        client=ClientFactory(company=owner.company),
        lines=[{"description": "Chairs", "quantity": Decimal("4"), "unit_price": Decimal("50"),
                "tax_rate": Decimal("20")},
               {"description": "Delivery", "quantity": Decimal("1"),
                "unit_price": Decimal("30"), "tax_rate": Decimal("10")}]))


def preview_of(html):
    part = html.split('id="credit-preview"')[1].split("</aside>")[0]
    rows = [re.sub(r"<[^>]+>", "|", row).strip("|").replace("||", "|")
            for row in re.findall(r"<tr>(.*?)</tr>", part.split("<tbody>")[1].split(
                "</tbody>")[0])] if "<tbody>" in part else []
    total = re.search(r"data-credit-total>([^<]*)<", part)
    return rows, total.group(1) if total else None


def test_the_credit_page_shows_what_the_credit_note_will_contain(client, sent_invoice):
    url = reverse("invoice_credit", args=[sent_invoice.pk])
    # Before any answer: the whole open amount, as it would be drafted.
    assert preview_of(client.get(url).content.decode()) == (
        ["Chairs|4|50.00\xa0EUR|20 %|200.00\xa0EUR", "Delivery|1|30.00\xa0EUR|10 %|30.00\xa0EUR"],
        "273.00\xa0EUR")
    chairs = sent_invoice.lines.get(description="Chairs")
    # As the answer changes (htmx asks the same page), nothing is drafted.
    answer = {"what": "lines", "line": [chairs.pk], f"quantity_{chairs.pk}": "1.5"}
    html = client.post(url, answer, HTTP_HX_REQUEST="true").content.decode()
    assert preview_of(html) == (["Chairs|1.5|50.00\xa0EUR|20 %|75.00\xa0EUR"], "90.00\xa0EUR")
    html = client.post(url, {"what": "amount", "amount": "25", "rate": "10.00"},
                       HTTP_HX_REQUEST="true").content.decode()
    assert preview_of(html) == (
        [f"Credit on invoice {sent_invoice.number}|1|25.00\xa0EUR|10 %|25.00\xa0EUR"],
        "27.50\xa0EUR")
    from billing.models import CreditNote
    assert not CreditNote.objects.exists()


def test_part_of_a_lines_quantity_is_credited(client, sent_invoice):
    from billing.models import CreditNote

    chairs = sent_invoice.lines.get(description="Chairs")
    response = client.post(reverse("invoice_credit", args=[sent_invoice.pk]),
                           {"what": "lines", "line": [chairs.pk], f"quantity_{chairs.pk}": "1",
                            "reason": "One chair broken"})
    credit_note = CreditNote.objects.get()
    assert response.url == reverse("credit_note_detail", args=[credit_note.pk])
    assert [(item.description, item.quantity, item.unit_price) for item in
            credit_note.lines.all()] == [("Chairs", Decimal("1"), Decimal("50.00"))]
    assert credit_note.total == Decimal("60.00") and credit_note.reason == "One chair broken"


def test_a_chosen_amount_is_credited_at_a_rate_of_the_invoice(client, sent_invoice):
    from billing.models import CreditNote

    url = reverse("invoice_credit", args=[sent_invoice.pk])
    refused = client.post(url, {"what": "amount", "amount": "20", "rate": "7.00"})
    assert refused.status_code == 200 and not CreditNote.objects.exists()  # not its rate
    client.post(url, {"what": "amount", "amount": "20", "rate": "20.00"})
    assert CreditNote.objects.get().total == Decimal("24.00")


def test_more_than_a_lines_quantity_is_refused(client, sent_invoice):
    from billing.models import CreditNote

    chairs = sent_invoice.lines.get(description="Chairs")
    page = client.post(reverse("invoice_credit", args=[sent_invoice.pk]),
                       {"what": "lines", "line": [chairs.pk], f"quantity_{chairs.pk}": "5"})
    assert page.status_code == 200 and not CreditNote.objects.exists()
    assert "less than or equal to 4" in page.content.decode()
