"""
``manage.py bench_numbering``: numbering throughput against the database's own limit and a
peer, all in one run, on PostgreSQL, with 1, 4, 8 and 16 worker processes (one connection
each). Run it on a scratch database: it creates benchmark companies and removes them.

1. ceiling: a raw single-row ``UPDATE … SET v = v + 1 … RETURNING v``, committed per call,
   through psycopg directly — the most one hot row can do here;
2. peer: django-sequences' ``get_next_value``, one call per transaction;
3. folio allocate: ``counters.services.allocate_number`` alone, one per transaction;
4. folio send: ``billing.services.send_document`` of prepared drafts on one shared counter,
   and spread over 16 companies (independent counters).

With one worker it also measures the CPU time a peer's allocation and a send take, in the
worker and in its database server process: on a machine whose CPUs are saturated,
CPUs / CPU per operation bounds the rate. And it times the ``send_drafts`` command against
``send_document`` called one draft at a time, in the same process.

Afterwards every series it wrote must be whole (1..N, no duplicate), which it checks.
"""

import io
import multiprocessing
import os
import time
from datetime import date
from decimal import Decimal

import psycopg
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections, transaction
from django.utils import timezone

from billing.loopback import database_url
from billing.maintenance import purge_companies
from billing.models import DRAFT, Client, Company, Invoice, InvoiceLine
from billing.services import send_document
from counters.audit import AuditScope, run_audit
from counters.models import IssuedNumber, NumberingSettings
from counters.services import allocate_number

WORKERS = (1, 4, 8, 16)
RUNS = [("ceiling", "ceiling (raw UPDATE)"), ("peer", "peer (django-sequences)"),
        ("allocate", "folio allocate"), ("send", "folio send, 1 company"),
        ("send16", "folio send, 16 companies")]
TODAY = date.today()
SETTINGS = "billing.settings_bench"


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


def _server_cpu_seconds():
    """CPU time of this process's Django connection's server process, if it runs here."""
    if connection.connection is None:
        return None
    try:
        with open(f"/proc/{connection.connection.info.backend_pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:  # the server is on another machine
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


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


def _run(workers, work, per_worker, cpu=None):
    """
    Run ``work(worker_index, n)`` in ``workers`` processes; return operations per second and
    how busy the machine's CPUs were meanwhile (0..1, None off Linux): at ~1 the run is
    bounded by CPU time, not by waiting for the counter row. With a ``cpu`` list, append
    the CPU seconds per operation of the workers themselves and of their database server
    processes (where the server runs on this machine).
    """
    context = multiprocessing.get_context("fork")
    connections.close_all()  # children open their own
    barrier = context.Barrier(workers + 1)
    failures, spent = context.Queue(), context.Queue()

    def child(index):
        try:
            connections.close_all()
            work(index, 0, warm=True)  # connect and prepare before the clock starts
            barrier.wait()
            own, server = time.process_time(), _server_cpu_seconds()
            work(index, per_worker)
            server = None if server is None else _server_cpu_seconds() - server
            spent.put((time.process_time() - own, server))
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
    if cpu is not None:
        totals = [spent.get(timeout=10) for _ in processes]
        servers = [server for _own, server in totals]
        cpu.append((sum(own for own, _server in totals) / (workers * per_worker),
                    None if None in servers else sum(servers) / (workers * per_worker)))
    return workers * per_worker / elapsed, busy


class Command(BaseCommand):
    help = "Benchmark numbering throughput on PostgreSQL (use a scratch database)."

    def add_arguments(self, parser):
        parser.add_argument("--ops", type=int, default=2400,
                            help="Operations per measurement, shared by the workers.")
        parser.add_argument("--workers", default=",".join(map(str, WORKERS)))

    def handle(self, *args, ops, workers, **options):
        _require_peer()
        if connection.vendor != "postgresql":
            raise CommandError("bench_numbering measures PostgreSQL: set DATABASE_URL.")
        counts = [int(w) for w in workers.split(",")]
        self.companies, self.cpu, self.busy = [], None, {}
        try:
            table, batch = self.measure(counts, ops)
            self.check_whole()
        finally:
            self.cleanup()
        self.print_table(table, counts)
        batch_rate, send_rate = batch
        self.stdout.write(f"{'send_drafts batch, 1 process':28}{batch_rate:>12,.0f}   "
                          f"= {batch_rate / send_rate:.2f} x send_document one by one "
                          f"({send_rate:,.0f}/s), in turns in the same process")
        if self.cpu:
            self.print_cpu()
        if None not in (busy for row in self.busy.values() for busy in row.values()):
            self.print_busy(counts)

    # --- Measurements ---------------------------------------------------------------------

    def measure(self, counts, ops):
        table, batch = {}, None
        for workers in counts:
            per = max(1, ops // workers)
            row, busy = table.setdefault(workers, {}), self.busy.setdefault(workers, {})
            cpu = [] if workers == 1 else None
            row["ceiling"], busy["ceiling"] = _run(workers, self.ceiling_work(), per)
            row["peer"], busy["peer"] = _run(workers, self.peer_work(workers), per, cpu)
            row["allocate"], busy["allocate"] = _run(workers, self.allocate_work(workers), per)
            row["send"], busy["send"] = _run(
                workers, self.send_work(workers, per, companies=1), per, cpu)
            if cpu:
                self.cpu = dict(zip(("peer", "send"), cpu, strict=True))
            row["send16"], busy["send16"] = _run(
                workers, self.send_work(workers, per, companies=16), per)
            if batch is None:
                batch = self.measure_batch(ops)
            self.stdout.write(f"  measured {workers} worker(s)", ending="\n")
            self.stdout.flush()
        return table, batch

    def ceiling_work(self):
        with psycopg.connect(database_url(), autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS bench_ceiling")
            conn.execute("CREATE TABLE bench_ceiling (id int PRIMARY KEY, v bigint NOT NULL)")
            conn.execute("INSERT INTO bench_ceiling VALUES (1, 0)")

        def work(index, n, warm=False):
            if warm:
                work.conn = psycopg.connect(database_url(), autocommit=True)
                return
            for _ in range(n):
                work.conn.execute("UPDATE bench_ceiling SET v = v + 1 WHERE id = 1 "
                                  "RETURNING v").fetchone()
            work.conn.close()

        return work

    def peer_work(self, workers):
        from sequences import get_next_value

        name = f"bench-{workers}-{time.time_ns()}"

        def work(index, n, warm=False):
            if warm:
                connection.ensure_connection()
                return
            for _ in range(n):
                with transaction.atomic():
                    get_next_value(name)

        return work

    def allocate_work(self, workers):
        company = self.company("allocate")
        # Ledger entries need distinct document ids; there are no documents behind them.
        base = 10**12 + workers * 10**9

        def work(index, n, warm=False):
            if warm:
                connection.ensure_connection()
                return
            for i in range(n):
                with transaction.atomic():
                    allocate_number(company_id=company.pk, kind="invoice",
                                    document_id=base + index * 10**6 + i, issue_date=TODAY,
                                    total=Decimal("120.00"), currency="EUR")

        return work

    def send_work(self, workers, per_worker, companies):
        drafts = self.drafts(workers * per_worker, companies)

        def work(index, n, warm=False):
            if warm:
                connection.ensure_connection()
                return
            for draft in drafts[index * per_worker:(index + 1) * per_worker][:n]:
                send_document(draft)

        return work

    def measure_batch(self, ops, turns=8):
        """
        (send_drafts rate, send_document rate), per second, on about ``ops`` drafts of one
        company, in this process: the command and a plain loop of ``send_document`` take
        turns on ``ops / 2 / turns`` drafts each, so that both see the machine in the same
        state (its speed drifts within seconds). The command sends the oldest drafts left,
        the loop the newest.
        """
        share = max(1, ops // 2 // turns)
        drafts = self.drafts(2 * turns * share, companies=1)  # in id order
        company_id, newest_first = drafts[0].company_id, drafts[::-1]
        batch = loop = 0.0
        for turn in range(turns):
            started = time.perf_counter()
            call_command("send_drafts", "--company", str(company_id), "--limit", str(share),
                         "--no-progress", stdout=io.StringIO())
            batch += time.perf_counter() - started
            started = time.perf_counter()
            for draft in newest_first[turn * share:(turn + 1) * share]:
                send_document(draft)
            loop += time.perf_counter() - started
        if Invoice.objects.filter(company_id=company_id, state=DRAFT).exists():
            raise CommandError("send_drafts left drafts unsent: its rate would be wrong.")
        return share * turns / batch, share * turns / loop

    # --- Data -----------------------------------------------------------------------------

    def company(self, label):
        company = Company.objects.create(name=f"Bench {label} {timezone.now():%H%M%S%f}")
        NumberingSettings.objects.create(company=company, shared_counter=True)
        self.companies.append(company)
        return company

    def drafts(self, count, companies):
        owners = [self.company(f"send{companies}") for _ in range(companies)]
        clients = [Client.objects.create(company=c, name="Bench client") for c in owners]
        invoices = Invoice.objects.bulk_create([
            Invoice(company=owners[i % companies], client=clients[i % companies],
                    subtotal=Decimal("100.00"), tax_total=Decimal("20.00"),
                    total=Decimal("120.00"))
            for i in range(count)
        ])
        InvoiceLine.objects.bulk_create([
            InvoiceLine(document=invoice, description="Bench", quantity=1,
                        unit_price=Decimal("100.00"), tax_rate=Decimal("20"))
            for invoice in invoices
        ])
        # Interleave companies so that each worker's share spans all of them.
        return invoices

    # --- Checks and output ----------------------------------------------------------------

    def check_whole(self):
        for company in self.companies:
            values = list(IssuedNumber.objects.filter(company=company).order_by("value")
                          .values_list("value", flat=True))
            if values != list(range(1, len(values) + 1)):
                raise CommandError(f"{company}: the series is not 1..{len(values)}")
            if not company.name.startswith("Bench allocate"):
                findings = list(run_audit(AuditScope(company_id=company.pk)).findings)
                if findings:
                    raise CommandError(f"{company}: {findings[0].message}")
        self.stdout.write(self.style.SUCCESS(
            f"Every series written is whole: {len(self.companies)} companies audited, "
            f"no gap, no duplicate."))

    def cleanup(self):
        purge_companies(c.pk for c in self.companies)
        with psycopg.connect(database_url(), autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS bench_ceiling")

    def print_cpu(self):
        out = self.stdout
        cpus = os.cpu_count()
        out.write(f"\nCPU per operation with 1 worker, ms, and the most operations per second "
                  f"{cpus} CPUs allow at that cost")
        out.write(f"{'':28}{'worker':>12}{'server':>12}{'both':>12}{'at most/s':>12}")
        for key, label in (("peer", "peer (django-sequences)"), ("send", "folio send")):
            own, server = self.cpu[key]
            figures = [f"{own * 1000:>12.3f}"]
            if server is not None:
                both = own + server
                figures += [f"{server * 1000:>12.3f}", f"{both * 1000:>12.3f}",
                            f"{cpus / both:>12,.0f}"]
            out.write(f"{label:28}" + "".join(figures))

    def print_busy(self, counts):
        out = self.stdout
        out.write(f"\nMachine CPU busy during each run, % ({os.cpu_count()} CPUs; near 100 the "
                  f"run is bounded by CPU time, not by waiting for the counter row)")
        out.write(f"{'':28}" + "".join(f"{w:>10} w" for w in counts))
        for key, label in RUNS:
            out.write(f"{label:28}" + "".join(f"{self.busy[w][key] * 100:>12.0f}"
                                              for w in counts))

    def print_table(self, table, counts):
        out = self.stdout
        out.write("\nNumbers issued per second (higher is better)")
        out.write(f"{'':28}" + "".join(f"{w:>10} w" for w in counts))
        for key, label in RUNS:
            out.write(f"{label:28}" + "".join(f"{table[w][key]:>12,.0f}" for w in counts))
        out.write("\nRatios")
        ratios = [("send / peer", "send", "peer"), ("send / ceiling", "send", "ceiling"),
                  ("16 companies / 1 company", "send16", "send"),
                  ("allocate / peer", "allocate", "peer")]
        for label, top, bottom in ratios:
            out.write(f"{label:28}" + "".join(f"{table[w][top] / table[w][bottom]:>12.2f}"
                                              for w in counts))
