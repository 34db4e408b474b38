"""
The business operations on documents. Views, the admin and commands all call these; each
runs in one transaction that locks the rows it changes before reading them.

django-fsm neither opens transactions nor saves: these functions do both. They work on a
freshly locked copy of the document and return it, so a caller's instance is never left
half-changed by a rollback.
"""

from contextlib import nullcontext
from decimal import Decimal
from functools import cache

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils.translation import gettext as _
from psycopg.pq import TransactionStatus

from counters.models import NumberingSettings

from . import emails
from .models import (
    DRAFT,
    Company,
    CreditNote,
    CreditNoteLine,
    Document,
    DocumentState,
    Invoice,
    Membership,
    money,
    totals_of,
)


class NotADraft(ValidationError):
    """The document has already been issued (perhaps a moment ago, by someone else)."""


class CreditExceedsInvoice(ValidationError):
    """Issuing the credit note would credit more than the invoice's open amount."""


def _lock(document):
    return type(document).objects.select_for_update().get(pk=document.pk)


def _check_credit(credit_note, amount):
    """Refuse a credit note that would take the invoice's credits past its total."""
    if credit_note.invoice_id is None:
        return
    # Locking the invoice serialises credit notes issued against it.
    invoice = Invoice.objects.select_for_update().get(pk=credit_note.invoice_id)
    open_amount = invoice.open_amount()
    if amount > open_amount:
        raise CreditExceedsInvoice(
            _("This credit note (%(credit)s %(currency)s) exceeds the open amount of "
              "%(invoice)s (%(open)s %(currency)s).") % {
                "credit": amount, "open": open_amount,
                "currency": invoice.currency, "invoice": invoice.number,
            },
            code="credit_exceeds_invoice",
        )


def send_document(document: Document, user=None, *, email=False) -> Document:
    """
    Issue a draft: give it its number and date, in one transaction.

    Lock the document and read its lines and numbering settings → check it is still a
    draft → validate → run the ``send`` transition, which allocates the number last, writing
    the ledger entry and the document in the same statement, so the counter row is locked
    for that statement and the commit only. When this call owns the transaction (no atomic
    block around it), COMMIT travels with that statement: one round trip less, and none
    while the counter is locked. With ``email``, the PDF is e-mailed to the client once the
    transaction has committed: a rolled-back send sends nothing.
    """
    owns_transaction = not connection.in_atomic_block
    with transaction.atomic():
        locked, lines, numbering = _lock_for_send(type(document), document.pk)
        if locked.state != DRAFT:
            raise NotADraft(
                _("%(document)s has already been issued.") % {"document": locked},
                code="not_draft",
            )
        if isinstance(locked, CreditNote):
            _check_credit(locked, totals_of(lines)[2])
        locked.send(lines=lines, numbering=numbering, user=user, commit=owns_transaction)
        # Nothing below may fail: with ``owns_transaction`` the send has already committed.
        locked._update_initial_state()  # the row is written: it is 'sent' in the database
        if email:
            transaction.on_commit(lambda: emails.deliver(locked, user=user))
    return locked


def _lock_for_send(model, pk, *, settings_stored=False):
    """
    The document ``pk`` locked for update, with its company and its company's numbering
    settings (under a share lock: settings only change under an update lock, so they stay as
    read until this transaction ends), and its lines as read under that lock.

    On PostgreSQL the two statements travel in one pipeline, with the transaction's BEGIN
    when they open it: one round trip instead of three, while each statement still takes
    its own snapshot on the server, so the lines are read after the lock is held. A send
    does little else, so round trips are most of its time.
    """
    if pk is None:
        raise model.DoesNotExist(f"An unsaved {model._meta.verbose_name} cannot be sent.")
    document_sql, lines_sql = _lock_for_send_sql(model, connection.vendor)
    connection.ensure_connection()
    postgresql = connection.vendor == "postgresql"
    begin = postgresql and _take_over_begin(connection.connection)
    pipeline = connection.connection.pipeline() if postgresql else nullcontext()
    with connection.cursor() as head, connection.cursor() as body:
        with connection.wrap_database_errors, pipeline:
            if begin:
                head.cursor.execute(b"BEGIN", prepare=False)
            head.execute(document_sql, [pk])
            body.execute(lines_sql, [pk])
        row, line_rows = head.fetchone(), body.fetchall()
    if row is None:
        company_id = model.objects.filter(pk=pk).values_list("company_id", flat=True).first()
        if company_id is None or settings_stored:
            raise model.DoesNotExist(f"No {model._meta.verbose_name} with id {pk}.")
        NumberingSettings.for_company(company_id)  # a company's first send stores them
        return _lock_for_send(model, pk, settings_stored=True)
    document_end = len(model._meta.concrete_fields)
    company_end = document_end + len(Company._meta.concrete_fields)
    document = model.from_db(connection.alias, _attnames(model), row[:document_end])
    document.company = Company.from_db(
        connection.alias, _attnames(Company), row[document_end:company_end])
    numbering = NumberingSettings.from_db(
        connection.alias, _attnames(NumberingSettings), row[company_end:])
    line_model = model.lines.field.model
    lines = [line_model.from_db(connection.alias, _attnames(line_model), line_row)
             for line_row in line_rows]
    return document, lines, numbering


def _take_over_begin(raw):
    """
    Whether the caller should send BEGIN itself, in its pipeline, ahead of its statements.

    psycopg opens a transaction by sending BEGIN and waiting for the reply before the
    first statement, in a pipeline too: a round trip of its own. When Django's atomic block
    has not started the transaction yet, psycopg is switched to autocommit so that it adds
    no BEGIN, and the caller sends one: the transaction block is the same, and Django's
    atomic block still commits or rolls it back (and turns autocommit on when it ends).
    Not when an isolation level or read-only mode is configured: psycopg's own BEGIN
    carries them.
    """
    if raw.autocommit or raw.info.transaction_status != TransactionStatus.IDLE:
        return False
    if raw.isolation_level is not None or raw.read_only is not None:
        return False
    raw.autocommit = True
    return True


@cache
def _attnames(model):
    return [f.attname for f in model._meta.concrete_fields]


@cache
def _lock_for_send_sql(model, vendor):
    """
    The two statements of ``_lock_for_send``, written once per document model (and per
    database vendor: SQLite has no row locks, its IMMEDIATE transaction locks the database).
    """
    quote = connection.ops.quote_name

    def columns(meta, alias):
        return ", ".join(f"{alias}.{quote(f.column)}" for f in meta.concrete_fields)

    def join(meta, alias, column):
        return (f"JOIN {quote(meta.db_table)} {alias} "
                f"ON {alias}.{quote(column)} = d.{quote(model._meta.get_field('company').column)}")

    meta, company, numbering = model._meta, Company._meta, NumberingSettings._meta
    lines_field = model.lines.field
    locks = (" FOR UPDATE OF d FOR KEY SHARE OF n"
             if connection.features.has_select_for_update_of else "")
    document_sql = (
        f"SELECT {columns(meta, 'd')}, {columns(company, 'c')}, {columns(numbering, 'n')} "
        f"FROM {quote(meta.db_table)} d {join(company, 'c', company.pk.column)} "
        f"{join(numbering, 'n', numbering.get_field('company').column)} "
        f"WHERE d.{quote(meta.pk.column)} = %s{locks}"
    )
    lines_sql = (
        f"SELECT {columns(lines_field.model._meta, 'l')} "
        f"FROM {quote(lines_field.model._meta.db_table)} l "
        f"WHERE l.{quote(lines_field.column)} = %s ORDER BY l.position, l.id"
    )
    return document_sql, lines_sql


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
        credit_note = CreditNote(
            company_id=invoice.company_id, client_id=invoice.client_id, invoice=invoice,
            currency=invoice.currency, reason=reason,
        )
        credit_note.full_clean()
        credit_note.save()
        for position, (description, quantity, unit_price, tax_rate) in enumerate(
            amount_lines if amount_lines is not None else _open_lines(invoice)
        ):
            CreditNoteLine.objects.create(
                document=credit_note, position=position, description=description,
                quantity=quantity, unit_price=unit_price, tax_rate=tax_rate,
            )
        credit_note.update_totals()
    return credit_note


def _open_lines(invoice):
    credited = list(
        CreditNoteLine.objects.filter(document__invoice=invoice).exclude(document__state=DRAFT)
    )
    if not credited:
        return [(line.description, line.quantity, line.unit_price, line.tax_rate)
                for line in invoice.lines.all()]
    credited_net = {}
    for line in credited:
        credited_net[line.tax_rate] = credited_net.get(line.tax_rate, 0) + line.net_amount
    lines = []
    for rate, net, _tax in invoice.tax_breakdown():
        left = money(net - credited_net.get(rate, Decimal("0")))
        if left > 0:
            lines.append((_("Balance of %(invoice)s at %(rate)s%%") % {
                "invoice": invoice.number, "rate": rate}, Decimal("1"), left, rate))
    return lines


def cancel_invoice(invoice: Invoice, user=None, *, reason="") -> CreditNote:
    """
    Cancel a sent invoice by issuing a credit note for its open amount, in one transaction:
    either both happen or neither does.
    """
    with transaction.atomic():
        locked = _lock(invoice)
        if locked.state != DocumentState.SENT:
            raise ValidationError(
                _("Only a sent, unpaid invoice can be cancelled; %(invoice)s is %(state)s.")
                % {"invoice": locked, "state": locked.get_state_display()},
                code="not_sent",
            )
        credit_note = draft_credit_note(
            locked, reason=reason or _("Cancellation of %(invoice)s") % {"invoice": locked}
        )
        credit_note = send_document(credit_note, user=user) if credit_note.lines.exists() else None
        locked.cancel()
        locked.save(update_fields=["state", "updated_at"])
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
