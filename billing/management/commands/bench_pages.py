"""
``manage.py bench_pages --count 100000``: how fast the busiest pages render with N documents
in one company (run it on a scratch database; the data is removed afterwards).

In process, through Django's test client (middleware, session, templates included): the
queries, median and 90th percentile of the invoice list, the list filtered by state, an
invoice's page and the dashboard.
"""

import statistics
import time
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client as TestClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.maintenance import purge_companies
from billing.models import Client, Company, Invoice, InvoiceLine, Membership
from counters.dbguards import guards_lifted

from ._parties import BUYER, SELLER

CHUNK = 10_000


class Command(BaseCommand):
    help = "Benchmark page rendering with many documents (use a scratch database)."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=100_000)
        parser.add_argument("--requests", type=int, default=30)

    def handle(self, *args, count, requests, **options):
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
            self.stdout.write(f"{'page':24}{'queries':>8}{'median ms':>12}{'p90 ms':>10}")
            for label, url in pages:
                with CaptureQueriesContext(connection) as queries:  # also warms up
                    self.get(client, url)
                query_count = len(queries.captured_queries)
                timings = sorted(self.get(client, url) for _ in range(requests))
                p90 = timings[int(len(timings) * 0.9) - 1]
                self.stdout.write(f"{label:24}{query_count:>8}"
                                  f"{statistics.median(timings):>12.1f}{p90:>10.1f}")
        finally:
            self.remove(company, user)

    def get(self, client, url):
        """Milliseconds to GET ``url``, which must answer 200."""
        begin = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - begin) * 1000
        if response.status_code != 200:
            raise CommandError(f"{url} answered {response.status_code}")
        return elapsed

    def fill(self, count):
        company = Company.objects.create(name=f"Bench pages {timezone.now():%H%M%S}", **SELLER)
        user = get_user_model().objects.create_user(f"bench{time.time_ns()}")
        Membership.objects.create(user=user, company=company)
        clients = Client.objects.bulk_create(
            [Client(company=company, name=f"Client {i}", **BUYER) for i in range(200)])
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

    def remove(self, company, user):
        purge_companies([company.pk])
        user.delete()
        self.stdout.write("benchmark data removed")
