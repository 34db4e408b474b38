"""
``manage.py load_test --clients 32 --seconds 20``: many people sending and crediting at once.

Serves the app with gunicorn (several workers) on 127.0.0.1 against this database (use a
scratch PostgreSQL database), logs in ``--clients`` browsers-without-a-browser, and lets them
send drafts — a quarter of them submitted twice at the same moment by two clients — and
credit some of what they sent, for a fixed time. Then it checks: no 5xx answer, every
duplicate told "already issued", every accepted send issued exactly once, the audit clean.
Exits non-zero when any check fails. Traffic goes to loopback only and stops by itself.
"""

import http.cookiejar
import queue
import random
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from billing.loopback import gunicorn
from billing.maintenance import purge_companies
from billing.models import Client, Company, CreditNote, Invoice, InvoiceLine, Membership
from counters.audit import AuditScope, run_audit
from counters.models import IssuedNumber

PASSWORD = "load-test-passphrase-2026"
ISSUED = re.compile(r"(INV|CN)-\d{4}-\d+ issued on")
ALREADY = "has already been issued"


class Browser:
    """A cookie-keeping HTTP client that speaks Django's CSRF."""

    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, path, data=None):
        body = None
        headers = {}
        if data is not None:
            token = next((c.value for c in self.jar if c.name == "csrftoken"), "")
            body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": token}).encode()
            headers = {"Referer": self.base + path, "X-CSRFToken": token}
        req = urllib.request.Request(self.base + path, data=body, headers=headers)
        try:
            with self.opener.open(req, timeout=60) as response:
                return response.status, response.geturl(), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, path, error.read().decode(errors="replace")

    def log_in(self, username):
        self.request("/accounts/login/")
        status, url, _body = self.request("/accounts/login/",
                                          {"username": username, "password": PASSWORD})
        if status != 200 or "/accounts/login/" in url:
            raise CommandError(f"{username} could not log in ({status})")


class Command(BaseCommand):
    help = "Load-test sending and crediting under gunicorn on loopback (scratch database)."

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, default=32)
        parser.add_argument("--seconds", type=int, default=20)
        parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
        parser.add_argument("--drafts", type=int, default=3000)
        parser.add_argument("--keep", action="store_true", help="Keep the data afterwards.")

    def handle(self, *args, clients, seconds, workers, drafts, keep, **options):
        if connection.vendor != "postgresql":
            raise CommandError("load_test needs PostgreSQL: set DATABASE_URL.")
        company, user, ids = self.prepare(drafts)
        try:
            with gunicorn(workers=workers, timeout=120) as base:
                stats = self.run(base, user.username, ids, clients, seconds)
            self.verify(company, stats)
        finally:
            if not keep:
                purge_companies([company.pk])
                user.delete()

    def prepare(self, count):
        company = Company.objects.create(name=f"Load {timezone.now():%Y%m%d%H%M%S}")
        user = get_user_model().objects.create_user(f"load{time.time_ns()}", password=PASSWORD)
        Membership.objects.create(user=user, company=company)
        client = Client.objects.create(company=company, name="Load client")
        invoices = Invoice.objects.bulk_create([
            Invoice(company=company, client=client, subtotal=Decimal("100.00"),
                    tax_total=Decimal("20.00"), total=Decimal("120.00"))
            for _ in range(count)])
        InvoiceLine.objects.bulk_create([
            InvoiceLine(document=i, description="Work", quantity=1,
                        unit_price=Decimal("100.00"), tax_rate=Decimal("20"))
            for i in invoices])
        return company, user, [i.pk for i in invoices]

    def run(self, base, username, ids, clients, seconds):
        work = queue.Queue()
        rng = random.Random(2026)
        for pk in ids:
            work.put(pk)
            if rng.random() < 0.25:
                work.put(pk)  # the same send, submitted again by whoever takes it next
        stats = {"requests": 0, "5xx": [], "issued": set(), "duplicates": 0, "credits": 0,
                 "unclear": [], "failures": []}
        lock = threading.Lock()
        deadline = []  # set when the last client has logged in
        start = threading.Barrier(
            clients + 1, action=lambda: deadline.append(time.monotonic() + seconds))

        def person(index):
            browser = Browser(base)
            try:
                browser.log_in(username)
            except Exception as error:  # noqa: BLE001 - reported by the main thread
                stats["failures"].append(repr(error))
                start.abort()  # release everyone: the run cannot be fair any more
                return
            try:
                start.wait(timeout=300)
            except threading.BrokenBarrierError:
                return
            chance = random.Random(index)
            while time.monotonic() < deadline[0]:
                try:
                    pk = work.get_nowait()
                except queue.Empty:
                    return
                status, _url, body = browser.request(f"/invoices/{pk}/send/", {})
                outcome = self.record(stats, lock, status, pk, body)
                if outcome == "issued" and chance.random() < 0.3:
                    status, url, body = browser.request(f"/invoices/{pk}/credit/",
                                                        {"what": "open", "reason": "load"})
                    self.record(stats, lock, status, pk, body, expect_issue=False)
                    match = re.search(r"/credit-notes/(\d+)/", url)
                    if match:
                        status, _url, body = browser.request(
                            f"/credit-notes/{match.group(1)}/send/", {})
                        if self.record(stats, lock, status, pk, body) == "issued":
                            with lock:
                                stats["credits"] += 1

        threads = [threading.Thread(target=person, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        try:
            start.wait(timeout=300)
        except threading.BrokenBarrierError:
            for thread in threads:
                thread.join(timeout=60)
            raise CommandError(f"The clients could not start: {stats['failures'][:3]}") \
                from None
        began = time.monotonic()
        for thread in threads:
            thread.join(timeout=seconds + 120)
        stats["elapsed"] = time.monotonic() - began
        return stats

    @staticmethod
    def record(stats, lock, status, pk, body, expect_issue=True):
        with lock:
            stats["requests"] += 1
            if status >= 500:
                stats["5xx"].append((pk, status))
                return "error"
            if not expect_issue:
                return "ok"
            if ISSUED.search(body):
                stats["issued"].add(pk)
                return "issued"
            if ALREADY in body:
                stats["duplicates"] += 1
                return "duplicate"
            stats["unclear"].append((pk, status))
            return "unclear"

    def verify(self, company, stats):
        invoices = Invoice.objects.filter(company=company).exclude(state="draft")
        issued_ids = set(invoices.values_list("pk", flat=True))
        ledger = IssuedNumber.objects.filter(company=company)
        findings = list(run_audit(AuditScope(company_id=company.pk)).findings)
        credit_notes = CreditNote.objects.filter(company=company).exclude(state="draft").count()
        self.stdout.write(
            f"{stats['requests']:,} requests in {stats['elapsed']:.1f} s "
            f"({stats['requests'] / stats['elapsed']:,.0f}/s): {len(stats['issued']):,} "
            f"invoices and {stats['credits']:,} credit notes issued, {stats['duplicates']:,} "
            f"duplicate sends refused, {len(stats['5xx'])} 5xx, "
            f"{len(stats['unclear'])} unclear answers; ledger {ledger.count():,} entries, "
            f"audit {'clean' if not findings else 'FINDINGS'}")
        problems = []
        if stats["5xx"]:
            problems.append(f"5xx answers: {stats['5xx'][:5]}")
        if stats["unclear"]:
            problems.append(f"answers without a clear message: {stats['unclear'][:5]}")
        if stats["issued"] - issued_ids:
            problems.append("a send reported as issued is not issued")
        if ledger.count() != len(issued_ids) + credit_notes:
            problems.append("ledger entries do not match issued documents")
        if findings:
            problems.append(f"audit: {findings[0].message}")
        if not stats["issued"] or not stats["duplicates"]:
            problems.append("the run issued nothing or met no duplicate")
        if problems:
            raise CommandError("; ".join(problems))
        self.stdout.write(self.style.SUCCESS("Load held: nothing lost, nothing issued twice."))
