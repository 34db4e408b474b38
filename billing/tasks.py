"""Background jobs (django-tasks; rows of django-tasks-db's table, run by `manage.py worker`).

A job may run more than once (its worker died before recording the outcome): each must be
idempotent, as ``deliver_email`` is through its delivery's state.
"""

from django_tasks import task

from . import emails


@task()
def deliver_email(delivery_id: int) -> str:
    return emails.attempt(delivery_id)


@task()
def run_schedules() -> str:
    """The periodic work (``billing.scheduling``): recurring invoices, reminders, tidying."""
    from . import scheduling

    outcome = scheduling.run()
    return (f"{len(outcome.invoices)} invoice(s), {len(outcome.sent)} sent, "
            f"{len(outcome.failed)} not sent, {len(outcome.reminders)} reminder(s)")


# Ahead of the e-mails it queues: a run's numbers are not kept waiting behind its deliveries.
@task(priority=10)
def send_batch(batch_id: int) -> str:
    from . import batches

    return batches.run(batch_id)
