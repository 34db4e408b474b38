"""
Money, as a specification: EN 16931's totals, exact on both databases, the same figures
while typing, on the draft, once issued, in the ledger, on the page, in the PDF and in the
e-mail.

The expected figures are computed here independently, with fractions: the line net is
quantity × price rounded to the cent, each rate's tax is rounded once on the sum of its
nets, halves away from zero.
"""

import io
import re
from decimal import Decimal
from fractions import Fraction
from math import floor

import pypdf
import pytest
from django.core import mail
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import money
from billing.models import Invoice, InvoiceLine
from billing.pdf import document_pdf
from billing.services import send_document
from counters.models import IssuedNumber

from .factories import ClientFactory, InvoiceFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def cents(amount: Fraction) -> Decimal:
    """``amount`` rounded to the cent, halves away from zero (amounts here are positive)."""
    return Decimal(floor(amount * 100 + Fraction(1, 2))) / 100


def expected_totals(lines):
    """(subtotal, {rate: (taxable, tax)}, tax, total) by EN 16931, in fractions."""
    taxable = {}
    for line in lines:
        net = cents(Fraction(line["quantity"]) * Fraction(line["unit_price"]))
        taxable[line["tax_rate"]] = taxable.get(line["tax_rate"], Decimal(0)) + net
    groups = {rate: (amount, cents(Fraction(amount) * Fraction(rate) / 100))
              for rate, amount in taxable.items()}
    subtotal = sum(taxable.values(), Decimal(0))
    tax = sum((tax for _taxable, tax in groups.values()), Decimal(0))
    return subtotal, groups, tax, subtotal + tax


def line(quantity, unit_price, tax_rate):
    # A line without tax says why: here, zero rated (EN 16931's category Z).
    return {"description": "Work", "quantity": Decimal(quantity),
            "unit_price": Decimal(unit_price), "tax_rate": Decimal(tax_rate),
            "tax_category": "Z" if Decimal(tax_rate) == 0 else "S"}


def test_a_half_cent_line_at_a_decimal_rate():
    """The case that was 1.21 as a draft and 1.20 once issued."""
    invoice = InvoiceFactory(lines=[line("0.5", "2.01", "20")])
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
        Decimal("1.01"), Decimal("0.20"), Decimal("1.21"))
    issued = Invoice.objects.get(pk=send_document(invoice).pk)
    assert (issued.subtotal, issued.tax_total, issued.total) == (
        Decimal("1.01"), Decimal("0.20"), Decimal("1.21"))
    assert [line.net_amount for line in issued.lines.all()] == [Decimal("1.01")]


@pytest.mark.parametrize("rate", ["5.5", "2.1", "7.7"])
def test_rates_with_decimals_issue(rate):
    issued = send_document(InvoiceFactory(lines=[line("3", "19.99", rate)]))
    expected = expected_totals([line("3", "19.99", rate)])
    assert (issued.subtotal, issued.tax_total, issued.total) == (
        expected[0], expected[2], expected[3])
    assert Invoice.objects.get(pk=issued.pk).total == expected[3]


def test_tax_is_rounded_once_per_rate_not_per_line():
    # Per line, each 0.05 at 10 % would be taxed 0.01 (three cents); on the sum, 0.015 is 0.02.
    totals = money.totals([InvoiceLine(quantity=Decimal(1), unit_price=Decimal("0.05"),
                                       tax_rate=Decimal(10))] * 3)
    assert (totals.subtotal, totals.tax, totals.total) == (
        Decimal("0.15"), Decimal("0.02"), Decimal("0.17"))
    assert [(g.category, g.rate, g.taxable, g.tax) for g in totals.groups] == [
        ("S", Decimal(10), Decimal("0.15"), Decimal("0.02"))]


def test_lines_of_another_category_at_the_same_rate_are_a_group_of_their_own():
    class ExemptLine:
        quantity, unit_price, tax_rate, tax_category = Decimal(1), Decimal("10.00"), 0, "E"

    class ZeroRatedLine:
        quantity, unit_price, tax_rate, tax_category = Decimal(1), Decimal("5.00"), 0, "Z"

    totals = money.totals([ExemptLine(), ZeroRatedLine(), ExemptLine()])
    assert [(g.category, g.taxable) for g in totals.groups] == [
        ("E", Decimal("20.00")), ("Z", Decimal("5.00"))]


def test_money_is_never_a_float():
    with pytest.raises(TypeError, match="never a float"):
        money.to_cents(0.1)
    with pytest.raises(TypeError, match="never a float"):
        money.line_net(Decimal(1), 2.01)


def test_the_largest_amounts_keep_every_cent():
    # 14 digits: the columns' precision, and more than a float's 15 significant digits
    # would keep after a sum.
    invoice = InvoiceFactory(lines=[line("1", "999999999.99", "0"),
                                    line("1", "0.01", "0")])
    issued = Invoice.objects.get(pk=send_document(invoice).pk)
    assert issued.total == Decimal("1000000000.00")
    assert IssuedNumber.objects.get(number=issued.number).total == Decimal("1000000000.00")


def _figures(html, name):
    """The amount in the ``data-total="name"`` cell of the live totals, as a Decimal."""
    text = re.search(rf'data-total="{name}">([^<]*)<', html).group(1)
    return Decimal(text.replace("\xa0EUR", "").replace(",", ""))


def _written(amount):
    return f"{amount:,.2f}\xa0EUR"


quantities = st.integers(min_value=1, max_value=10_000_000).map(lambda n: Decimal(n) / 1000)
prices = st.integers(min_value=0, max_value=100_000_000).map(lambda n: Decimal(n) / 100)
rates = st.one_of(st.sampled_from(["0", "2.1", "5.5", "7.7", "20"]).map(Decimal),
                  st.integers(min_value=0, max_value=10_000).map(lambda n: Decimal(n) / 100))
random_lines = st.lists(st.builds(line, quantities, prices, rates), min_size=1, max_size=5)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(lines=random_lines)
def test_draft_typing_issued_pdf_and_email_show_the_same_figures(client, lines):
    subtotal, groups, tax, total = expected_totals(lines)
    customer = ClientFactory()
    member = MembershipFactory(company=customer.company).user
    client.force_login(member)

    # While typing: the live totals of the line editor.
    form = {"lines-TOTAL_FORMS": str(len(lines)), "lines-INITIAL_FORMS": "0",
            "currency": "EUR"}
    for index, spec in enumerate(lines):
        form.update({f"lines-{index}-{name}": str(value) for name, value in spec.items()})
    live = client.post(reverse("invoice_totals"), form).content.decode()
    assert [_figures(live, name) for name in ("subtotal", "tax", "total")] == [
        subtotal, tax, total]

    # Saved on the draft, then issued, as both databases give them back.
    draft = InvoiceFactory(client=customer, lines=lines)
    stored = Invoice.objects.get(pk=draft.pk)
    assert (stored.subtotal, stored.tax_total, stored.total) == (subtotal, tax, total)
    send_document(draft)
    issued = Invoice.objects.get(pk=draft.pk)
    assert (issued.subtotal, issued.tax_total, issued.total) == (subtotal, tax, total)
    assert IssuedNumber.objects.get(company=customer.company, number=issued.number).total == total
    assert sorted((g.rate, g.taxable, g.tax) for g in issued.tax_breakdown()) == [
        (rate, *groups[rate]) for rate in sorted(groups)]
    assert sum((line.net_amount for line in issued.lines.all()), Decimal(0)) == subtotal

    # On the page, in the PDF and in the e-mail.
    page = client.get(reverse("invoice_detail", args=[issued.pk])).content.decode()
    pdf = "\n".join(page_.extract_text() for page_ in
                    pypdf.PdfReader(io.BytesIO(document_pdf(issued))).pages)
    cells = re.findall(r'<td class="num"[^>]*>([^<]*)</td>', page)
    pdf_amounts = re.findall(r"(?<![\d.,])[\d,]+\.\d\d EUR", pdf.replace("\xa0", " "))
    for amount in (subtotal, total, *(tax for _taxable, tax in groups.values())):
        assert _written(amount) in cells  # a whole cell: "0.20 EUR" is not "10.20 EUR"
        assert _written(amount).replace("\xa0", " ") in pdf_amounts
    mail.outbox.clear()
    from .jobs import deliver

    deliver(issued)
    assert re.search(rf"(?<![\d.,]){re.escape(_written(total))}", mail.outbox[0].body)
