"""
``manage.py bench_numbering --settings=billing.settings_bench``: documents sent per second by
Folio, against the send a Django developer would write with django-sequences, on PostgreSQL,
with the same numbers of worker processes (one connection each) for every row. Run it on a
scratch database migrated with the same settings: it creates its own companies and tables,
and removes them.

1. peer send (django-sequences): in one ``transaction.atomic()``, lock the draft with
   ``select_for_update()``, read its lines, take the company's next value with
   ``sequences.get_next_value``, compute the totals, save number, date, totals and state. It
   runs on benchmark-only tables (``PeerDocument``, ``PeerLine`` below, in a model registry
   of their own), created for the run and dropped after it, with a unique (company, number)
   constraint: it never writes Folio's documents, its counters or its ledger.
2. folio send, 1 company: ``billing.services.send_document`` of prepared drafts of one
   company (one shared counter);
3. folio send, 16 companies: the same, spread over 16 companies (independent counters).
4. with ``--client-counter``: folio send, 1 company, per-client counter: the send of row 2
   with the pattern ``INV-{YYYY}-{counter}-{client_ref}-{client_counter}`` and the drafts
   alternating between two clients, so that each send also takes its client's own counter.
   Its ratio to row 2, measured in the same run, is the per-client goal (>= 0.9).

Both sides' drafts have the same line. The ratio printed is the goal's: folio send (one
company) / peer send, which should reach 1.0 with 4 workers. In brackets, how busy the
machine's CPUs were during each run: near 100 % a run is bounded by CPU time, not by waiting
for its counter row.

Afterwards every Folio draft must be issued, each company's series whole (1..N) and its
audit clean; every peer draft sent, numbered 1..N in its company.
"""

import multiprocessing
import time
from datetime import timedelta
from decimal import Decimal

from django.apps import apps
from django.apps.registry import Apps
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections, models, transaction
from django.db.models import Q
from django.utils import timezone

from billing import money
from billing.maintenance import purge_companies
from billing.models import DRAFT, Client, Company, Invoice, InvoiceLine
from billing.services import send_document
from counters.audit import AuditScope, run_audit
from counters.models import IssuedNumber, NumberingSettings

from ._parties import BUYER, SELLER

SETTINGS = "billing.settings_bench"
WORKERS = (1, 4, 8, 16)
GOAL_WORKERS = 4
RUNS = [("peer", "peer send (django-sequences)"), ("send", "folio send, 1 company"),
        ("send16", "folio send, 16 companies")]
CLIENT_COUNTER_RUN = ("sendcc", "folio send, per-client counter")
CLIENT_COUNTER_PATTERN = "INV-{YYYY}-{counter}-{client_ref}-{client_counter}"
CLIENT_CODES = ("ACME", "BOLT")
CLIENT_COUNTER_GOAL = 0.9
# The one line of every draft, Folio's and the peer's.
LINE = {"description": "Bench", "quantity": Decimal("1"), "unit_price": Decimal("100.00"),
        "tax_rate": Decimal("20.00")}
TOTALS = {"subtotal": Decimal("100.00"), "tax_total": Decimal("20.00"),
          "total": Decimal("120.00")}


# --- The peer's tables: benchmark-only, outside the project's app registry --------------------

PEER_APPS = Apps()  # neither migrations nor the admin nor flush ever see these models


class PeerDocument(models.Model):
    """An invoice as a plain Django project would store it."""

    company_id = models.BigIntegerField(db_index=True)
    client_id = models.BigIntegerField(db_index=True)
    state = models.CharField(max_length=10, default="draft")
    number = models.CharField(max_length=32, blank=True, default="")
    issue_date = models.DateField(null=True)
    due_date = models.DateField(null=True)
    currency = models.CharField(max_length=3, default="EUR")
    notes = models.TextField(blank=True)
    subtotal = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    tax_total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        apps = PEER_APPS
        app_label = "bench_peer"
        db_table = "bench_peer_document"
        constraints = [models.UniqueConstraint(
            fields=["company_id", "number"], condition=~Q(number=""),
            name="bench_peer_document_number_unique")]

    def __str__(self):
        return self.number or f"Draft #{self.pk}"


class PeerLine(models.Model):
    document = models.ForeignKey(PeerDocument, on_delete=models.CASCADE, related_name="lines")
    description = models.CharField(max_length=500)
    quantity = models.DecimalField(max_digits=12, decimal_places=3)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    tax_rate = models.DecimalField(max_digits=5, decimal_places=2)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        apps = PEER_APPS
        app_label = "bench_peer"
        db_table = "bench_peer_line"

    def __str__(self):
        return self.description


def peer_send(pk, series):
    """The peer's send of draft ``pk``, numbered in ``series``-<company>."""
    from sequences import get_next_value

    with transaction.atomic():
        document = PeerDocument.objects.select_for_update().get(pk=pk)
        if document.state != "draft":
            raise ValueError(f"peer document {pk} has already been sent")
        lines = list(document.lines.all())
        if not lines:
            raise ValueError(f"peer document {pk} has no lines")
        value = get_next_value(f"{series}-{document.company_id}")
        totals = money.totals(lines)
        document.subtotal, document.tax_total = totals.subtotal, totals.tax
        document.total = totals.total
        document.issue_date = timezone.localdate()
        document.due_date = document.issue_date + timedelta(days=30)
        document.number = f"INV-{value:06d}"
        document.state = "sent"
        document.save()


def _require_peer():
    """Refuse to run without django-sequences' app and table (only SETTINGS install them)."""
    if not apps.is_installed("sequences"):
        raise CommandError(
            f"bench_numbering compares Folio with django-sequences, which these settings do "
            f"not install: run it with --settings={SETTINGS} (django-sequences is the "
            f"\"bench\" extra).")
    from sequences.models import Sequence

    if Sequence._meta.db_table not in connection.introspection.table_names():
        raise CommandError(f"django-sequences' table is missing: run "
                           f"`manage.py migrate --settings={SETTINGS}` first.")


# --- Running workers ------------------------------------------------------------------------

def _machine_cpu_times():
    """(busy, total) CPU time of the whole machine so far, in clock ticks; None off Linux."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(field) for field in stat.readline().split()[1:]]
    except OSError:
        return None
    idle = ticks[3] + ticks[4]  # idle and iowait
    total = sum(ticks[:8])  # guest time is already counted in user and nice
    return total - idle, total


def _run(workers, work, per_worker):
    """
    Run ``work(worker_index, n)`` in ``workers`` processes; return operations per second and
    how busy the machine's CPUs were meanwhile (0..1, None off Linux).
    """
    context = multiprocessing.get_context("fork")
    connections.close_all()  # children open their own
    barrier = context.Barrier(workers + 1)
    failures = context.Queue()

    def child(index):
        try:
            connections.close_all()
            connection.ensure_connection()  # connect before the clock starts
            barrier.wait()
            work(index, per_worker)
        except BaseException as error:  # noqa: BLE001 - reported by the parent
            failures.put(f"worker {index}: {error!r}")
            raise
        finally:
            connections.close_all()

    processes = [context.Process(target=child, args=(i,)) for i in range(workers)]
    for process in processes:
        process.start()
    barrier.wait(timeout=120)
    started, machine = time.perf_counter(), _machine_cpu_times()
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - started
    busy = None
    if machine is not None:
        (busy_before, total_before), (busy_after, total_after) = machine, _machine_cpu_times()
        busy = (busy_after - busy_before) / max(1, total_after - total_before)
    if not failures.empty() or any(p.exitcode for p in processes):
        raise CommandError(failures.get() if not failures.empty() else "a worker failed")
    return workers * per_worker / elapsed, busy


class Command(BaseCommand):
    help = ("Benchmark Folio's send against a django-sequences send on PostgreSQL (use a "
            f"scratch database and --settings={SETTINGS}).")

    def add_arguments(self, parser):
        parser.add_argument("--ops", type=int, default=2400,
                            help="Documents sent per measurement, shared by the workers.")
        parser.add_argument("--workers", default=",".join(map(str, WORKERS)),
                            help="Comma-separated worker counts.")
        parser.add_argument("--client-counter", action="store_true",
                            help="Also measure the send of one company whose pattern carries "
                                 "a per-client counter, against the plain one.")

    def handle(self, *args, ops, workers, client_counter=False, **options):
        self.client_counter = client_counter
        _require_peer()
        if connection.vendor != "postgresql":
            raise CommandError("bench_numbering measures PostgreSQL: set DATABASE_URL.")
        counts = [int(w) for w in workers.split(",")]
        self.series = f"bench-peer-{time.time_ns()}"
        self.companies, self.folio_drafts, self.peer_drafts = [], 0, {}
        self.peer_tables = False
        try:
            self.create_peer_tables()
            table = self.measure(counts, ops)
            self.check_whole()
        finally:
            self.cleanup()
        self.print_table(table, counts)

    # --- Measurements ---------------------------------------------------------------------

    def measure(self, counts, ops):
        table = {}
        for workers in counts:
            per = max(1, ops // workers)
            row = table.setdefault(workers, {})
            row["peer"] = _run(workers, self.peer_work(workers, per), per)
            row["send"] = _run(workers, self.send_work(workers, per, companies=1), per)
            row["send16"] = _run(workers, self.send_work(workers, per, companies=16), per)
            if self.client_counter:
                row["sendcc"] = _run(workers, self.send_work(workers, per, companies=1,
                                                             per_client=True), per)
            self.stdout.write(f"  measured {workers} worker(s)")
            self.stdout.flush()
        return table

    def peer_work(self, workers, per_worker):
        company_id = len(self.peer_drafts) + 1
        count = workers * per_worker
        self.peer_drafts[company_id] = count
        documents = PeerDocument.objects.bulk_create(
            PeerDocument(company_id=company_id, client_id=1, **TOTALS) for _ in range(count))
        PeerLine.objects.bulk_create(PeerLine(document=d, **LINE) for d in documents)
        ids = [d.pk for d in documents]

        def work(index, n):
            for pk in ids[index * per_worker:(index + 1) * per_worker][:n]:
                peer_send(pk, self.series)

        return work

    def send_work(self, workers, per_worker, companies, per_client=False):
        drafts = self.drafts(workers * per_worker, companies, per_client)

        def work(index, n):
            for draft in drafts[index * per_worker:(index + 1) * per_worker][:n]:
                send_document(draft)

        return work

    # --- Data -----------------------------------------------------------------------------

    def create_peer_tables(self):
        existing = set(connection.introspection.table_names())
        with connection.schema_editor() as editor:
            for model in (PeerLine, PeerDocument):  # left by an interrupted run
                if model._meta.db_table in existing:
                    editor.delete_model(model)
            editor.create_model(PeerDocument)
            editor.create_model(PeerLine)
        self.peer_tables = True

    def company(self, label, per_client=False):
        company = Company.objects.create(name=f"Bench {label} {timezone.now():%H%M%S%f}",
                                         **SELLER)
        patterns = {"invoice_pattern": CLIENT_COUNTER_PATTERN,
                    "credit_note_pattern": CLIENT_COUNTER_PATTERN} if per_client else {}
        NumberingSettings.objects.create(company=company, name="Main", is_default=True,
                                         shared_counter=True, **patterns)
        self.companies.append(company)
        return company

    def drafts(self, count, companies, per_client=False):
        """``count`` drafts, interleaving the companies (and, ``per_client``, two clients of
        one company) so that each worker's share spans all of them."""
        if per_client:
            owner = self.company("sendcc", per_client=True)
            owners = [owner] * len(CLIENT_CODES)
            clients = [Client.objects.create(company=owner, name=f"Bench client {code}",
                                             code=code, **BUYER) for code in CLIENT_CODES]
        else:
            owners = [self.company(f"send{companies}") for _ in range(companies)]
            clients = [Client.objects.create(company=c, name="Bench client", **BUYER)
                       for c in owners]
        invoices = Invoice.objects.bulk_create([
            Invoice(company=owners[i % len(owners)], client=clients[i % len(clients)],
                    **TOTALS)
            for i in range(count)
        ])
        InvoiceLine.objects.bulk_create([InvoiceLine(document=invoice, **LINE)
                                         for invoice in invoices])
        self.folio_drafts += count
        return invoices

    # --- Checks and output ----------------------------------------------------------------

    def check_whole(self):
        for company in self.companies:
            if Invoice.objects.filter(company=company, state=DRAFT).exists():
                raise CommandError(f"{company}: a draft was left unsent.")
            values = list(IssuedNumber.objects.filter(company=company).order_by("value")
                          .values_list("value", flat=True))
            if values != list(range(1, len(values) + 1)):
                raise CommandError(f"{company}: the series is not 1..{len(values)}")
            for client_id in Client.objects.filter(company=company).values_list("pk", flat=True):
                mine = list(IssuedNumber.objects.filter(company=company, client_id=client_id)
                            .order_by("client_value").values_list("client_value", flat=True))
                if mine != list(range(1, len(mine) + 1)):
                    raise CommandError(f"{company}: client #{client_id}'s counter is not "
                                       f"1..{len(mine)}")
            findings = list(run_audit(AuditScope(company_id=company.pk)).findings)
            if findings:
                raise CommandError(f"{company}: {findings[0].message}")
        issued = IssuedNumber.objects.filter(company__in=self.companies).count()
        if issued != self.folio_drafts:
            raise CommandError(f"Folio issued {issued} numbers for {self.folio_drafts} drafts.")
        for company_id, count in self.peer_drafts.items():
            sent = list(PeerDocument.objects.filter(company_id=company_id)
                        .values_list("state", "number").order_by("number"))
            expected = [("sent", f"INV-{value:06d}") for value in range(1, count + 1)]
            if sent != expected:
                raise CommandError(f"Peer company {company_id}: its {count} drafts are not "
                                   f"all sent with the numbers 1..{count}.")
        self.stdout.write(self.style.SUCCESS(
            f"Every draft was sent, no gap, no duplicate: {self.folio_drafts} Folio drafts "
            f"in {len(self.companies)} companies (audit clean), "
            f"{sum(self.peer_drafts.values())} peer drafts in {len(self.peer_drafts)} series."))

    def cleanup(self):
        from sequences.models import Sequence

        purge_companies(c.pk for c in self.companies)
        Sequence.objects.filter(name__startswith=f"{self.series}-").delete()
        if self.peer_tables:
            with connection.schema_editor() as editor:
                editor.delete_model(PeerLine)
                editor.delete_model(PeerDocument)

    def print_table(self, table, counts):
        out = self.stdout
        out.write("\nDocuments sent per second (higher is better); in brackets, how busy the "
                  "machine's CPUs were")
        out.write(f"{'':30}" + "".join(f"{f'{w} w':>16}" for w in counts))
        runs = [*RUNS, CLIENT_COUNTER_RUN] if self.client_counter else RUNS
        for key, label in runs:
            cells = []
            for w in counts:
                rate, busy = table[w][key]
                cells.append(f"{rate:,.0f}" + ("" if busy is None else f" ({busy:.0%})"))
            out.write(f"{label:30}" + "".join(f"{cell:>16}" for cell in cells))
        ratios = "".join(f"{table[w]['send'][0] / table[w]['peer'][0]:>16.2f}" for w in counts)
        out.write(f"{'folio send / peer send':30}{ratios}")
        out.write(f"Goal: folio send / peer send >= 1.00 with {GOAL_WORKERS} workers.")
        if self.client_counter:
            ratios = "".join(f"{table[w]['sendcc'][0] / table[w]['send'][0]:>16.2f}"
                             for w in counts)
            out.write(f"{'per-client / plain send':30}{ratios}")
            out.write(f"Goal: per-client / plain send >= {CLIENT_COUNTER_GOAL:.2f}.")
