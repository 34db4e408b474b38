"""
``manage.py bench_audit --count 1000000``: fill one series with N issued invoices (bulk SQL,
with a valid ledger hash chain), then time ``manage.py audit_gaps`` on it in a child process
and report its wall time and peak memory. Run it on a scratch database: by default the
benchmark company is removed afterwards (``--keep`` leaves it).
"""

import io
import re
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.utils import timezone

from billing import snapshot
from billing.maintenance import purge_companies
from billing.models import Client, Company, Invoice
from counters.chain import GENESIS, ledger_key, record_hash
from counters.models import EventChain, IssuedNumber, NumberingSettings, Sequence, StateEvent

from ._parties import BUYER, SELLER

CHUNK = 20_000


class Command(BaseCommand):
    help = "Benchmark the gap audit on a series of N issued numbers (use a scratch database)."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=100_000)
        parser.add_argument("--keep", action="store_true", help="Keep the benchmark data.")

    def handle(self, *args, count, keep, **options):
        started = time.perf_counter()
        company = self.fill(count)
        filled = time.perf_counter() - started
        hashes = "HMAC-SHA256, ledger key set" if ledger_key() else "SHA-256, no ledger key"
        self.stdout.write(f"filled {count:,} issued invoices in {filled:.1f} s "
                          f"({connection.vendor}, {hashes})")
        try:
            for run in ("first", "second"):
                seconds, peak_kib, status = self.time_audit(company)
                self.stdout.write(
                    f"audit_gaps on {count:,} numbers ({run} run): {seconds:.2f} s wall, "
                    f"peak memory {peak_kib / 1024:.0f} MiB, exit status {status} "
                    f"({'clean' if status == 0 else 'FINDINGS'})"
                )
        finally:
            if not keep:
                self.remove(company)

    def fill(self, count):
        with transaction.atomic():
            company = Company.objects.create(name=f"Benchmark {timezone.now():%Y%m%d%H%M%S}",
                                             **SELLER)
            client = Client.objects.create(company=company, name="Benchmark client", **BUYER)
            NumberingSettings.objects.create(company=company, name="Main", is_default=True,
                                             padding=7)
            first_id = (Invoice.objects.order_by("-id").values_list("id", flat=True).first()
                        or 0) + 1
            now = timezone.now()
            documents, ledger, events = [], [], []
            previous = event_previous = GENESIS
            total = Decimal("120.00")
            # Every invoice says the same; its snapshot and digest are computed once.
            content = snapshot.dumps({"bench": True, "seller": company.name,
                                      "buyer": client.name, "total": str(total)})
            content_digest = snapshot.digest(content)
            for offset in range(count):
                value, doc_id = offset + 1, first_id + offset
                day = date(2026, 1, 1) + timedelta(days=offset * 365 // count)
                number = f"INV-2026-{value:07d}"
                entry = SimpleNamespace(
                    company_id=company.pk, series="invoice", period="2026", value=value,
                    number=number, kind="invoice", document_id=doc_id, issue_date=day,
                    total=total, currency="EUR", previous_hash=previous,
                    snapshot_digest=content_digest, client_id=None, client_value=None)
                previous = record_hash(entry, IssuedNumber)
                event = SimpleNamespace(
                    company_id=company.pk, seq=value, kind="invoice", document_id=doc_id,
                    from_state="draft", to_state="sent", actor_id=None, at=now, reason="",
                    previous_hash=event_previous)
                event_previous = record_hash(event, StateEvent)
                documents.append(Invoice(
                    id=doc_id, company=company, client=client, state="sent", number=number,
                    sequence_value=value, issue_date=day, subtotal=Decimal("100.00"),
                    tax_total=Decimal("20.00"), total=total, snapshot=content))
                ledger.append((*vars(entry).values(), previous, now))
                events.append((*vars(event).values(), event_previous))
                if len(documents) >= CHUNK or offset == count - 1:
                    # Through the ORM, so that every column gets its default.
                    Invoice.objects.bulk_create(documents)
                    self.write(IssuedNumber, ledger, [*vars(entry), "entry_hash", "issued_at"])
                    self.write(StateEvent, events, [*vars(event), "event_hash"])
                    documents, ledger, events = [], [], []
            EventChain.objects.create(company=company, last=count, last_hash=event_previous)
            Sequence.objects.create(company=company, series="invoice", period="2026",
                                    last=count, last_hash=previous)
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT setval(pg_get_serial_sequence('billing_invoice', "
                                   "'id'), (SELECT MAX(id) FROM billing_invoice))")
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            # What autovacuum would have done to a ledger that grew over months.
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE billing_invoice")
                cursor.execute("VACUUM ANALYZE counters_issuednumber")
                cursor.execute("VACUUM ANALYZE counters_stateevent")
        return company

    def write(self, model, rows, columns):
        """``rows`` into ``model``'s table, each value as its field prepares it for the
        database (SQLite stores a datetime as Django writes it, which its hashes read)."""
        table = model._meta.db_table
        fields = {field.attname: field for field in model._meta.concrete_fields}
        prepare = [fields[column].get_db_prep_save for column in columns]
        rows = [[to_db(value, connection) for to_db, value in zip(prepare, row, strict=True)]
                for row in rows]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                buffer = io.StringIO()
                for row in rows:
                    buffer.write("\t".join(r"\N" if v is None else _copy_text(v)
                                           for v in row) + "\n")
                with cursor.cursor.copy(
                        f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    copy.write(buffer.getvalue())
            else:
                marks = ", ".join(["%s"] * len(columns))
                cursor.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def time_audit(self, company, env=None):
        """(wall seconds, peak memory in KiB, exit status) of ``audit_gaps`` in a child (with
        ``env``, its environment)."""
        arguments = ["audit_gaps", "--company", str(company.pk), "--verbosity", "0"]
        command = [sys.executable, "-c", _REPORTING_PEAK, str(settings.BASE_DIR / "manage.py"),
                   *arguments]
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - started
        peak = re.search(r"^peak_kib=(\d+)$", result.stderr, re.MULTILINE)
        if result.returncode:
            self.stderr.write(result.stdout[-2000:] + result.stderr[-2000:])
        return seconds, int(peak.group(1)) if peak else 0, result.returncode

    def remove(self, company):
        purge_companies([company.pk])
        self.stdout.write("benchmark data removed")


# The child reports its own peak (VmHWM, from its exec on). A child's ru_maxrss would not do:
# it counts the memory of this process, which the child shares until it execs.
_REPORTING_PEAK = """
import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    try:  # Linux
        with open("/proc/self/status") as status:
            peak = [line.split()[1] for line in status if line.startswith("VmHWM:")][0]
        print(f"peak_kib={peak}", file=sys.stderr)
    except OSError:
        pass
"""


def _copy_text(value):
    """``value`` in PostgreSQL's COPY text format."""
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
