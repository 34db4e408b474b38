"""`manage.py worker`: one background worker (django-tasks-db underneath)."""

import signal
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.crypto import get_random_string

from billing import jobs, scheduling


class Command(BaseCommand):
    help = ("Run one background worker: it runs the jobs (e-mails) written by the app, "
            "writes the periodic job of recurring invoices and reminders, and takes back "
            "jobs whose worker died. Run as many as you like, on any machine that reaches "
            "the database.")

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0,
                            help="seconds to wait when no job is ready (default 1)")
        parser.add_argument("--queue-name", default="default",
                            help="queues to run, comma-separated; '*' for all")
        parser.add_argument("--batch", action="store_true",
                            help="run the jobs ready now, then exit")
        parser.add_argument("--worker-id", default=None,
                            help="a name unique among the workers (default: random)")

    def handle(self, *, interval, queue_name, batch, worker_id, verbosity, **options):
        worker_id = worker_id or get_random_string(20)
        worker = jobs.worker(queue_names=queue_name.split(","), worker_id=worker_id)
        self.stop_on_signals(worker)
        if verbosity:
            self.stdout.write(f"Worker {worker_id} started (queues: {queue_name}).")
        sweep_every = max(min(settings.FOLIO_JOB_LEASE / 4, 60), 1)
        tick_every = settings.FOLIO_SCHEDULE_INTERVAL
        last_sweep = last_tick = None
        while worker.running:
            if last_sweep is None or time.monotonic() - last_sweep >= sweep_every:
                jobs.reclaim_abandoned()
                last_sweep = time.monotonic()
            if tick_every and (last_tick is None or time.monotonic() - last_tick >= tick_every):
                scheduling.enqueue_tick()  # recurring invoices and reminders, as a job
                last_tick = time.monotonic()
            worker.run()  # the jobs ready now, one at a time; returns when none is left
            if batch:
                break
            if worker.running:
                time.sleep(interval)
        if verbosity:
            self.stdout.write(f"Worker {worker_id} stopped.")

    @staticmethod
    def stop_on_signals(worker):
        """
        SIGTERM / SIGINT: finish the current job, then stop; a second one stops at once.
        (django-tasks-db's own handler exits from wherever the signal lands when no job is
        running, which can be the middle of a query whose rollback then fails.)
        """
        def stop(signum, frame):
            if not worker.running:
                worker.reset_signals()
                sys.exit(1)
            worker.running = False

        for name in ("SIGINT", "SIGTERM", "SIGQUIT"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), stop)
