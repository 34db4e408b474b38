"""
``manage.py bench_einvoice``: how fast Folio writes e-invoices, on one core, in process.

Documents are built in memory (no database): ``--count`` contents of ``--lines`` lines each,
as an issued snapshot says them. Reports UBL and CII documents per second (median of
``--rounds`` rounds), and the median time of one single-page PDF, plain and as Factur-X
(PDF/A-3b with its CII embedded and checked against the Factur-X schema).
"""

import statistics
import time
from datetime import date
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.utils import timezone

from billing import snapshot
from billing.einvoice.cii import cii
from billing.einvoice.facturx import facturx_pdf
from billing.einvoice.ubl import ubl
from billing.models import Client, Company, Invoice, InvoiceLine
from billing.pdf import render_pdf

from ._parties import BUYER, SELLER

RATES = [Decimal("20"), Decimal("10"), Decimal("5.5")]


class Command(BaseCommand):
    help = "Benchmark UBL, CII and Factur-X export (in memory, one core)."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=1000)
        parser.add_argument("--lines", type=int, default=5)
        parser.add_argument("--rounds", type=int, default=5)
        parser.add_argument("--pdfs", type=int, default=20)

    def handle(self, *args, count, lines, rounds, pdfs, **options):
        company = Company(name="Bench SARL", email="bench@example.com", **SELLER)
        client = Client(company=company, name="Client SA", email="client@example.com", **BUYER)
        documents = []
        for index in range(count):
            invoice = Invoice(company=company, client=client, state="sent",
                              number=f"INV-{index:06d}", issue_date=timezone.localdate(),
                              due_date=date.today())
            items = [InvoiceLine(description=f"Item {n}", quantity=Decimal("1.5") + n,
                                 unit_price=Decimal("99.99") + index % 7,
                                 tax_rate=RATES[n % len(RATES)]) for n in range(lines)]
            documents.append((invoice, snapshot.read(snapshot.build(invoice, items))))
        self.stdout.write(f"{count} documents of {lines} lines each, {rounds} rounds")
        for name, write in (("UBL", ubl), ("CII", cii)):
            rates = []
            for _ in range(rounds):
                started = time.perf_counter()
                for invoice, content in documents:
                    write(invoice.number, content)
                rates.append(count / (time.perf_counter() - started))
            self.stdout.write(f"{name}: {statistics.median(rates):,.0f} documents/s "
                              f"(min {min(rates):,.0f}, max {max(rates):,.0f})")
        invoice, content = documents[0]
        render_pdf(invoice, content)  # loads WeasyPrint and its fonts once
        plain, factur_x = [], []
        for _ in range(pdfs):
            started = time.perf_counter()
            render_pdf(invoice, content)
            plain.append(time.perf_counter() - started)
            started = time.perf_counter()
            facturx_pdf(invoice.number, content, render_pdf(invoice, content,
                                                            variant="pdf/a-3b"))
            factur_x.append(time.perf_counter() - started)
        for name, times in (("plain PDF", plain), ("Factur-X PDF", factur_x)):
            self.stdout.write(f"{name}: median {statistics.median(times) * 1000:.0f} ms, "
                              f"90th percentile "
                              f"{statistics.quantiles(times, n=10)[-1] * 1000:.0f} ms")
