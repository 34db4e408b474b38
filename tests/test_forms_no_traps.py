"""Forms that cannot trap: what the user sees is what happens, whatever order they act in."""

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
