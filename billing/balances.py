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

from .models import DRAFT, CreditNote, DocumentState, Payment

# Sums of many amounts: wider than one document's column.
SUM_FIELD = DecimalField(max_digits=20, decimal_places=2)
ZERO = Value(Decimal("0.00"), output_field=SUM_FIELD)


def _sum_of(queryset, field):
    """The sum of ``field`` over ``queryset`` (rows of the invoice ``OuterRef("pk")``)."""
    summed = queryset.order_by().values("invoice").annotate(s=Sum(field)).values("s")
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
        default=Greatest(F("total") - F("credited_total") - F("paid_amount"), ZERO),
        output_field=SUM_FIELD,
    )


def totals_by_currency(invoices, today):
    """
    Per currency (a dict by code): the open amount of the sent invoices, of those overdue,
    and the payments received (reversed ones left out), as the dashboard shows them.
    """
    rows = with_balances(invoices.filter(state=DocumentState.SENT)).values("currency") \
        .order_by("currency").annotate(
            open_total=Sum("open_amount_sql", output_field=SUM_FIELD),
            overdue_total=Sum("open_amount_sql", filter=Q(due_date__lt=today),
                              output_field=SUM_FIELD))
    found = {row["currency"]: {"open_total": row["open_total"] or ZERO.value,
                               "overdue_total": row["overdue_total"] or ZERO.value,
                               "paid_total": ZERO.value} for row in rows}
    received = (Payment.objects.filter(invoice__in=invoices.values("pk"), reversal__isnull=True)
                .values("invoice__currency").order_by("invoice__currency")
                .annotate(s=Sum("amount", output_field=SUM_FIELD)))
    for row in received:
        found.setdefault(row["invoice__currency"], {
            "open_total": ZERO.value, "overdue_total": ZERO.value})["paid_total"] = row["s"]
    return found
