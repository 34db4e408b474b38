"""
Payments: recorded against a sent invoice (date, amount, method, reference), partial or full;
the invoice is paid when nothing is left to pay, through its state machine and history; a
payment is never changed or deleted, only reversed (who, when, why), which reopens a paid
invoice. The books agree however they are added up.
"""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.balances import totals_by_currency, with_balances
from billing.models import Invoice, Payment, PaymentLocked, PaymentReversal
from counters.audit import AuditScope, run_audit
from counters.history import history_of

from .factories import (
    ClientFactory,
    InvoiceFactory,
    MembershipFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

D = Decimal
# 2 × 100.00 at 20 %: net 200.00, total 240.00.
CONSULTING = [{"description": "Consulting", "quantity": D("2"), "unit_price": D("100.00"),
               "tax_rate": D("20")}]


@pytest.fixture
def user():
    return UserFactory()


@pytest.fixture
def invoice(user):
    return services.send_document(InvoiceFactory(lines=CONSULTING), user=user)


def pay(invoice, amount, **extra):
    return services.record_payment(invoice, amount=D(amount), method=extra.pop(
        "method", "bank_transfer"), **extra)


def fresh(invoice):
    return Invoice.objects.get(pk=invoice.pk)


def steps(invoice):
    return [(e.from_state, e.to_state, e.reason) for e in history_of("invoice", invoice.pk)]


def audit_findings(company_id):
    return [f.message for f in run_audit(AuditScope(company_id=company_id)).findings]


# --- Recording payments --------------------------------------------------------------------


def test_a_partial_payment_leaves_the_invoice_sent_with_less_to_pay(invoice, user):
    payment = pay(invoice, "100.00", date=date(2026, 1, 5), reference="VIR 123", user=user)
    assert (payment.amount, payment.method, payment.reference, payment.date,
            payment.recorded_by) == (D("100.00"), "bank_transfer", "VIR 123",
                                     date(2026, 1, 5), user)
    invoice = fresh(invoice)
    assert invoice.state == "sent"
    assert invoice.paid() == D("100.00")
    assert invoice.open_amount() == D("140.00")
    assert steps(invoice) == [("draft", "sent", "")]


def test_payments_that_reach_the_total_make_the_invoice_paid_with_its_history(invoice, user):
    pay(invoice, "100.00", user=user)
    pay(invoice, "140.00", method="card", user=user)
    invoice = fresh(invoice)
    assert invoice.state == "paid" and invoice.open_amount() == 0
    assert steps(invoice) == [("draft", "sent", ""), ("sent", "paid", "")]
    assert audit_findings(invoice.company_id) == []


def test_an_overpayment_is_refused_with_what_is_left_to_pay(invoice):
    pay(invoice, "200.00")
    with pytest.raises(services.Overpayment) as refused:
        pay(invoice, "40.01")
    assert "is more than what is left to pay of INV-2026-0001 (40.00\xa0EUR)" in \
        refused.value.messages[0]
    assert fresh(invoice).state == "sent"
    assert Payment.objects.count() == 1


@pytest.mark.parametrize("amount, message", [
    ("0", "above zero"), ("-5", "above zero"), ("1.005", "in cents")])
def test_an_amount_must_be_positive_cents(invoice, amount, message):
    with pytest.raises(ValidationError, match=message):
        pay(invoice, amount)
    assert not Payment.objects.exists()


def test_a_payment_is_not_dated_in_the_future_and_names_a_known_method(invoice):
    with pytest.raises(ValidationError, match="future"):
        pay(invoice, "10", date=timezone.localdate() + timedelta(days=1))
    with pytest.raises(ValidationError, match="how the invoice was paid"):
        pay(invoice, "10", method="bitcoin")
    assert not Payment.objects.exists()


def test_only_a_sent_invoice_receives_payments(invoice):
    with pytest.raises(ValidationError, match="Only a sent invoice can receive a payment"):
        pay(InvoiceFactory(), "10")
    pay(invoice, "240.00")
    with pytest.raises(ValidationError, match="is Paid"):
        pay(invoice, "1")


def test_mark_paid_records_a_full_payment_of_the_open_amount_today(invoice, user):
    pay(invoice, "40.00")
    paid = services.mark_paid(invoice, user=user, method="cash", reference="till 4")
    assert paid.state == "paid"
    full = Payment.objects.order_by("id").last()
    assert (full.amount, full.method, full.reference, full.date) == (
        D("200.00"), "cash", "till 4", timezone.localdate())
    with pytest.raises(ValidationError, match="Only a sent invoice can be marked paid"):
        services.mark_paid(paid)


# --- Reversals -----------------------------------------------------------------------------


def test_a_reversal_reopens_a_paid_invoice_and_says_why(invoice, user):
    first = pay(invoice, "100.00")
    pay(invoice, "140.00")
    reversal = services.reverse_payment(first, reason="Bounced cheque", user=user)
    assert (reversal.payment, reversal.reason, reversal.reversed_by) == (first, "Bounced cheque",
                                                                         user)
    assert reversal.reversed_at is not None
    invoice = fresh(invoice)
    assert invoice.state == "sent" and invoice.open_amount() == D("100.00")
    assert steps(invoice)[-2:] == [("sent", "paid", ""), ("paid", "sent", "Bounced cheque")]
    assert audit_findings(invoice.company_id) == []
    # Paid again, in full.
    pay(invoice, "100.00")
    assert fresh(invoice).state == "paid"


def test_reversing_a_partial_payment_leaves_the_invoice_sent(invoice):
    payment = pay(invoice, "100.00")
    services.reverse_payment(payment, reason="Wrong invoice")
    invoice = fresh(invoice)
    assert invoice.state == "sent" and invoice.open_amount() == D("240.00")
    assert steps(invoice) == [("draft", "sent", "")]


def test_a_payment_is_reversed_once_and_a_reversal_never(invoice):
    payment = pay(invoice, "240.00")
    reversal = services.reverse_payment(payment, reason="Mistake")
    with pytest.raises(services.AlreadyReversed):
        services.reverse_payment(payment, reason="Again")
    with pytest.raises(ValidationError, match="A reversal cannot be reversed"):
        services.reverse_payment(reversal, reason="Undo the undo")
    with pytest.raises(ValidationError, match="Say why"):
        services.reverse_payment(pay(invoice, "1.00"), reason="  ")
    assert PaymentReversal.objects.count() == 1
    # The database keeps one reversal per payment, whoever writes.
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentReversal.objects.bulk_create([PaymentReversal(
            company_id=payment.company_id, payment=payment, reason="raw")])


def test_the_model_refuses_to_change_or_delete_payments_and_reversals(invoice):
    payment = pay(invoice, "240.00")
    reversal = services.reverse_payment(payment, reason="Mistake")
    payment.amount = D("1.00")
    for row in (payment, reversal):
        with pytest.raises(PaymentLocked):
            row.save()
        with pytest.raises(PaymentLocked):
            row.delete()


@pytest.mark.parametrize("statement", [
    "UPDATE billing_payment SET amount = 1 WHERE id = %s",
    "UPDATE billing_payment SET method = 'cash' WHERE id = %s",
    "DELETE FROM billing_payment WHERE id = %s",
    "UPDATE billing_paymentreversal SET reason = 'x' WHERE payment_id = %s",
    "DELETE FROM billing_paymentreversal WHERE payment_id = %s",
])
def test_the_database_refuses_raw_sql_that_rewrites_payments(invoice, statement):
    payment = pay(invoice, "100.00")
    services.reverse_payment(payment, reason="Mistake")
    pay(invoice, "240.00")
    before = (list(Payment.objects.values()), list(PaymentReversal.objects.values()))
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [payment.pk])
    assert (list(Payment.objects.values()), list(PaymentReversal.objects.values())) == before


def test_the_database_refuses_what_the_model_refuses(invoice):
    """Amount above zero, a known method, a sent invoice of the same company."""
    good = dict(company_id=invoice.company_id, invoice_id=invoice.pk, date=date(2026, 1, 1),
                amount=D("1.00"), method="card", reference="")
    bad = [{"amount": D("0")}, {"amount": D("-1")}, {"method": "barter"},
           {"invoice_id": InvoiceFactory(client=invoice.client).pk},
           {"company_id": ClientFactory().company_id}]
    for change in bad:
        with pytest.raises(IntegrityError), transaction.atomic():
            Payment.objects.bulk_create([Payment(**{**good, **change})])
    assert not Payment.objects.exists()


def reopen_with_raw_sql(invoice):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE billing_invoice SET state = 'sent' WHERE id = %s", [invoice.pk])
    assert fresh(invoice).state == "paid"


# Transactional: each service call commits, as in production (inside one test transaction,
# PostgreSQL would rightly see every reversal as written in the current transaction).
@pytest.mark.django_db(transaction=True)
def test_the_database_reopens_a_paid_invoice_only_with_a_reversal_in_the_same_transaction(
        invoice):
    payment = pay(invoice, "240.00")
    reopen_with_raw_sql(invoice)
    # A reversal written earlier, other rows since: the door stays shut.
    with transaction.atomic():
        PaymentReversal.objects.create(company_id=invoice.company_id, payment=payment,
                                       reason="raw")
    InvoiceFactory(client=invoice.client)
    reopen_with_raw_sql(invoice)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_reversal_committed_before_never_reopens(invoice):
    """PostgreSQL knows the transaction that wrote each reversal (SQLite: the last row)."""
    payment = pay(invoice, "240.00")
    with transaction.atomic():
        PaymentReversal.objects.create(company_id=invoice.company_id, payment=payment,
                                       reason="raw")
    reopen_with_raw_sql(invoice)


def test_the_database_makes_an_invoice_paid_only_when_payments_cover_it(invoice):
    pay(invoice, "239.99")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE billing_invoice SET state = 'paid' WHERE id = %s", [invoice.pk])
    assert fresh(invoice).state == "sent"


# --- Credit notes and payments -------------------------------------------------------------


def credit(invoice, net, rate="20"):
    return services.send_document(services.draft_credit_note(
        invoice, reason="r", amount_lines=[("Discount", D("1"), D(net), D(rate))]))


def test_credit_notes_and_payments_both_reduce_what_is_left_to_pay(invoice):
    credit(invoice, "50.00")  # 60.00 with tax
    assert fresh(invoice).open_amount() == D("180.00")
    with pytest.raises(services.Overpayment):
        pay(invoice, "180.01")
    pay(invoice, "100.00")
    assert fresh(invoice).open_amount() == D("80.00")
    pay(invoice, "80.00")
    invoice = fresh(invoice)
    assert invoice.state == "paid" and invoice.open_amount() == 0


def test_balances_in_sql_are_exact_to_the_cent(invoice):
    """SQLite adds decimals as REALs: 0.70 + 0.10 there is 0.7999999999999999, and a figure
    computed from such a sum drifts off the cent unless it is rounded where it is added."""
    pay(invoice, "0.70")
    pay(invoice, "0.10")
    row = with_balances(Invoice.objects.filter(pk=invoice.pk)).get()
    assert (row.paid_amount, row.open_amount_sql) == (D("0.80"), D("239.20"))
    figures = totals_by_currency(Invoice.objects.filter(pk=invoice.pk), timezone.localdate())
    assert figures == {"EUR": {"open_total": D("239.20"), "overdue_total": D("0.00"),
                               "paid_total": D("0.80")}}
    assert all(amount.as_tuple().exponent == -2 for amount in figures["EUR"].values())
    assert services.client_balances(invoice.client) == {"EUR": D("239.20")}


def test_a_credit_after_a_partial_payment_that_leaves_nothing_to_pay_settles_it(invoice):
    pay(invoice, "120.00")
    with pytest.raises(services.CreditExceedsInvoice, match="received payments"):
        credit(invoice, "100.01")
    credit(invoice, "100.00")  # 120.00 with tax: nothing is left to pay
    invoice = fresh(invoice)
    assert invoice.state == "paid"
    assert steps(invoice)[-1] == ("sent", "paid", "")


def test_a_fully_credited_invoice_has_nothing_to_pay(invoice):
    credit(invoice, "200.00")
    with pytest.raises(ValidationError, match="Nothing is left to pay"):
        services.mark_paid(invoice)
    with pytest.raises(services.Overpayment):
        pay(invoice, "0.01")


def test_an_invoice_with_payments_is_not_cancelled_until_they_are_reversed(invoice):
    payment = pay(invoice, "10.00")
    with pytest.raises(ValidationError, match="has received payments"):
        services.cancel_invoice(invoice, reason="r")
    with pytest.raises(ValidationError, match="has received payments"):
        services.draft_credit_note(invoice, reason="whole open amount")
    services.reverse_payment(payment, reason="Refunded")
    services.cancel_invoice(invoice, reason="r")
    assert fresh(invoice).state == "cancelled"


# --- The books, added up several ways ------------------------------------------------------


@pytest.fixture
def books(issue_on):
    """Invoices in two currencies in every state, with credits, payments and a reversal."""
    issue_on(date(2026, 3, 1))
    company = ClientFactory().company
    client_a = ClientFactory(company=company)
    client_b = ClientFactory(company=company)

    def sent(client, unit, currency="EUR", due=None):
        lines = [{"description": "Work", "quantity": D("1"), "unit_price": D(unit),
                  "tax_rate": D("20")}]
        return services.send_document(InvoiceFactory(client=client, currency=currency,
                                                     due_date=due, lines=lines))

    overdue = sent(client_a, "100.00", due=date(2026, 2, 1))      # 120, part paid 20
    pay(overdue, "20.00", date=date(2026, 2, 2))
    credited_then_paid = sent(client_a, "500.00")                # 600 - 120 credit, paid
    credit(credited_then_paid, "100.00")
    pay(credited_then_paid, "480.00")
    paid_reopened = sent(client_b, "50.00")                      # 60, paid, reversed, 10 paid
    payment = pay(paid_reopened, "60.00")
    services.reverse_payment(payment, reason="Bounced")
    pay(paid_reopened, "10.00")
    cancelled = sent(client_b, "30.00")
    services.cancel_invoice(cancelled, reason="r")
    usd = sent(client_b, "1000.00", currency="USD", due=date(2026, 2, 15))  # 1200, 200 paid
    pay(usd, "200.00")
    usd_paid = sent(client_a, "10.00", currency="USD")
    services.mark_paid(usd_paid)
    InvoiceFactory(client=client_a)  # a draft: no money yet
    return company


def by_hand(company, today):
    """The books from each invoice's own figures, in Python."""
    found = {}
    for invoice in Invoice.objects.filter(company=company).exclude(state="draft"):
        row = found.setdefault(invoice.currency, {"open_total": D("0"), "overdue_total": D("0"),
                                                  "paid_total": D("0")})
        net, credited_total = invoice.credited()
        paid = invoice.paid()
        open_amount = invoice.open_amount() if invoice.state == "sent" else D("0")
        row["open_total"] += open_amount
        if invoice.due_date < today:
            row["overdue_total"] += open_amount
        row["paid_total"] += paid
        # Every invoice that is not cancelled: total = credits + payments + what is open.
        if invoice.state != "cancelled":
            assert invoice.total == credited_total + paid + open_amount, invoice
    return found


def test_the_books_agree_however_they_are_added_up(books, client):
    today = date(2026, 3, 1)
    expected = {
        "EUR": {"open_total": D("100.00") + D("50.00"), "overdue_total": D("100.00"),
                "paid_total": D("20.00") + D("480.00") + D("10.00")},
        "USD": {"open_total": D("1000.00"), "overdue_total": D("1000.00"),
                "paid_total": D("200.00") + D("12.00")},
    }
    invoices = Invoice.objects.filter(company=books)
    assert by_hand(books, today) == expected
    assert totals_by_currency(invoices, today) == expected
    # Per invoice, the SQL open amount is the Python one.
    for invoice in with_balances(invoices):
        expected_open = invoice.open_amount() if invoice.state == "sent" else 0
        assert invoice.open_amount_sql == expected_open, invoice
    # The clients' balances add up to the open totals.
    balances = {}
    for buyer in books.clients.all():
        for currency, amount in services.client_balances(buyer).items():
            balances[currency] = balances.get(currency, 0) + amount
    assert balances == {c: row["open_total"] for c, row in expected.items()}
    # And the pages say the same.
    member = MembershipFactory(company=books, role="viewer")
    client.force_login(member.user)
    dashboard = client.get(reverse("home")).content.decode()
    for amount in ("150.00\u00a0EUR", "100.00\u00a0EUR", "510.00\u00a0EUR",
                   "1,000.00\u00a0USD", "212.00\u00a0USD"):
        assert amount in dashboard, amount
    listing = client.get(reverse("invoice_list")).content.decode()
    for invoice in invoices.exclude(state="draft"):
        assert f'data-open="{invoice.pk}">{invoice.open_amount()}' in listing.replace(
            "\u00a0EUR", "").replace("\u00a0USD", "").replace(",", ""), invoice


# --- Pages ---------------------------------------------------------------------------------


@pytest.fixture
def accountant(client):
    member = MembershipFactory(role="accountant")
    client.force_login(member.user)
    client.company = member.company
    return client


def test_a_form_with_errors_comes_back_with_what_was_typed(accountant):
    invoice = services.send_document(InvoiceFactory(client=ClientFactory(
        company=accountant.company), lines=CONSULTING))
    response = accountant.post(reverse("invoice_payment", args=[invoice.pk]), {
        "date": "2026-01-02", "amount": "250.00", "method": "cash", "reference": "Till 42"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "This is more than what is left to pay (240.00\xa0EUR): record at most that." in page
    assert 'value="250.00"' in page and 'value="Till 42"' in page
    assert 'value="2026-01-02"' in page and '<option value="cash" selected>' in page
    assert not Payment.objects.exists()


def test_the_invoice_page_records_payments_and_lists_them_with_their_reversal(accountant):
    invoice = services.send_document(InvoiceFactory(client=ClientFactory(
        company=accountant.company), lines=CONSULTING))
    url = reverse("invoice_payment", args=[invoice.pk])
    page = accountant.post(url, {"date": "2026-01-02", "amount": "100", "method": "card",
                                 "reference": "POS"}, follow=True).content.decode()
    assert "Payment of 100.00\xa0EUR recorded; 140.00\xa0EUR left to pay." in page
    page = accountant.post(url, {"date": "2026-01-03", "amount": "140", "method":
                                 "bank_transfer"}, follow=True).content.decode()
    assert f"Payment of 140.00\xa0EUR recorded: {invoice.number} is paid." in page
    assert "Record a payment" not in page  # nothing left to pay
    first = Payment.objects.get(amount=100)
    page = accountant.post(reverse("payment_reverse", args=[first.pk]),
                           {"reason": "Card charged back"}, follow=True).content.decode()
    assert "The payment of 100.00\xa0EUR on Jan. 2, 2026 is reversed." in page
    assert "Card charged back" in page and "Record a payment" in page
    assert fresh(invoice).state == "sent"


def test_a_viewer_sees_payments_but_cannot_record_or_reverse_them(client, invoice):
    payment = pay(invoice, "100.00")
    viewer = MembershipFactory(role="viewer", company=invoice.company)
    client.force_login(viewer.user)
    page = client.get(reverse("invoice_detail", args=[invoice.pk])).content.decode()
    assert "100.00\xa0EUR" in page and "Record a payment" not in page
    assert "Reverse…" not in page and "Paid in full…" not in page
    data = {"date": "2026-01-02", "amount": "1", "method": "cash"}
    assert client.post(reverse("invoice_payment", args=[invoice.pk]), data).status_code == 403
    assert client.post(reverse("invoice_mark_paid", args=[invoice.pk]),
                       {"method": "cash"}).status_code == 403
    assert client.post(reverse("payment_reverse", args=[payment.pk]),
                       {"reason": "r"}).status_code == 403
    assert Payment.objects.count() == 1 and not PaymentReversal.objects.exists()
