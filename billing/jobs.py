"""The worker's side of background jobs: running them, and taking back abandoned ones."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from .tasks import deliver_email, send_batch

log = logging.getLogger(__name__)

# Jobs that never raise on a failure of their own (they record it and retry themselves):
# when one ends failed, what failed was the infrastructure (the database), so it runs again.
SELF_RETRYING = [deliver_email.module_path, send_batch.module_path]


def reclaim_abandoned(lease: timedelta | None = None) -> int:
    """
    Make jobs ready again that a worker claimed longer than ``lease`` ago and never finished
    (it was killed), and self-retrying jobs that crashed: they run again, once each lease.
    """
    lease = timedelta(seconds=settings.FOLIO_JOB_LEASE) if lease is None else lease
    cutoff = timezone.now() - lease
    with transaction.atomic():
        running = DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING,
                                              started_at__lt=cutoff)
        crashed = DBTaskResult.objects.filter(status=TaskResultStatus.FAILED,
                                              task_path__in=SELF_RETRYING,
                                              finished_at__lt=cutoff)
        count = 0
        for jobs in (running, crashed):
            count += jobs.update(status=TaskResultStatus.READY)
    if count:
        log.warning("%s abandoned job(s) made ready again", count)
    return count


def worker(*, queue_names=("default",), worker_id="folio", batch=True) -> Worker:
    """django-tasks-db's worker; with ``batch`` it runs the ready jobs, then returns."""
    return Worker(queue_names=list(queue_names), interval=0, batch=batch,
                  backend_name="default", startup_delay=False, max_tasks=None,
                  worker_id=worker_id, excluded_queue_names=[])


def run_ready_jobs(worker_id="inline") -> int:
    """
    Run every job that is due now, in this process and on its connection (tests, scripts):
    claimed and run as the worker does, without its connection upkeep, which would close a
    connection that is inside a transaction. Returns how many ran.
    """
    runner, count = worker(worker_id=worker_id), 0
    while True:
        with transaction.atomic():
            job = DBTaskResult.objects.ready().filter(backend_name="default").get_locked()
            if job is None:
                return count
            job.claim(worker_id)
        runner.run_task(job)
        count += 1
