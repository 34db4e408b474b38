"""
Random sequences of everything a company does to its books, with the invariants checked
after every step: drafts have no number, every series is continuous and unique (the audit is
clean), totals add up, credits never exceed invoices.
"""

import contextlib
from datetime import date, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from billing import money, services
from billing.models import DRAFT, CreditNote, DocumentLocked, Invoice
from counters.audit import AuditScope, run_audit
from counters.models import NumberingSettings, Sequence
from counters.services import save_numbering_settings, set_next_number

from .factories import ClientFactory, CreditNoteFactory, InvoiceFactory

pytestmark = pytest.mark.django_db

MODELS = {"invoice": Invoice, "credit_note": CreditNote}
amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("900"), places=2)


class Books(RuleBasedStateMachine):
    documents = Bundle("documents")

    def __init__(self):
        super().__init__()
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.today = date(2026, 12, 27)
        self.clock = mock.patch("django.utils.timezone.localdate", side_effect=lambda: self.today)
        self.clock.start()
        self.client = ClientFactory()
        self.company_id = self.client.company_id

    def teardown(self):
        self.clock.stop()
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    def get(self, ref):
        kind, pk = ref
        return MODELS[kind].objects.filter(pk=pk).first()

    def line(self, amount):
        return [{"description": "Work", "quantity": 1, "unit_price": amount, "tax_rate": 20}]

    @initialize(target=documents)
    def first_invoice(self):
        return ("invoice", InvoiceFactory(client=self.client, lines=self.line(100)).pk)

    @rule(target=documents, kind=st.sampled_from(sorted(MODELS)), amount=amounts,
          send_now=st.booleans())
    def create_draft(self, kind, amount, send_now):
        factory = InvoiceFactory if kind == "invoice" else CreditNoteFactory
        document = factory(client=self.client, lines=self.line(amount))
        if send_now:
            services.send_document(document)
        return (kind, document.pk)

    @rule()
    def send_every_draft(self):
        for model in MODELS.values():
            for draft in model.objects.filter(state=DRAFT):
                # A credit above its invoice's open amount is refused: that is the point.
                with contextlib.suppress(services.CreditExceedsInvoice):
                    services.send_document(draft)

    @rule(ref=documents, amount=amounts)
    def edit(self, ref, amount):
        document = self.get(ref)
        if document is None:
            return
        line = document.lines.first()
        line.unit_price = amount
        if document.is_draft:
            line.save()
            document.update_totals()
        else:
            with pytest.raises(DocumentLocked):
                line.save()

    @rule(ref=documents)
    def delete(self, ref):
        document = self.get(ref)
        if document is None:
            return
        if document.is_draft:
            document.delete()
        else:
            with pytest.raises(DocumentLocked):
                document.delete()

    @rule(ref=documents, twice=st.booleans())
    def send(self, ref, twice):
        document = self.get(ref)
        if document is None:
            return
        try:
            services.send_document(document)
        except ValidationError:
            return  # not a draft, or a credit above the open amount: refused, nothing changed
        if twice:
            with pytest.raises(services.NotADraft):
                services.send_document(document)

    @rule(target=documents, ref=documents, share=st.sampled_from(["open", "part"]))
    def credit(self, ref, share):
        invoice = self.get(ref)
        if not isinstance(invoice, Invoice) or invoice.state != "sent":
            return ("invoice", -1)
        lines = None
        if share == "part":
            lines = [("Partial", Decimal("1"), invoice.total / 3, Decimal("0"), "Z")]
        try:
            credit_note = services.draft_credit_note(invoice, reason="r", amount_lines=lines)
        except services.NothingToCredit:
            return ("invoice", -1)
        except ValidationError as error:  # paid in part: only chosen lines or an amount
            assert error.code == "paid_in_part"
            return ("invoice", -1)
        with contextlib.suppress(services.CreditExceedsInvoice):
            services.send_document(credit_note)
        return ("credit_note", credit_note.pk)

    @rule(ref=documents)
    def cancel(self, ref):
        invoice = self.get(ref)
        if isinstance(invoice, Invoice) and invoice.state == "sent":
            if invoice.paid() > 0:
                with pytest.raises(ValidationError, match="has received payments"):
                    services.cancel_invoice(invoice, reason="r")
                return
            services.cancel_invoice(invoice, reason="r")

    @rule(ref=documents)
    def mark_paid(self, ref):
        invoice = self.get(ref)
        if isinstance(invoice, Invoice) and invoice.state == "sent":
            if invoice.open_amount() == 0:  # its credit notes cover it: nothing to pay
                with pytest.raises(ValidationError, match="Nothing is left to pay"):
                    services.mark_paid(invoice)
                return
            services.mark_paid(invoice)

    @rule(ref=documents, share=st.sampled_from(["third", "rest", "too much"]))
    def pay(self, ref, share):
        invoice = self.get(ref)
        if not isinstance(invoice, Invoice) or invoice.state != "sent":
            return
        left = invoice.open_amount()
        amount = {"third": money.to_cents(left / 3), "rest": left,
                  "too much": left + Decimal("0.01")}[share]
        if share == "too much" or amount <= 0:
            with pytest.raises(ValidationError):
                services.record_payment(invoice, amount=amount, method="card")
            return
        services.record_payment(invoice, amount=amount, method="card")
        assert (self.get(ref).state == "paid") == (amount == left)

    @rule(ref=documents)
    def reverse_a_payment(self, ref):
        invoice = self.get(ref)
        if not isinstance(invoice, Invoice):
            return
        payment = invoice.payments.filter(reversal__isnull=True).order_by("?").first()
        if payment is not None:
            services.reverse_payment(payment, reason="bounced")
            assert self.get(ref).state in ("sent", "cancelled")

    @rule()
    def switch_counters(self):
        numbering = NumberingSettings.for_company(self.company_id)
        numbering.shared_counter = not numbering.shared_counter
        save_numbering_settings(numbering)

    @rule(ahead=st.integers(min_value=1, max_value=4))
    def set_next_number(self, ahead):
        sequence = Sequence.objects.filter(company_id=self.company_id).order_by("?").first()
        if sequence is not None:
            set_next_number(company_id=self.company_id, series=sequence.series,
                            period=sequence.period, next_value=sequence.last + ahead,
                            reason="migrated")

    @rule(days=st.integers(min_value=1, max_value=45))
    def time_passes(self, days):
        self.today += timedelta(days=days)  # crosses month and year boundaries

    @invariant()
    def drafts_have_no_number(self):
        for model in MODELS.values():
            assert not model.objects.filter(state=DRAFT).exclude(number="").exists()
            assert not model.objects.exclude(state=DRAFT).filter(number="").exists()

    @invariant()
    def every_series_is_whole(self):
        findings = list(run_audit(AuditScope(company_id=self.company_id)).findings)
        assert findings == [], [f.message for f in findings]

    @invariant()
    def totals_add_up_and_credits_never_exceed(self):
        for model in MODELS.values():
            for document in model.objects.prefetch_related("lines"):
                assert document.total == document.subtotal + document.tax_total
                totals = money.totals(document.lines.all())
                assert (document.subtotal, document.tax_total, document.total) == \
                    (totals.subtotal, totals.tax, totals.total)
        for invoice in Invoice.objects.exclude(state=DRAFT):
            assert invoice.open_amount() >= 0
            # Paid exactly when payments leave nothing to pay; credits + payments <= total.
            net, credited = invoice.credited()
            assert invoice.paid() + credited <= invoice.total or net >= invoice.subtotal
            if invoice.state == "paid":
                assert invoice.open_amount() == 0 and invoice.paid() > 0
            if invoice.state == "cancelled":
                assert invoice.paid() == 0


def test_random_books_stay_whole():
    run_state_machine_as_test(Books, settings=settings(
        max_examples=25, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow], derandomize=True, database=None,
    ))
