"""
Invoices' open amounts in SQL, for the pages that show many at once (dashboard, lists, a
client's balance): the same rule as ``billing.money.open_amount``, which computes one
invoice's in Python. The books test (tests/test_payments.py) checks that they agree.

open = total − issued credit notes − payments (reversed ones left out), never below zero;
nothing once the credit notes cover the invoice's whole net.
"""

from decimal import Decimal

from django.db.models import (
    Case,
    Count,
    DecimalField,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, Round
from django.db.models.lookups import GreaterThanOrEqual

from . import money
from .models import DRAFT, CreditNote, DocumentState, Payment

# Sums of many amounts: wider than one document's column.
SUM_FIELD = DecimalField(max_digits=20, decimal_places=2)
ZERO = Value(Decimal("0.00"), output_field=SUM_FIELD)


def cents(expression):
    """``expression``, an amount, rounded to the cent in SQL. SQLite adds and subtracts
    decimals as REALs (0.70 + 0.10 is 0.7999999999999999 there): rounded, every figure is
    the exact amount again, on PostgreSQL too."""
    return Round(expression, 2, output_field=SUM_FIELD)


def _sum_of(queryset, field):
    """The sum of ``field`` over ``queryset`` (rows of the invoice ``OuterRef("pk")``)."""
    summed = queryset.order_by().values("invoice").annotate(s=cents(Sum(field))).values("s")
    return Coalesce(Subquery(summed, output_field=SUM_FIELD), ZERO, output_field=SUM_FIELD)


def with_balances(invoices):
    """
    ``invoices`` annotated with ``credited_net``, ``credited_total``, ``paid_amount`` and
    ``open_amount_sql`` (what is left to pay; 0 for a draft, a paid or a cancelled invoice).
    """
    credits = CreditNote.objects.filter(invoice=OuterRef("pk")).exclude(state=DRAFT)
    payments = Payment.objects.filter(invoice=OuterRef("pk"), reversal__isnull=True)
    return invoices.annotate(
        credited_net=_sum_of(credits, "subtotal"),
        credited_total=_sum_of(credits, "total"),
        paid_amount=_sum_of(payments, "amount"),
    ).annotate(open_amount_sql=open_amount_expression())


def open_amount_expression():
    """SQL for an annotated invoice's open amount (see ``with_balances``)."""
    # Credits are compared in whole cents: SQLite adds decimals as REALs.
    covered = GreaterThanOrEqual(Round(F("credited_net") * 100), Round(F("subtotal") * 100))
    return Case(
        When(~Q(state=DocumentState.SENT), then=ZERO),
        When(covered, then=ZERO),
        default=Greatest(cents(F("total") - F("credited_total") - F("paid_amount")), ZERO),
        output_field=SUM_FIELD,
    )


def by_currency(invoices, today):
    """
    The dashboard's figures per currency: drafts (count and total), open (sent: count and
    what is left to pay), overdue (the same, past their due date), paid (count of paid
    invoices) and the payments received on all of them.

    Three queries whose cost follows the credit notes and payments, not the invoices: the
    invoices' own counts and totals, then what the sent invoices that have a credit note or
    a payment still owe (``with_balances`` on those alone: every other sent invoice owes
    its total), then the payments.
    """
    sent = Q(state=DocumentState.SENT)
    overdue = Q(state=DocumentState.SENT, due_date__lt=today)
    rows = {row["currency"]: row for row in invoices.values("currency").order_by(
        "currency").annotate(
        drafts=Count("id", filter=Q(state=DRAFT)),
        drafts_total=cents(Sum("total", filter=Q(state=DRAFT))),
        open=Count("id", filter=sent),
        open_total=cents(Sum("total", filter=sent)),
        overdue=Count("id", filter=overdue),
        overdue_total=cents(Sum("total", filter=overdue)),
        paid=Count("id", filter=Q(state=DocumentState.PAID)),
    )}
    settled = with_balances(invoices.filter(sent).filter(
        Q(pk__in=CreditNote.objects.exclude(state=DRAFT).values("invoice"))
        | Q(pk__in=Payment.objects.filter(reversal__isnull=True).values("invoice"))))
    reduced = F("total") - F("open_amount_sql")  # what credits and payments took off
    for row in settled.values("currency").order_by("currency").annotate(
            open_less=cents(Sum(reduced, output_field=SUM_FIELD)),
            overdue_less=cents(Sum(reduced, filter=Q(due_date__lt=today),
                                   output_field=SUM_FIELD))):
        totals = rows[row["currency"]]
        totals["open_total"] -= row["open_less"] or 0
        totals["overdue_total"] = (totals["overdue_total"] or 0) - (row["overdue_less"] or 0)
    received = Payment.objects.filter(invoice__in=invoices.exclude(state=DRAFT),
                                      reversal__isnull=True)
    for row in received.values("invoice__currency").order_by().annotate(
            paid_total=cents(Sum("amount", output_field=SUM_FIELD))):
        rows[row["invoice__currency"]]["paid_total"] = row["paid_total"]
    return [{**row, **{name: money.to_cents(row.get(name) or 0) for name in AMOUNTS}}
            for row in rows.values()]


AMOUNTS = ("drafts_total", "open_total", "overdue_total", "paid_total")


def totals_by_currency(invoices, today):
    """{currency: {open_total, overdue_total, paid_total}}: ``by_currency``'s amounts."""
    return {row["currency"]: {name: row[name] for name in AMOUNTS[1:]}
            for row in by_currency(invoices, today)}
