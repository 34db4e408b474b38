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
from django.utils import translation
from django.utils.translation import gettext as _

from counters.history import record_state_change

from . import emails, formats, money
from .models import (
    DRAFT,
    CreditNote,
    CreditNoteLine,
    Document,
    DocumentState,
    Invoice,
    Membership,
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


def _lock(document):
    """
    A fresh copy of ``document`` with its company and client, the document's row (not
    theirs) locked until the transaction ends.
    """
    return (type(document).objects.select_related("company", "client__company")
            .select_for_update(of=("self",)).get(pk=document.pk))


def _check_credit(credit_note, net):
    """
    Refuse a credit note of ``net`` (before tax) that would take the invoice's credits past
    its own net: the rule the database applies when an invoice is cancelled.
    """
    if credit_note.invoice_id is None:
        return
    # Locking the invoice serialises credit notes issued against it.
    invoice = Invoice.objects.select_for_update().get(pk=credit_note.invoice_id)
    left = invoice.uncredited_net()
    if net > left:
        raise CreditExceedsInvoice(
            _("This credit note (%(credit)s before tax) exceeds what is left to credit of "
              "%(invoice)s (%(open)s before tax).") % {
                "credit": formats.money(net, invoice.currency),
                "open": formats.money(left, invoice.currency),
                "invoice": invoice.number,
            },
            code="credit_exceeds_invoice",
        )


def send_document(document: Document, user=None, *, email=False) -> Document:
    """
    Issue a draft: give it its number, date and frozen totals, in one transaction.

    Lock the document → check it is still a draft → read its lines and validate → run the
    ``send`` transition, which freezes the content and allocates the number last → save and
    record the change in the company's history. With ``email``, the PDF is
    e-mailed to the client once the transaction has committed: a rolled-back send sends
    nothing.
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
        if isinstance(locked, CreditNote):
            _check_credit(locked, money.totals(lines).subtotal)
        locked.send(lines=lines, user=user)
        locked.save()
        _record(locked, DRAFT, user)
        if email:
            transaction.on_commit(lambda: emails.deliver(locked, user=user))
    return locked


def _record(document, from_state, user, reason=""):
    """Record ``document``'s change of state from ``from_state`` in its company's history."""
    record_state_change(company_id=document.company_id, kind=document.kind,
                        document_id=document.pk, from_state=from_state,
                        to_state=document.state, user=user, reason=reason)


def retry_email(document: Document, user=None):
    """E-mail an issued document again (after a failed delivery, say)."""
    if document.is_draft:
        raise NotADraft(_("A draft cannot be e-mailed; send it first."), code="draft")
    return emails.deliver(document, user=user)


def mark_paid(invoice: Invoice, user=None) -> Invoice:
    with transaction.atomic():
        locked = _lock(invoice)
        if locked.state != DocumentState.SENT:
            raise ValidationError(
                _("Only a sent invoice can be marked paid; %(invoice)s is %(state)s.") % {
                    "invoice": locked, "state": locked.get_state_display()
                },
                code="not_sent",
            )
        locked.mark_paid()
        locked.save(update_fields=["state", "updated_at"])
        _record(locked, DocumentState.SENT, user)
    return locked


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
        lines = amount_lines if amount_lines is not None else _open_lines(invoice)
        if not lines:
            raise NothingToCredit(
                _("Every line of %(invoice)s has already been credited.") % {
                    "invoice": invoice.number},
                code="nothing_to_credit",
            )
        credit_note = CreditNote(
            company_id=invoice.company_id, client_id=invoice.client_id, invoice=invoice,
            currency=invoice.currency, reason=reason,
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


def _open_lines(invoice):
    credited = list(
        CreditNoteLine.objects.filter(document__invoice=invoice).exclude(document__state=DRAFT)
    )
    invoice_lines = list(invoice.lines.all())
    if not credited:
        return [CreditLine.of(line) for line in invoice_lines]
    credited_net = {}
    for line in credited:
        key = (line.tax_category, line.tax_rate)
        credited_net[key] = credited_net.get(key, 0) + line.net_amount
    # Each tax group keeps its exemption: that of its first line.
    first_of_group = {}
    for line in invoice_lines:
        first_of_group.setdefault((line.tax_category, line.tax_rate), line)
    lines = []
    for group in money.totals(invoice_lines).groups:
        key = (group.category, group.rate)
        left = money.to_cents(group.taxable - credited_net.get(key, Decimal("0")))
        if left > 0:
            # A line of the credit note: in the language of the client who will read it.
            with translation.override(invoice.client.document_language):
                description = _("Balance of %(invoice)s at %(rate)s%%") % {
                    "invoice": invoice.number, "rate": formats.quantity(group.rate)}
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


def set_membership(company, user, role) -> Membership:
    """Add ``user`` to ``company`` with ``role``, or change their role."""
    with transaction.atomic():
        memberships = Membership.objects.select_for_update().filter(company=company)
        current = memberships.filter(user=user).first()
        if current and current.role == Membership.Role.OWNER and role != Membership.Role.OWNER:
            _keep_an_owner(memberships, current)
        membership, _created = Membership.objects.update_or_create(
            company=company, user=user, defaults={"role": role})
    return membership


def remove_membership(membership: Membership):
    """Take a member out of the company; the last owner stays."""
    with transaction.atomic():
        memberships = Membership.objects.select_for_update().filter(
            company_id=membership.company_id)
        if membership.role == Membership.Role.OWNER:
            _keep_an_owner(memberships, membership)
        membership.delete()


def _keep_an_owner(memberships, leaving):
    if not memberships.filter(role=Membership.Role.OWNER).exclude(pk=leaving.pk).exists():
        raise ValidationError(_("A company needs at least one owner: make someone else "
                                "owner first."), code="last_owner")
