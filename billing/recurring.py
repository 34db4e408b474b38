"""
Recurring invoices: the periods of a schedule (``RecurringInvoice``) and running it.

Periods. A schedule makes an invoice on its day of the month (1 to 28, or the last day),
every month, quarter or year: the first period is the first such day on or after the start
date, the next ones 1, 3 or 12 months apart, the last on or before the end date (if any).

Running (``run_schedule``): each period after the last one made (``last_period``) and up to
today gets a draft with the template's lines, in its own transaction. What makes this
idempotent is the database, not the caller: the invoice carries (schedule, period) under a
unique constraint, so a second run, or a second worker racing the first, finds the period
taken and makes nothing. Periods missed while no worker ran are caught up, each with its own
draft. In the "create and send" mode each draft is then sent through
``billing.services.send_document`` (e-mailed through the durable e-mail jobs if the schedule
says so); a send that fails (an e-invoice check, the owner's role) leaves the draft and
records why on the schedule, where its page shows it.
"""

import calendar
import logging
from datetime import date
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from . import money
from .models import FREQUENCY_MONTHS, LAST_DAY, Invoice, InvoiceLine, RecurringInvoice
from .permissions import Action, user_can

log = logging.getLogger(__name__)

# A schedule never makes more than this many invoices in one run (a start date typed decades
# in the past should not flood the company with drafts); the next run goes on.
MAX_PERIODS_PER_RUN = 120


def _on_day(year, month, day_of_month):
    last = calendar.monthrange(year, month)[1]
    return date(year, month, last if day_of_month == LAST_DAY else min(day_of_month, last))


def _add_months(year, month, months):
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def first_period(schedule) -> date:
    """The first period: the schedule's day of the month, on or after its start date."""
    start = schedule.start_date
    first = _on_day(start.year, start.month, schedule.day_of_month)
    if first < start:
        first = _on_day(*_add_months(start.year, start.month, 1), schedule.day_of_month)
    return first


def _period(schedule, first, n) -> date:
    months = FREQUENCY_MONTHS[schedule.frequency] * n
    return _on_day(*_add_months(first.year, first.month, months), schedule.day_of_month)


def _period_or_none(schedule, n) -> date | None:
    """The schedule's period ``n`` (from 0), None past the calendar's last year (a start
    date saved before dates were bounded)."""
    try:
        return _period(schedule, first_period(schedule), n)
    except (ValueError, OverflowError):
        return None


def period_dates(schedule, until, *, after=None, limit=None) -> list[date]:
    """
    The schedule's periods up to ``until`` (and its end date), those after ``after`` only,
    at most ``limit`` of them.
    """
    last = min(until, schedule.end_date) if schedule.end_date else until
    periods, n = [], 0
    while limit is None or len(periods) < limit:
        period = _period_or_none(schedule, n)
        if period is None or period > last:
            break
        if after is None or period > after:
            periods.append(period)
        n += 1
    return periods


def next_period(schedule, after=None) -> date | None:
    """The first period after ``after`` (None: from the start), None past the end date."""
    n = 0
    while True:
        period = _period_or_none(schedule, n)
        if period is None or schedule.end_date and period > schedule.end_date:
            return None
        if after is None or period > after:
            return period
        n += 1


class RunResult(NamedTuple):
    created: list  # the invoices this run made (sent or left as drafts)
    sent: list
    failed: list  # (invoice, reason): made, not sent


def due(today=None):
    """The active schedules with a period due by ``today``."""
    today = today or timezone.localdate()
    return (RecurringInvoice.objects.filter(active=True, start_date__lte=today)
            # Ended on its last period (a cheap filter: the run computes the rest).
            .exclude(end_date__isnull=False, last_period__gte=F("end_date"))
            .order_by("pk"))


def run_due(today=None) -> RunResult:
    """Run every active schedule for the periods due by ``today``. One failing schedule
    (a bug, the database) is logged and does not stop the others."""
    today = today or timezone.localdate()
    total = RunResult([], [], [])
    for schedule in due(today):
        if not period_dates(schedule, today, after=schedule.last_period, limit=1):
            continue  # nothing due yet: no query (run_schedule reads the schedule afresh)
        try:
            result = run_schedule(schedule, today)
        except Exception:  # noqa: BLE001 - logged; the next run tries this schedule again
            log.exception("Recurring schedule %s failed", schedule.pk)
            continue
        for mine, theirs in zip(total, result, strict=True):
            mine.extend(theirs)
    return total


def run_schedule(schedule, today=None) -> RunResult:
    """
    Make the schedule's invoices for its periods after the last one made, up to ``today``:
    one draft each, sent in the "create and send" mode. A paused schedule makes nothing.
    """
    today = today or timezone.localdate()
    result = RunResult([], [], [])
    schedule = RecurringInvoice.objects.select_related("company", "client", "owner").get(
        pk=schedule.pk)
    if not schedule.active:
        return result
    for period in period_dates(schedule, today, after=schedule.last_period,
                               limit=MAX_PERIODS_PER_RUN):
        invoice = make_invoice(schedule, period)
        if invoice is None:
            continue  # another run made this period
        result.created.append(invoice)
        if schedule.sends:
            reason = send(schedule, invoice)
            if reason:
                result.failed.append((invoice, reason))
            else:
                result.sent.append(invoice)
    return result


def make_invoice(schedule, period) -> Invoice | None:
    """
    The draft of ``schedule`` for ``period``, with the template's lines and totals, in one
    transaction; None if the period has its invoice already (the unique constraint says so:
    another run, perhaps this very moment in another worker, made it).
    """
    lines = list(schedule.lines.all())
    with transaction.atomic():
        try:
            with transaction.atomic():  # a savepoint: the conflict leaves the rest usable
                invoice = Invoice.objects.create(
                    company_id=schedule.company_id, client_id=schedule.client_id,
                    series_id=schedule.series_id, currency=schedule.currency,
                    notes=schedule.notes, buyer_reference=schedule.buyer_reference,
                    recurring=schedule, recurring_period=period)
        except IntegrityError:
            if not Invoice.objects.filter(recurring=schedule, recurring_period=period).exists():
                raise  # some other constraint: not ours to hide
            invoice = None
        # The latest period made only moves forward, whichever worker gets here last.
        RecurringInvoice.objects.filter(pk=schedule.pk).filter(
            Q(last_period__isnull=True) | Q(last_period__lt=period)).update(last_period=period)
        if invoice is None:
            return None
        InvoiceLine.objects.bulk_create(
            InvoiceLine(document=invoice, position=position,
                        **{name: getattr(line, name) for name in LINE_COPIED})
            for position, line in enumerate(lines))
        invoice.update_totals()
    return invoice


LINE_COPIED = ("description", "quantity", "unit_price", "tax_rate", "unit_code",
               "tax_category", "tax_exemption_reason", "tax_exemption_code")


def send(schedule, invoice) -> str:
    """
    Send a draft the schedule made, in its owner's name; the reason it could not be sent
    (recorded on the schedule), or "" when it was.
    """
    from .services import send_document

    owner = schedule.owner
    try:
        if owner is None or not user_can(owner, schedule.company_id, Action.SEND):
            raise ValidationError(
                _("The schedule's owner may no longer send invoices; edit the schedule to "
                  "take it over."), code="owner_cannot_send")
        send_document(invoice, user=owner, email=schedule.email)
    except ValidationError as error:
        reason = _("%(invoice)s (period %(period)s) was kept as a draft: %(reason)s") % {
            "invoice": invoice, "period": invoice.recurring_period.isoformat(),
            "reason": " ".join(error.messages)}
        RecurringInvoice.objects.filter(pk=schedule.pk).update(
            last_error=reason, last_error_at=timezone.now())
        log.info("Recurring schedule %s: %s", schedule.pk, reason)
        return reason
    RecurringInvoice.objects.filter(pk=schedule.pk).update(last_error="", last_error_at=None)
    return ""


def save_schedule(form, formset, user) -> RecurringInvoice:
    """
    Save a schedule and its template lines (valid ``RecurringInvoiceForm`` and line
    formset), in one transaction; whoever saves it becomes its owner.
    """
    with transaction.atomic():
        schedule = form.save(commit=False)
        schedule.owner = user
        schedule.save()
        formset.instance = schedule
        formset.save(commit=False)
        for line in formset.deleted_objects:
            line.delete()
        for position, line_form in enumerate(formset.ordered_forms):
            line = line_form.instance
            if line.pk is None or line_form.has_changed() or line.position != position:
                line.position = position
                line.save()
    return schedule


def set_active(schedule, active: bool) -> RecurringInvoice:
    """Pause or resume. A resumed schedule catches up on the periods it missed while
    paused, unless its start or last period is moved (edit it)."""
    RecurringInvoice.objects.filter(pk=schedule.pk).update(active=active,
                                                           updated_at=timezone.now())
    schedule.refresh_from_db()
    return schedule


def template_totals(lines):
    """The totals each invoice of the schedule will have (``billing.money``)."""
    return money.totals(lines)
