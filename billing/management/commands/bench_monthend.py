"""
``manage.py bench_monthend [--drafts 10000] [--workers 2] [--kill]``: a month-end run on
PostgreSQL, measured. Run it on a scratch database (it creates a company of its own and
removes it afterwards unless ``--keep``):

1. ``--drafts`` drafts are sent as one month-end run (``billing.batches.start``), its job
   run in this process the way a worker runs it: the run's issue rate, and its ratio to
   the one-by-one rate (the goal: at least 0.9).
2. The one-by-one rate: ``--sample`` drafts issued one after the other with
   ``billing.services.send_document`` (their e-mail queued, as the run does), half before
   the run and half after it, so that a change in the machine's load (the CPUs are
   shared) or in the size of the tables weighs on both sides; their e-mails are dropped.
3. ``--workers`` ``manage.py worker`` processes deliver every e-mail, with its PDF, to
   Django's file backend in a temporary folder: the time they take, the run's total, and
   the peak resident memory of each worker (VmHWM).

With ``--kill`` the workers run the whole run, job included (no ratio then), and one of
them, chosen at random, is SIGKILLed every ``--kill-every`` seconds on average and
restarted at once (with a short job lease, so that what it held is taken back soon).

At the end, every document must be issued once and have exactly one e-mail in the folder
(counted by the PDF file name it carries): lost and duplicated deliveries are printed, and
the command fails if there is any.
"""

import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from billing import batches
from billing.jobs import worker as job_worker
from billing.maintenance import purge_companies
from billing.models import (
    Client,
    Company,
    EmailDelivery,
    Invoice,
    InvoiceLine,
    Membership,
    SendBatch,
)
from billing.pdf import pdf_filename
from billing.services import send_document
from billing.tasks import deliver_email, send_batch

from ._parties import BUYER, SELLER

LINE = {"description": "Month-end bench", "quantity": Decimal("1"),
        "unit_price": Decimal("100.00"), "tax_rate": Decimal("20.00")}
TOTALS = {"subtotal": Decimal("100.00"), "tax_total": Decimal("20.00"),
          "total": Decimal("120.00")}
ROOT = Path(settings.BASE_DIR)
ATTACHMENT = re.compile(rb'filename="([^"]+\.pdf)"')


def peak_rss_mb(pid) -> float:
    """The peak resident memory of process ``pid`` so far (VmHWM), in MiB; 0 if gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else 0.0


class Workers:
    """``count`` ``manage.py worker`` processes, restartable, with their peak memory."""

    def __init__(self, count, env, logs):
        self.env, self.logs, self.peaks, self.kills = env, logs, [0.0] * count, 0
        self.processes = [self._start(i) for i in range(count)]

    def _start(self, index):
        with open(self.logs / f"worker-{index}.log", "ab") as log:  # a pipe could fill up
            return subprocess.Popen(
                [sys.executable, "manage.py", "worker", "--interval", "0.2", "-v0",
                 "--worker-id", f"bench-{index}-{time.monotonic_ns()}"],
                cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=log)

    def sample(self):
        for i, process in enumerate(self.processes):
            self.peaks[i] = max(self.peaks[i], peak_rss_mb(process.pid))
            if process.poll() is not None:
                log = (self.logs / f"worker-{i}.log").read_text()[-2000:]
                raise CommandError(f"worker {i} exited: {log}")

    def kill_one(self):
        index = random.randrange(len(self.processes))
        self.sample()
        self.processes[index].kill()  # SIGKILL
        self.processes[index].wait()
        self.kills += 1
        self.processes[index] = self._start(index)

    def stop(self):
        self.sample()
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=120)


class Command(BaseCommand):
    help = "Measure a month-end run on PostgreSQL: issue rate, e-mail delivery, memory."

    def add_arguments(self, parser):
        parser.add_argument("--drafts", type=int, default=10_000)
        parser.add_argument("--sample", type=int, default=500,
                            help="drafts issued one by one for the reference rate")
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--kill", action="store_true",
                            help="SIGKILL and restart workers at random during the run")
        parser.add_argument("--kill-every", type=float, default=10.0,
                            help="mean seconds between two kills (with --kill)")
        parser.add_argument("--lease", type=int, default=5,
                            help="the workers' job lease in seconds (with --kill)")
        parser.add_argument("--keep", action="store_true", help="keep the data afterwards")

    def handle(self, *args, drafts, sample, workers, kill, kill_every, lease, keep,
               **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_monthend measures PostgreSQL: set DATABASE_URL.")
        self.company = None
        try:
            self.run(drafts, sample, workers, kill, kill_every, lease)
        finally:
            if self.company is not None and not keep:
                self.cleanup()

    def say(self, text):
        self.stdout.write(text)
        self.stdout.flush()

    def run(self, count, sample, workers, kill, kill_every, lease):
        stamp = f"{timezone.now():%H%M%S%f}"
        self.company = Company.objects.create(name=f"Month-end bench {stamp}", **SELLER)
        client = Client.objects.create(company=self.company, name="Bench client",
                                       email="accounts@client.example", **BUYER)
        self.user = user = get_user_model().objects.create(username=f"bench-monthend-{stamp}")
        Membership.objects.create(user=user, company=self.company, role="accountant")

        reference, issued = [], 0.0
        if not kill:  # one by one before and after the run: the machine's load drifts
            first, last = self.drafts(client, sample // 2), self.drafts(client, sample // 2)
            reference.append(self.one_by_one(first, user))
        ids = [invoice.pk for invoice in self.drafts(client, count)]
        mails = Path(tempfile.mkdtemp(prefix="folio-monthend-")) / "mail"
        env = {**os.environ, "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
               "EMAIL_FILE_PATH": str(mails)}
        if kill:
            env["FOLIO_JOB_LEASE"] = str(lease)
        started = time.perf_counter()
        batch = batches.start(self.company, "invoice", ids, user, email=True)
        if kill:
            self.say(f"{count:,} drafts; the workers run the run and the e-mails")
        if not kill:
            self.run_batch_jobs()
            issued = time.perf_counter() - started
            rate = count / issued
            reference.append(self.one_by_one(last, user))
            self.drop_deliveries(first + last)
            mean = sum(reference) / 2
            self.say(f"send_document one by one ({sample // 2} drafts before the run, "
                     f"{sample // 2} after, e-mail queued): {reference[0]:,.1f} and "
                     f"{reference[1]:,.1f} documents/s, mean {mean:,.1f}/s")
            self.say(f"month-end run: {count:,} issued in {issued:,.1f} s = {rate:,.1f}/s; "
                     f"ratio to one by one {rate / mean:.2f} (goal >= 0.9)")
        pool = Workers(workers, env, mails.parent)
        delivering = time.perf_counter()
        next_kill = time.monotonic() + random.expovariate(1 / kill_every)
        try:
            while self.undelivered(batch):
                time.sleep(1)  # a polling interval: how often the progress is looked at
                pool.sample()
                if kill and time.monotonic() >= next_kill:
                    pool.kill_one()
                    next_kill = time.monotonic() + random.expovariate(1 / kill_every)
        finally:
            pool.stop()
        delivered = time.perf_counter() - delivering
        total = issued + delivered  # the one-by-one sample after the run left out
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers, every life
        cpu = usage.ru_utime + usage.ru_stime
        self.say(f"{workers} workers delivered {count:,} e-mails in "
                 f"{delivered:,.1f} s; the whole run took "
                 f"{total:,.1f} s = {total / 60:.1f} min (goal < 20 min for 10,000)")
        self.say(f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
                 f"(other processes share them); mails and worker logs in {mails.parent}")
        self.say("peak memory per worker (VmHWM, largest of its lives): "
                 + ", ".join(f"{peak:,.0f} MiB" for peak in pool.peaks))
        self.say(f"workers' CPU time {cpu:,.0f} s = {1000 * cpu / count:,.0f} ms per e-mail: "
                 f"on {workers} idle cores, {count:,} e-mails take about "
                 f"{cpu / workers / 60:,.1f} min; 10,000 about "
                 f"{cpu / count * 10_000 / workers / 60:,.1f} min")
        if kill:
            self.say(f"{pool.kills} worker(s) SIGKILLed during the run and restarted")
        self.verify(batch, count, mails)

    def drafts(self, client, count):
        invoices = Invoice.objects.bulk_create(
            [Invoice(company=self.company, client=client, **TOTALS) for _ in range(count)])
        InvoiceLine.objects.bulk_create(InvoiceLine(document=invoice, **LINE)
                                        for invoice in invoices)
        return invoices

    def one_by_one(self, invoices, user):
        """Documents per second issued by ``send_document`` one after the other."""
        started = time.perf_counter()
        for invoice in invoices:
            send_document(Invoice(pk=invoice.pk), user=user, email=True)
        return len(invoices) / (time.perf_counter() - started)

    def drop_deliveries(self, invoices):
        """The reference samples' e-mails are not part of the run: their jobs go."""
        ids = set(EmailDelivery.objects.filter(
            company=self.company, document_id__in=[i.pk for i in invoices]).values_list(
            "pk", flat=True))
        jobs = DBTaskResult.objects.filter(task_path=deliver_email.module_path,
                                           status="READY")
        DBTaskResult.objects.filter(pk__in=[job.pk for job in jobs
                                            if job.args_kwargs["args"][0] in ids]).delete()
        EmailDelivery.objects.filter(pk__in=ids).delete()

    def run_batch_jobs(self):
        """The run's jobs (the first and its continuations), as a worker runs them."""
        runner = job_worker(worker_id="bench-monthend")
        while True:
            with transaction.atomic():
                job = (DBTaskResult.objects.ready().filter(task_path=send_batch.module_path)
                       .get_locked())
                if job is None:
                    return
                job.claim("bench-monthend")
            runner.run_task(job)

    def undelivered(self, batch):
        return (SendBatch.objects.filter(pk=batch.pk, state=SendBatch.State.RUNNING).exists()
                or EmailDelivery.objects.filter(company=self.company,
                                                status=EmailDelivery.Status.PENDING).exists())

    def verify(self, batch, count, mails):
        numbers = dict(Invoice.objects.filter(pk__in=batch.items.values("document_id"))
                       .values_list("pk", "number"))
        issued = batch.items.filter(outcome="issued").count()
        expected = Counter({pdf_filename(Invoice(pk=pk, number=number)): 0
                            for pk, number in numbers.items()})
        delivered = Counter()
        for path in mails.iterdir():
            delivered.update(name.decode() for name in ATTACHMENT.findall(path.read_bytes()))
        lost = [name for name in expected if delivered[name] == 0]
        duplicated = [name for name in expected if delivered[name] > 1]
        failed = EmailDelivery.objects.filter(company=self.company,
                                              status=EmailDelivery.Status.FAILED).count()
        self.say(f"check: {issued:,} of {count:,} issued; {sum(delivered.values()):,} e-mails "
                 f"in the sink; lost {len(lost)}, duplicated {len(duplicated)}, "
                 f"failed deliveries {failed}")
        if issued != count or lost or duplicated or failed:
            raise CommandError(f"not every document issued and delivered once: lost "
                               f"{lost[:5]}, duplicated {duplicated[:5]}")

    def cleanup(self):
        DBTaskResult.objects.filter(
            task_path__in=[deliver_email.module_path, send_batch.module_path]).filter(
            status__in=["SUCCESSFUL", "FAILED"]).delete()
        purge_companies([self.company.pk])
        self.user.delete()
