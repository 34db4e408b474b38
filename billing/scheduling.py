"""
The periodic work: recurring invoices and reminders, then housekeeping (finished jobs older
than ``FOLIO_JOB_RETENTION_DAYS``, the API's expired idempotency keys), run as one durable
job.

django-tasks has no periodic scheduler, so the worker (`manage.py worker`) writes a
``run_schedules`` job every ``FOLIO_SCHEDULE_INTERVAL`` seconds unless one is already waiting
or running (a cheap query), and runs it like any other job. Several workers may all do
this: what keeps invoices and reminders from being made twice is the database's unique
constraints (one invoice per schedule and period, one reminder per invoice and step), never
the tick. A job whose worker died is taken back after ``FOLIO_JOB_LEASE`` (``billing.jobs``).
`manage.py run_schedules` runs the same work in the foreground, for cron and tests.
"""

from datetime import date, timedelta
from typing import NamedTuple

from django.conf import settings
from django.utils import timezone
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from . import recurring, reminders


class Outcome(NamedTuple):
    invoices: list
    sent: list
    failed: list  # (invoice, reason)
    reminders: list


def run(today: date | None = None) -> Outcome:
    """Make the recurring invoices due by ``today``, send the reminders due, then tidy up."""
    today = today or timezone.localdate()
    made = recurring.run_due(today)
    outcome = Outcome(made.created, made.sent, made.failed, reminders.run_due(today))
    prune()
    return outcome


def prune():
    """
    Delete what is only kept for a while: finished jobs that ended more than
    ``FOLIO_JOB_RETENTION_DAYS`` ago (what a job did stays recorded where it belongs, such as
    a document's deliveries) and the API's idempotency keys past their retention. Jobs
    waiting or running are never touched, nor a self-retrying job that crashed (an e-mail,
    a month-end run): ``billing.jobs.reclaim_abandoned`` makes it ready again, and without it
    its delivery or run would wait for ever. (django-tasks-db's ``prune_db_task_results``
    cannot leave those out.)
    """
    from .api.idempotency import prune as prune_idempotency_keys
    from .jobs import SELF_RETRYING  # billing.jobs imports the tasks, which import this

    cutoff = timezone.now() - timedelta(days=settings.FOLIO_JOB_RETENTION_DAYS)
    DBTaskResult.objects.finished().filter(finished_at__lte=cutoff).exclude(
        status=TaskResultStatus.FAILED, task_path__in=SELF_RETRYING).delete()
    prune_idempotency_keys()


def enqueue_tick() -> bool:
    """Write a ``run_schedules`` job unless one is waiting or running. Whether it did."""
    from .tasks import run_schedules

    waiting = DBTaskResult.objects.filter(
        task_path=run_schedules.module_path,
        status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING])
    if waiting.exists():
        return False
    run_schedules.enqueue()
    return True
