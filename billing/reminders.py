"""
Reminders of overdue invoices.

A company sets its reminder steps in days after the due date (``Company.reminder_days``,
such as "3, 14, 30"; empty: none). ``run_due`` looks at the sent invoices with something left
to pay (``billing.balances``: credit notes and payments count) whose due date has passed, and
gives each the latest step that is due and not yet recorded: a ``Reminder`` row and its
e-mail (``billing.emails.queue_reminder``: the durable e-mail job, in the same transaction).

- Never twice for the same step: (invoice, step) is unique in the database; a second run, or
  a second worker at the same moment, finds the step taken and sends nothing.
- Several steps due at once (no worker ran for a while, or the steps were just set): only
  the latest is sent; the earlier ones are recorded as *skipped*, so they never go out late.
- Stopped by payment or credit: a paid or cancelled invoice, or one whose credit notes and
  payments leave nothing to pay, is not overdue and gets nothing. The e-mail job checks again
  just before sending.
"""

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from . import emails
from .balances import with_balances
from .models import Company, DocumentState, Invoice, Reminder

log = logging.getLogger(__name__)


def due_steps(steps, due_date, today) -> list[int]:
    """The steps (days after ``due_date``) due by ``today``."""
    return [step for step in steps if due_date + timedelta(days=step) <= today]


def next_reminder(invoice, *, done=None, open_amount=None):
    """
    (step, date) of the invoice's next reminder, or None (none left, or nothing to pay).
    ``done``: its reminders, ``open_amount``: what is left to pay, when the caller has them.
    """
    if invoice.state != DocumentState.SENT or invoice.due_date is None:
        return None
    if (invoice.open_amount() if open_amount is None else open_amount) <= 0:
        return None
    done = invoice.reminders.all() if done is None else done
    latest_done = max((reminder.step for reminder in done), default=0)
    for step in invoice.company.reminder_steps:
        if step > latest_done:
            try:
                return step, invoice.due_date + timedelta(days=step)
            except OverflowError:  # a due date saved before dates were bounded
                return None
    return None


def overdue(company, today):
    """``company``'s sent invoices with something left to pay, due before ``today``."""
    return (with_balances(Invoice.objects.filter(company=company, state=DocumentState.SENT,
                                                 due_date__lt=today))
            .filter(open_amount_sql__gt=0).order_by("due_date", "pk"))


def run_due(today=None) -> list[Reminder]:
    """Send the reminders due by ``today`` in every company that has reminder steps."""
    today = today or timezone.localdate()
    sent = []
    for company in Company.objects.exclude(reminder_days="").order_by("pk"):
        steps = company.reminder_steps
        if not steps:
            continue
        first = today - timedelta(days=steps[0])
        latest = Reminder.objects.filter(invoice=OuterRef("pk")).order_by("-step")
        candidates = (overdue(company, today).filter(due_date__lte=first)
                      .annotate(latest_step=Subquery(latest.values("step")[:1]))
                      .values_list("pk", "due_date", "latest_step"))
        for invoice_id, due_date, latest_step in candidates:
            if not [step for step in due_steps(steps, due_date, today)
                    if step > (latest_step or 0)]:
                continue  # its due steps are recorded: nothing to lock or send
            try:
                reminder = remind(invoice_id, steps, today)
            except Exception:  # noqa: BLE001 - logged; the next run tries this invoice again
                log.exception("Reminder of invoice %s failed", invoice_id)
                continue
            if reminder is not None:
                sent.append(reminder)
    return sent


def remind(invoice_id, steps, today) -> Reminder | None:
    """
    The latest due step of one invoice that has not been recorded yet, with its e-mail,
    and the earlier unrecorded ones as skipped, in one transaction; None when nothing is due
    (or another run recorded it this moment).
    """
    with transaction.atomic():
        invoice = (Invoice.objects.select_for_update(of=("self",))
                   .select_related("company", "client").get(pk=invoice_id))
        if invoice.state != DocumentState.SENT or invoice.due_date is None \
                or invoice.open_amount() <= 0:
            return None  # paid or credited since the list was read
        done = set(invoice.reminders.values_list("step", flat=True))
        # Steps past the latest one recorded: an earlier step added later is not sent.
        latest_done = max(done, default=0)
        due = [step for step in due_steps(steps, invoice.due_date, today)
               if step > latest_done]
        if not due:
            return None
        try:
            with transaction.atomic():  # a savepoint: the conflict leaves the rest usable
                for step in due[:-1]:
                    Reminder.objects.create(company_id=invoice.company_id, invoice=invoice,
                                            step=step, skipped=True,
                                            due_on=invoice.due_date + timedelta(days=step))
                reminder = Reminder.objects.create(
                    company_id=invoice.company_id, invoice=invoice, step=due[-1],
                    due_on=invoice.due_date + timedelta(days=due[-1]))
        except IntegrityError:
            return None  # another run recorded these steps first
        emails.queue_reminder(reminder)
    return reminder
