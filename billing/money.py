"""
Money: the one place where Folio rounds amounts and adds up a document.

Amounts are ``Decimal`` from the form to the database to the PDF; a float is refused, never
converted. The totals follow EN 16931, the norm electronic invoices are checked against:

- a line's net amount (BT-131) is quantity × unit price, rounded to the cent;
- lines are grouped by tax category and rate; a group's taxable amount (BT-116) is the sum
  of its line nets and its tax (BT-117) is taxable × rate / 100, rounded once, to the cent;
- the subtotal (BT-106) is the sum of the line nets, the tax (BT-110) the sum of the groups'
  taxes, and the total (BT-112) their sum.

Rounding is to the nearest cent, halves away from zero.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# The tax category of a line that does not say (EN 16931's "standard rate").
STANDARD_RATE = "S"


def to_cents(amount: Decimal | int | str) -> Decimal:
    """``amount`` rounded to the cent, halves away from zero."""
    if isinstance(amount, float):
        raise TypeError(f"Money is never a float: got {amount!r}; use Decimal.")
    return Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)


def line_net(quantity: Decimal, unit_price: Decimal) -> Decimal:
    """A line's net amount: quantity × unit price, rounded to the cent."""
    return to_cents(_exact(quantity) * _exact(unit_price))


@dataclass(frozen=True)
class TaxGroup:
    """The lines of one tax category and rate: what they add up to and the tax on it."""

    category: str
    rate: Decimal
    taxable: Decimal
    tax: Decimal


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    groups: tuple[TaxGroup, ...]


def totals(lines) -> Totals:
    """
    The totals of ``lines``: objects with ``quantity``, ``unit_price``, ``tax_rate`` and,
    optionally, ``tax_category``. Groups come in (category, rate) order.
    """
    taxable = {}
    for line in lines:
        key = (getattr(line, "tax_category", "") or STANDARD_RATE, _exact(line.tax_rate))
        taxable[key] = taxable.get(key, ZERO) + line_net(line.quantity, line.unit_price)
    groups = tuple(
        TaxGroup(category, rate, amount, to_cents(amount * rate / 100))
        for (category, rate), amount in sorted(taxable.items())
    )
    subtotal = sum((group.taxable for group in groups), ZERO)
    tax = sum((group.tax for group in groups), ZERO)
    return Totals(subtotal=subtotal, tax=tax, total=subtotal + tax, groups=groups)


def _exact(value) -> Decimal:
    if isinstance(value, float):
        raise TypeError(f"Money is never a float: got {value!r}; use Decimal.")
    return Decimal(value)


def open_amount(*, total, subtotal, credited_net, credited_total, paid) -> Decimal:
    """
    What is left to pay of an invoice: its total less its issued credit notes and its
    payments (reversed ones left out), never below zero. Nothing once credit notes cover its
    whole net: credits are measured in nets, which add up exactly, where totals may differ by
    the rounding of each document's tax. ``billing.balances`` computes the same in SQL.
    """
    if to_cents(credited_net) >= to_cents(subtotal):
        return ZERO
    return max(to_cents(total) - to_cents(credited_total) - to_cents(paid), ZERO)
