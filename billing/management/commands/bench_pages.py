"""
``manage.py bench_pages --count 100000 [--wrk]``: how fast the busiest pages render with N
documents in one company (run it on a scratch database; the data is removed afterwards).

In process, through Django's test client (middleware, session, templates included): the
median and 90th percentile of the invoice list, an invoice's page and the dashboard.
With ``--wrk`` (Debian's wrk), the same app under gunicorn on 127.0.0.1: requests per
second of the invoice list against a trivial logged-in view, alternating over
``--rounds`` rounds of ``--seconds`` each, bounded in time and on loopback only.
"""

import re
import shutil
import statistics
import subprocess
import time
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client as TestClient
from django.urls import reverse
from django.utils import timezone

from billing.loopback import gunicorn
from billing.maintenance import purge_companies
from billing.models import Client, Company, Invoice, InvoiceLine, Membership
from counters.dbguards import guards_lifted

CHUNK = 10_000


class Command(BaseCommand):
    help = "Benchmark page rendering with many documents (use a scratch database)."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=100_000)
        parser.add_argument("--requests", type=int, default=30)
        parser.add_argument("--wrk", action="store_true", help="Also load-test under gunicorn.")
        parser.add_argument("--seconds", type=int, default=5, help="wrk duration per URL.")
        parser.add_argument("--rounds", type=int, default=3, help="wrk rounds (median shown).")

    def handle(self, *args, count, requests, wrk, seconds, rounds, **options):
        if wrk and not shutil.which("wrk"):
            raise CommandError("wrk is not installed (apt-get install wrk).")
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        started = time.perf_counter()
        company, user, sample = self.fill(count)
        self.stdout.write(f"filled {count:,} invoices in {time.perf_counter() - started:.1f} s "
                          f"({connection.vendor})")
        try:
            client = TestClient()
            client.force_login(user)
            pages = [("invoice list", reverse("invoice_list")),
                     ("invoice list, sent", reverse("invoice_list") + "?state=sent"),
                     ("invoice detail", reverse("invoice_detail", args=[sample.pk])),
                     ("dashboard", reverse("home"))]
            self.stdout.write(f"{'page':24}{'median ms':>12}{'p90 ms':>10}")
            for label, url in pages:
                timings = []
                for _ in range(requests + 2):
                    begin = time.perf_counter()
                    response = client.get(url)
                    timings.append((time.perf_counter() - begin) * 1000)
                    if response.status_code != 200:
                        raise CommandError(f"{url} answered {response.status_code}")
                timings = sorted(timings[2:])  # the first two warm caches up
                p90 = timings[int(len(timings) * 0.9) - 1]
                self.stdout.write(f"{label:24}{statistics.median(timings):>12.1f}{p90:>10.1f}")
            if wrk:
                self.load(client, seconds, rounds)
        finally:
            self.remove(company, user)

    def fill(self, count):
        company = Company.objects.create(name=f"Bench pages {timezone.now():%H%M%S}")
        user = get_user_model().objects.create_user(f"bench{time.time_ns()}")
        Membership.objects.create(user=user, company=company)
        clients = Client.objects.bulk_create(
            [Client(company=company, name=f"Client {i}") for i in range(200)])
        today = timezone.localdate()
        for start in range(0, count, CHUNK):
            invoices = []
            for i in range(start, min(start + CHUNK, count)):
                issued = i % 4 != 0
                invoices.append(Invoice(
                    company=company, client=clients[i % len(clients)],
                    state=("paid" if i % 3 == 0 else "sent") if issued else "draft",
                    number=f"B-{i + 1:07d}" if issued else "",
                    sequence_value=i + 1 if issued else None,
                    issue_date=today if issued else None, due_date=today,
                    subtotal=Decimal("100.00"), tax_total=Decimal("20.00"),
                    total=Decimal("120.00"),
                ))
            created = Invoice.objects.bulk_create(invoices)
            with guards_lifted(connection):  # lines of documents created already issued
                InvoiceLine.objects.bulk_create([
                    InvoiceLine(document=invoice, description="Work", quantity=1,
                                unit_price=Decimal("100.00"), tax_rate=Decimal("20"))
                    for invoice in created
                ])
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE billing_invoice")
                cursor.execute("VACUUM ANALYZE billing_invoiceline")
        return company, user, created[-1]

    def load(self, client, seconds, rounds):
        """
        wrk against both pages, alternating, ``rounds`` times: this shared machine's speed
        drifts within a minute, so each round compares the two in the same few seconds and
        the median round is reported.
        """
        with gunicorn(workers=2) as base:
            name = settings.SESSION_COOKIE_NAME
            cookie = f"{name}={client.cookies[name].value}"
            paths = (("trivial logged-in view", reverse("whoami")),
                     ("invoice list", reverse("invoice_list")))
            ratios = []
            for round_number in range(1, rounds + 1):
                rates = {}
                for label, path in paths:
                    output = subprocess.run(
                        ["wrk", "-t2", "-c8", f"-d{seconds}s", "-H", f"Cookie: {cookie}",
                         base + path],
                        capture_output=True, text=True, timeout=seconds + 30).stdout
                    rates[label] = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
                    if errors := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
                        raise CommandError(f"wrk {label}: {errors.group(1)} non-2xx responses")
                ratios.append(rates["invoice list"] / rates["trivial logged-in view"])
                self.stdout.write(
                    f"wrk round {round_number}: trivial logged-in view "
                    f"{rates['trivial logged-in view']:,.0f} req/s, invoice list "
                    f"{rates['invoice list']:,.0f} req/s, ratio {ratios[-1]:.2f}")
            self.stdout.write(f"invoice list / trivial view (median of {rounds} rounds): "
                              f"{statistics.median(ratios):.2f}")

    def remove(self, company, user):
        purge_companies([company.pk])
        user.delete()
        self.stdout.write("benchmark data removed")
