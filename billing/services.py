"""
The business operations on documents. Views, the admin and commands all call these; each
runs in one transaction that locks the rows it changes before reading them.

django-fsm neither opens transactions nor saves: these functions do both. They work on a
freshly locked copy of the document and return it, so a caller's instance is never left
half-changed by a rollback.
"""

from decimal import Decimal
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from counters.history import record_state_change

from . import emails, formats, money
from . import snapshot as snapshots
from .api.models import ApiToken
from .models import (
    DRAFT,
    Client,
    CreditNote,
    CreditNoteLine,
    Document,
    DocumentState,
    Invoice,
    InvoiceLine,
    Membership,
    Payment,
    PaymentMethod,
    PaymentReversal,
    Quote,
    QuoteState,
)


class CreditLine(NamedTuple):
    """A line a credit note will contain: what it says and how it is taxed."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    tax_rate: Decimal
    tax_category: str = "S"
    unit_code: str = "C62"
    tax_exemption_reason: str = ""
    tax_exemption_code: str = ""

    @property
    def net_amount(self):
        return money.line_net(self.quantity, self.unit_price)

    @classmethod
    def of(cls, line, **changes):
        """The credit line for (part of) ``line``, an invoice line."""
        return cls(**{name: getattr(line, name) for name in cls._fields})._replace(**changes)


class NotADraft(ValidationError):
    """The document has already been issued (perhaps a moment ago, by someone else)."""


class CreditExceedsInvoice(ValidationError):
    """Issuing the credit note would credit more than the invoice's open amount."""


class NothingToCredit(ValidationError):
    """Every line of the invoice has already been credited."""


class Overpayment(ValidationError):
    """The payment is more than what is left to pay of the invoice."""


class AlreadyReversed(ValidationError):
    """The payment has already been reversed (perhaps a moment ago, by someone else)."""


def _lock(document):
    """
    A fresh copy of ``document`` with its company and client, the document's row (not
    theirs) locked until the transaction ends.
    """
    return (type(document).objects.select_related("company", "client__company")
            .select_for_update(of=("self",)).get(pk=document.pk))


def _check_credit(credit_note, totals):
    """
    Refuse a credit note with ``totals`` that would take the invoice's credits past its own
    net (the rule the database applies when an invoice is cancelled), or, once the invoice
    has payments, past what is left to pay. Returns the invoice, locked, or None.
    """
    if credit_note.invoice_id is None:
        return None
    # Locking the invoice serialises credit notes and payments against it.
    invoice = Invoice.objects.select_for_update().get(pk=credit_note.invoice_id)
    left = invoice.uncredited_net()
    if totals.subtotal > left:
        raise CreditExceedsInvoice(
            _("This credit note (%(credit)s before tax) exceeds what is left to credit of "
              "%(invoice)s (%(open)s before tax).") % {
                "credit": formats.money(totals.subtotal, invoice.currency),
                "open": formats.money(left, invoice.currency),
                "invoice": invoice.number,
            },
            code="credit_exceeds_invoice",
        )
    if invoice.paid() > 0 and totals.total > invoice.open_amount():
        raise CreditExceedsInvoice(
            _("This credit note (%(credit)s) exceeds what is left to pay of %(invoice)s "
              "(%(open)s), which has received payments. Reverse a payment first, or credit "
              "less.") % {
                "credit": formats.money(totals.total, invoice.currency),
                "open": formats.money(invoice.open_amount(), invoice.currency),
                "invoice": invoice.number,
            },
            code="credit_exceeds_open_amount",
        )
    return invoice


def send_document(document: Document, user=None, *, email=False,
                  on_issued=None) -> Document:
    """
    Issue a draft: give it its number, date and frozen totals, in one transaction.

    Lock the document → check it is still a draft → read its lines and validate → run the
    ``send`` transition, which freezes the content and allocates the number last → save and
    record the change in the company's history. With ``email``, the job that e-mails the PDF
    to the client is written in the same transaction: a rolled-back send queues nothing, a
    committed one is e-mailed by a worker even if this process dies the next instant.
    ``on_issued(document)``, when given, runs last in that transaction too (a month-end
    run records its item's outcome there); what it raises rolls the send back.
    """
    with transaction.atomic():
        locked = _lock(document)
        if locked.state != DRAFT:
            raise NotADraft(
                _("%(document)s has already been issued.") % {"document": locked},
                code="not_draft",
            )
        lines = list(locked.lines.all())
        locked.validate_for_issue(lines)
        invoice = None
        if isinstance(locked, CreditNote):
            invoice = _check_credit(locked, money.totals(lines))
        locked.send(lines=lines, user=user)
        locked.save()
        _record(locked, DRAFT, user)
        if invoice is not None:
            _settle(invoice, user)  # its credit may leave nothing to pay after payments
        if email:
            emails.queue(locked, user=user)
        if on_issued is not None:
            on_issued(locked)
    return locked


def _record(document, from_state, user, reason=""):
    """Record ``document``'s change of state from ``from_state`` in its company's history."""
    record_state_change(company_id=document.company_id, kind=document.kind,
                        document_id=document.pk, from_state=from_state,
                        to_state=document.state, user=user, reason=reason)


def retry_email(document: Document, user=None, *, delivery_id=None):
    """
    E-mail an issued document again: a new delivery, or with ``delivery_id`` that delivery
    of this document tried again if it failed. A worker sends it.
    """
    if document.is_draft:
        raise NotADraft(_("A draft cannot be e-mailed; send it first."), code="draft")
    if delivery_id is not None:
        delivery = emails.deliveries_of(document).filter(pk=delivery_id).first()
        if delivery is not None:  # retried already (a second click): left as it is
            return emails.requeue(delivery)
    with transaction.atomic():
        return emails.queue(document, user=user)


def _lock_invoice(invoice):
    """The invoice, its row locked first: payments, credits and cancelling queue behind."""
    return _lock(invoice if isinstance(invoice, Invoice) else Invoice(pk=invoice))


def _settle(invoice, user):
    """
    A sent invoice whose payments leave nothing to pay becomes paid, in the transaction
    that paid (or credited) it. ``invoice`` is locked.
    """
    if invoice.state == DocumentState.SENT and invoice.paid() > 0 \
            and invoice.open_amount() == 0:
        invoice.mark_paid()
        invoice.save(update_fields=["state", "updated_at"])
        _record(invoice, DocumentState.SENT, user)


def _refuse_unless_payable(invoice):
    if invoice.state != DocumentState.SENT:
        raise ValidationError(
            _("Only a sent invoice can receive a payment; %(invoice)s is %(state)s.") % {
                "invoice": invoice, "state": invoice.get_state_display()},
            code="not_sent",
        )


def _pay(invoice, *, amount, date, method, reference, user):
    """Write a payment on the locked ``invoice``, then settle it. Checks first."""
    if amount is None or amount != money.to_cents(amount) or amount <= 0:
        raise ValidationError(_("A payment is an amount above zero, in cents."),
                              code="bad_amount")
    amount = money.to_cents(amount)  # as stored: "1e2" is 100.00
    date = date or timezone.localdate()
    if date > timezone.localdate():
        raise ValidationError(_("A payment cannot be dated in the future."), code="future")
    if method not in PaymentMethod.values:
        raise ValidationError(_("Choose how the invoice was paid."), code="bad_method")
    left = invoice.open_amount()
    if amount > left:
        raise Overpayment(
            _("This payment (%(amount)s) is more than what is left to pay of %(invoice)s "
              "(%(open)s). Record at most the open amount.") % {
                "amount": formats.money(amount, invoice.currency),
                "open": formats.money(left, invoice.currency), "invoice": invoice},
            code="overpayment",
        )
    payment = Payment(
        company_id=invoice.company_id, invoice=invoice, date=date, amount=amount,
        method=method, reference=reference.strip(),
        recorded_by=user if user is not None and user.is_authenticated else None,
    )
    payment.full_clean(exclude=["invoice", "company", "recorded_by"])
    payment.save()
    _settle(invoice, user)
    return payment


class ClientInUse(ValidationError):
    """The client has documents or recurring invoices, which name it: it is kept."""


def delete_client(client: Client) -> None:
    """
    Delete a client entered by mistake: one without any document (draft or issued), quote
    or recurring invoice. The database protects the others (their documents name them), and
    the refusal says so. A client already gone is not an error: it is deleted.
    """
    with transaction.atomic():
        locked = Client.objects.select_for_update().filter(pk=client.pk).first()
        if locked is None:
            return  # deleted a moment ago (a second click, another request): done
        try:
            with transaction.atomic():  # a savepoint: the refusal leaves the lock usable
                locked.delete()
        except ProtectedError:
            raise ClientInUse(
                _("%(client)s has documents or recurring invoices, which name it, so it is "
                  "kept.") % {"client": locked.name}, code="client_in_use") from None


def record_payment(invoice: Invoice, *, amount, method, date=None, reference="",
                   user=None) -> Payment:
    """
    Record a payment of ``amount`` received on ``date`` (today by default) against a sent
    invoice, in one transaction: lock the invoice → check it is sent and the amount is no
    more than what is left to pay → write the payment → when nothing is left to pay, the
    invoice becomes paid (``mark_paid``) and the change is recorded in its history.
    """
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        _refuse_unless_payable(locked)
        return _pay(locked, amount=amount, date=date, method=method, reference=reference,
                    user=user)


def mark_paid(invoice: Invoice, user=None, *, method=PaymentMethod.OTHER,
              reference="") -> Invoice:
    """
    Paid in full: record a payment of the whole open amount, dated today. Returns the
    invoice, now paid.
    """
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        if locked.state != DocumentState.SENT:
            raise ValidationError(
                _("Only a sent invoice can be marked paid; %(invoice)s is %(state)s.") % {
                    "invoice": locked, "state": locked.get_state_display()
                },
                code="not_sent",
            )
        left = locked.open_amount()
        if left <= 0:
            raise ValidationError(
                _("Nothing is left to pay of %(invoice)s: its credit notes cover it. Cancel "
                  "it instead.") % {"invoice": locked},
                code="nothing_to_pay",
            )
        _pay(locked, amount=left, date=None, method=method, reference=reference, user=user)
    return locked


def reverse_payment(payment: Payment, *, reason, user=None) -> PaymentReversal:
    """
    Reverse a mistaken payment, in one transaction: lock its invoice → check the payment
    has not been reversed yet → write the reversal (who, when, why) → a paid invoice is
    open again (``reopen``), recorded in its history with the reason. Payments are never
    changed or deleted; a reversal is never reversed (record the payment again instead).
    """
    if isinstance(payment, PaymentReversal):
        raise ValidationError(
            _("A reversal cannot be reversed: record the payment again instead."),
            code="reversal_of_reversal")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(_("Say why the payment is reversed."), code="no_reason")
    with transaction.atomic():
        locked = _lock_invoice(payment.invoice_id)
        payment = Payment.objects.get(pk=payment.pk)
        if PaymentReversal.objects.filter(payment_id=payment.pk).exists():
            raise AlreadyReversed(
                _("This payment of %(amount)s has already been reversed.") % {
                    "amount": formats.money(payment.amount, locked.currency)},
                code="already_reversed",
            )
        reversal = PaymentReversal(
            company_id=payment.company_id, payment=payment, reason=reason,
            reversed_by=user if user is not None and user.is_authenticated else None,
        )
        reversal.full_clean(exclude=["payment", "company", "reversed_by"])
        # The database lets a paid invoice reopen only in the transaction that writes a
        # reversal of one of its payments, right after it (SQLite: the last row inserted).
        reversal.save()
        if locked.state == DocumentState.PAID:
            locked.reopen()
            locked.save(update_fields=["state", "updated_at"])
            _record(locked, DocumentState.PAID, user, reason)
    return reversal


def payments_of(invoice):
    """An invoice's payments, oldest first, with their reversals and who recorded them."""
    return (Payment.objects.filter(invoice=invoice)
            .select_related("reversal__reversed_by", "recorded_by").order_by("date", "id"))


def draft_credit_note(invoice: Invoice, *, reason="", amount_lines=None) -> CreditNote:
    """
    A draft credit note for ``invoice``'s open amount: its lines when nothing has been
    credited yet, otherwise one line per tax rate for what is left of each.
    """
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.is_draft:
            raise ValidationError(
                _("Only an issued invoice can be credited."), code="invoice_draft"
            )
        if amount_lines is None and invoice.paid() > 0:
            raise ValidationError(
                _("%(invoice)s has received payments: credit chosen lines or an amount, no "
                  "more than what is left to pay (%(open)s).") % {
                    "invoice": invoice.number,
                    "open": formats.money(invoice.open_amount(), invoice.currency)},
                code="paid_in_part",
            )
        lines = amount_lines if amount_lines is not None else _open_lines(invoice)
        if not lines:
            raise NothingToCredit(
                _("Every line of %(invoice)s has already been credited.") % {
                    "invoice": invoice.number},
                code="nothing_to_credit",
            )
        credit_note = CreditNote(
            company_id=invoice.company_id, client_id=invoice.client_id, invoice=invoice,
            series_id=invoice.series_id,  # corrected in the invoice's series
            currency=invoice.currency, reason=reason,
            buyer_reference=invoice.buyer_reference,  # the buyer routes it as its invoice
        )
        credit_note.full_clean()
        credit_note.save()
        for position, line in enumerate(lines):
            CreditNoteLine.objects.create(document=credit_note, position=position,
                                          **CreditLine(*line)._asdict())
        credit_note.update_totals()
    return credit_note


def open_lines(invoice) -> list[CreditLine]:
    """What a credit note for ``invoice``'s open amount contains. For the credit page's
    preview."""
    return _open_lines(invoice)


def _credited_lines(invoice):
    return list(
        CreditNoteLine.objects.filter(document__invoice=invoice).exclude(document__state=DRAFT)
    )


def uncredited_by_group(invoice, invoice_lines=None, credited=None) -> dict:
    """
    What is left to credit of ``invoice``, net of tax, per tax group: {(category, rate):
    its lines' taxable amount less that of the issued credit notes' lines in the group}.
    A credit note corrects the tax charged at each rate, never more.
    """
    invoice_lines = list(invoice.lines.all()) if invoice_lines is None else invoice_lines
    credited = _credited_lines(invoice) if credited is None else credited
    credited_net = {}
    for line in credited:
        key = (line.tax_category, line.tax_rate)
        credited_net[key] = credited_net.get(key, 0) + line.net_amount
    return {(group.category, group.rate): money.to_cents(
        group.taxable - credited_net.get((group.category, group.rate), Decimal("0")))
        for group in money.totals(invoice_lines).groups}


def _open_lines(invoice):
    credited = _credited_lines(invoice)
    invoice_lines = list(invoice.lines.all())
    if not credited:
        return [CreditLine.of(line) for line in invoice_lines]
    # Each tax group keeps its exemption: that of its first line.
    first_of_group = {}
    for line in invoice_lines:
        first_of_group.setdefault((line.tax_category, line.tax_rate), line)
    lines = []
    for key, left in uncredited_by_group(invoice, invoice_lines, credited).items():
        if left > 0:
            # A line of the credit note: in the language of the client who will read it.
            with translation.override(invoice.client.document_language):
                description = _("Balance of %(invoice)s at %(rate)s%%") % {
                    "invoice": invoice.number, "rate": formats.quantity(key[1])}
            lines.append(CreditLine.of(first_of_group[key], description=description,
                                       quantity=Decimal("1"), unit_price=left,
                                       unit_code="C62"))
    return lines


def cancel_invoice(invoice: Invoice, user=None, *, reason="") -> CreditNote | None:
    """
    Cancel a sent invoice by issuing a credit note for its open amount, in one transaction:
    either both happen or neither does. Nothing is issued when every line is credited.
    """
    with transaction.atomic():
        locked = _lock(invoice)
        if locked.state != DocumentState.SENT:
            raise ValidationError(
                _("Only a sent, unpaid invoice can be cancelled; %(invoice)s is %(state)s.")
                % {"invoice": locked, "state": locked.get_state_display()},
                code="not_sent",
            )
        paid = locked.paid()
        if paid > 0:
            raise ValidationError(
                _("%(invoice)s has received payments (%(paid)s): reverse them before "
                  "cancelling it, or credit what is left to pay.") % {
                    "invoice": locked, "paid": formats.money(paid, locked.currency)},
                code="has_payments",
            )
        if not reason:  # the credit note's reason: in the language of the client who reads it
            with translation.override(locked.client.document_language):
                reason = _("Cancellation of %(invoice)s") % {"invoice": locked}
        try:
            credit_note = send_document(draft_credit_note(locked, reason=reason), user=user)
        except NothingToCredit:
            credit_note = None
        locked.cancel()
        locked.save(update_fields=["state", "updated_at"])
        _record(locked, DocumentState.SENT, user, reason)
    return credit_note


# --- Quotes --------------------------------------------------------------------------------


def _lock_sent_quote(quote, refused):
    """The quote, its row locked; ``refused`` (a message with %(quote)s and %(state)s) unless
    it is sent."""
    locked = _lock(quote)
    if locked.state != QuoteState.SENT:
        raise ValidationError(refused % {"quote": locked, "state": locked.get_state_display()},
                              code="not_sent")
    return locked


def accept_quote(quote: Quote, user=None) -> Invoice:
    """
    The client accepted a sent quote: in one transaction, lock the quote → check it is
    sent → draft an invoice to the same client with the quote's lines as sent, linked to
    it → the quote becomes accepted, recorded in its history. Returns the invoice draft,
    which is edited and sent like any other. A quote is accepted once (the database
    refuses a second invoice of it, and the change of state without one).
    """
    with transaction.atomic():
        locked = _lock_sent_quote(
            quote, _("Only a sent quote can be accepted; %(quote)s is %(state)s."))
        content = locked.content  # as sent
        invoice = Invoice(company_id=locked.company_id, client_id=locked.client_id,
                          series_id=locked.series_id,
                          currency=locked.currency, buyer_reference=locked.buyer_reference,
                          quote=locked)
        invoice.save()
        InvoiceLine.objects.bulk_create(
            InvoiceLine(document=invoice, position=position,
                        **{name: getattr(line, name) for name in snapshots.LINE_FIELDS})
            for position, line in enumerate(content.lines))
        invoice.update_totals()
        locked.accept()
        locked.save(update_fields=["state", "updated_at"])
        _record(locked, QuoteState.SENT, user)
    return invoice


def decline_quote(quote: Quote, user=None, *, reason="") -> Quote:
    """The client declined a sent quote: it is declined, keeps its number, and the change is
    recorded in its history (with ``reason``)."""
    with transaction.atomic():
        locked = _lock_sent_quote(
            quote, _("Only a sent quote can be declined; %(quote)s is %(state)s."))
        locked.decline()
        locked.save(update_fields=["state", "updated_at"])
        _record(locked, QuoteState.SENT, user, reason.strip())
    return locked


def expire_quote(quote: Quote, user=None, *, reason="") -> Quote:
    """A sent quote lapsed: it is expired, keeps its number, and the change is recorded in
    its history. Said by a person (a quote past its valid-until date shows as expired
    meanwhile)."""
    with transaction.atomic():
        locked = _lock_sent_quote(
            quote, _("Only a sent quote can be marked expired; %(quote)s is %(state)s."))
        locked.expire()
        locked.save(update_fields=["state", "updated_at"])
        _record(locked, QuoteState.SENT, user, reason.strip())
    return locked


def set_membership(company, user, role) -> Membership:
    """Add ``user`` to ``company`` with ``role``, or change their role."""
    with transaction.atomic():
        memberships = Membership.objects.select_for_update().filter(company=company)
        current = memberships.filter(user=user).first()
        if current and current.role == Membership.Role.OWNER and role != Membership.Role.OWNER:
            _keep_an_owner(memberships, current)
        membership, _created = Membership.objects.update_or_create(
            company=company, user=user, defaults={"role": role})
        # A token never acts above its maker's role: those above the new one are revoked.
        Role = Membership.Role
        above = Role.values[:Role.values.index(role)]  # the roles, highest first
        ApiToken.objects.filter(company=company, created_by=user, role__in=above,
                                revoked_at__isnull=True).update(revoked_at=timezone.now())
    return membership


def remove_membership(membership: Membership):
    """
    Take a member out of the company, with the API tokens they made for it (a program must
    not keep the access its maker lost); the last owner stays.
    """
    with transaction.atomic():
        memberships = Membership.objects.select_for_update().filter(
            company_id=membership.company_id)
        if membership.role == Membership.Role.OWNER:
            _keep_an_owner(memberships, membership)
        membership.delete()
        ApiToken.objects.filter(company_id=membership.company_id,
                                created_by_id=membership.user_id,
                                revoked_at__isnull=True).update(revoked_at=timezone.now())


def _keep_an_owner(memberships, leaving):
    if not memberships.filter(role=Membership.Role.OWNER).exclude(pk=leaving.pk).exists():
        raise ValidationError(_("A company needs at least one owner: make someone else "
                                "owner first."), code="last_owner")


def client_balances(client) -> dict:
    """What ``client`` has left to pay, per currency (``billing.balances``)."""
    from .balances import with_balances

    rows = with_balances(client.invoices.filter(state=DocumentState.SENT))
    balances = {}
    for currency, amount in rows.values_list("currency", "open_amount_sql"):
        balances[currency] = balances.get(currency, Decimal("0.00")) + money.to_cents(amount)
    return dict(sorted(balances.items()))
