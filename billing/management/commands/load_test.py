"""
``manage.py load_test --clients 32 --seconds 20``: many people sending and crediting at once.

Serves the app with gunicorn (several workers) on 127.0.0.1 against this database (use a
scratch PostgreSQL database), logs in ``--clients`` browsers-without-a-browser, and lets them
send drafts — a quarter of them submitted twice at the same moment by two clients — and
credit some of what they sent, for a fixed time. Then it checks: no 5xx answer, every
duplicate told "already issued", every accepted send issued exactly once, the audit clean.
Exits non-zero when any check fails. Traffic goes to loopback only and stops by itself.

With ``--faults``, the server's database connections are terminated every second and one
gunicorn worker is killed (SIGKILL) halfway through. Then the only 5xx allowed is the 503
page that says to try again; a request that got no answer (its worker was killed) is
counted, not failed; and every outcome a page reported must match the database: a send
reported issued is issued with the number it gave, and a draft reported "nothing was
issued", by every answer it got, is still a draft.
"""

import http.client
import http.cookiejar
import os
import queue
import random
import re
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal

import psycopg
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from billing.loopback import database_url, gunicorn
from billing.maintenance import purge_companies
from billing.models import Client, Company, CreditNote, Invoice, InvoiceLine, Membership
from counters.audit import AuditScope, run_audit
from counters.models import IssuedNumber

from ._parties import BUYER, SELLER

PASSWORD = "load-test-passphrase-2026"
ISSUED = re.compile(r"((?:INV|CN)-\d{4}-\d+) issued on|Issued as ((?:INV|CN)-\d{4}-\d+)")
ALREADY = "has already been issued"
NOT_ISSUED = "nothing was issued"
CANNOT_TELL = "cannot tell yet"
TRY_AGAIN = "The database did not answer: please try again"


class Browser:
    """A cookie-keeping HTTP client that speaks Django's CSRF."""

    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        # After a page that did not arrive, the next one may show that page's messages too.
        self.messages_may_be_stale = False
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
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError):
            return 0, path, ""  # no answer: the worker serving it was killed

    def answer(self, path, data=None):
        """``request``, and whether the page's messages may include an earlier page's."""
        status, url, body = self.request(path, data)
        stale, self.messages_may_be_stale = self.messages_may_be_stale, status in (0, 503)
        return status, url, body, stale

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
        parser.add_argument("--faults", action="store_true",
                            help="Terminate the server's database connections every second "
                                 "and kill one worker halfway.")

    def handle(self, *args, clients, seconds, workers, drafts, keep, faults, **options):
        if connection.vendor != "postgresql":
            raise CommandError("load_test needs PostgreSQL: set DATABASE_URL.")
        company, user, ids = self.prepare(drafts)
        try:
            with gunicorn(workers=workers, timeout=120) as base:
                stats = self.run(base, user.username, ids, clients, seconds, faults)
            self.verify(company, stats)
        finally:
            if not keep:
                purge_companies([company.pk])
                user.delete()

    def prepare(self, count):
        company = Company.objects.create(name=f"Load {timezone.now():%Y%m%d%H%M%S}", **SELLER)
        user = get_user_model().objects.create_user(f"load{time.time_ns()}", password=PASSWORD)
        Membership.objects.create(user=user, company=company)
        client = Client.objects.create(company=company, name="Load client", **BUYER)
        invoices = Invoice.objects.bulk_create([
            Invoice(company=company, client=client, subtotal=Decimal("100.00"),
                    tax_total=Decimal("20.00"), total=Decimal("120.00"))
            for _ in range(count)])
        InvoiceLine.objects.bulk_create([
            InvoiceLine(document=i, description="Work", quantity=1,
                        unit_price=Decimal("100.00"), tax_rate=Decimal("20"))
            for i in invoices])
        return company, user, [i.pk for i in invoices]

    def inject_faults(self, stop, seconds, own):
        """
        Every second, end the server's database connections (not ``own``, this command's);
        halfway, kill a worker.
        """
        killed = False
        started = time.monotonic()
        with psycopg.connect(database_url(), autocommit=True) as admin:
            while not stop.wait(1):
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND backend_type = 'client backend' "
                    "AND pid NOT IN (pg_backend_pid(), %s)", [own])
                if not killed and time.monotonic() - started > seconds / 2:
                    killed = self.kill_a_worker()

    @staticmethod
    def kill_a_worker():
        """SIGKILL one worker of the gunicorn this process started (the master restarts it)."""
        def parent(pid):
            with open(f"/proc/{pid}/stat") as stat:
                return int(stat.read().rsplit(")", 1)[1].split()[1])

        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
        alive = []
        for pid in pids:
            try:
                alive.append((pid, parent(pid)))
            except (OSError, ValueError, IndexError):
                continue
        masters = {pid for pid, ppid in alive if ppid == os.getpid()}
        workers = [pid for pid, ppid in alive if ppid in masters]
        if not workers:
            return False
        os.kill(workers[0], signal.SIGKILL)
        return True

    def run(self, base, username, ids, clients, seconds, faults=False):
        work = queue.Queue()
        rng = random.Random(2026)
        for pk in ids:
            work.put(pk)
            if rng.random() < 0.25:
                work.put(pk)  # the same send, submitted again by whoever takes it next
        stats = {"requests": 0, "5xx": [], "issued": {}, "duplicates": 0, "credits": 0,
                 "unclear": [], "failures": [], "unavailable": 0, "no_answer": 0,
                 "not_issued": set(), "unknown": set()}
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
                status, _url, body, stale = browser.answer(f"/invoices/{pk}/send/", {})
                outcome = self.record(stats, lock, status, ("invoice", pk), body, stale)
                if outcome == "issued" and chance.random() < 0.3:
                    status, url, body, stale = browser.answer(
                        f"/invoices/{pk}/credit/", {"what": "open", "reason": "load"})
                    self.record(stats, lock, status, ("invoice", pk), body, stale,
                                expect_issue=False)
                    match = re.search(r"/credit-notes/(\d+)/", url)
                    if match:
                        status, _url, body, stale = browser.answer(
                            f"/credit-notes/{match.group(1)}/send/", {})
                        key = ("credit_note", int(match.group(1)))
                        if self.record(stats, lock, status, key, body, stale) == "issued":
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
        # The faults start with the run, once every client has logged in.
        stop = threading.Event()
        connection.ensure_connection()
        injector = threading.Thread(target=self.inject_faults, args=(
            stop, seconds, connection.connection.info.backend_pid))
        if faults:
            injector.start()
        for thread in threads:
            thread.join(timeout=seconds + 120)
        stop.set()
        if faults:
            injector.join(timeout=30)
        stats["elapsed"] = time.monotonic() - began
        stats["faults"] = faults
        return stats

    @staticmethod
    def record(stats, lock, status, pk, body, stale=False, expect_issue=True):
        with lock:
            stats["requests"] += 1
            if status == 0:
                stats["no_answer"] += 1
                stats["unknown"].add(pk)
                return "no answer"
            if status == 503 and TRY_AGAIN in body:
                stats["unavailable"] += 1
                stats["unknown"].add(pk)
                return "unavailable"
            if status >= 500:
                stats["5xx"].append((pk, status))
                return "error"
            if not expect_issue:
                return "ok"
            if stale:  # an earlier page's messages may show here: no claim can be read
                stats["unknown"].add(pk)
                return "unknown"
            if match := ISSUED.search(body):
                stats["issued"].setdefault(pk, set()).add(match.group(1) or match.group(2))
                return "issued"
            if ALREADY in body:
                stats["duplicates"] += 1
                return "duplicate"
            if NOT_ISSUED in body:
                stats["not_issued"].add(pk)
                return "not issued"
            if CANNOT_TELL in body:
                stats["unknown"].add(pk)
                return "unknown"
            found = re.search(r'class="messages?[^"]*"[^>]*>(.{0,300})', body, re.S)
            stats["unclear"].append((pk, status, found.group(1) if found else body[:200]))
            return "unclear"

    def verify(self, company, stats):
        invoices = Invoice.objects.filter(company=company).exclude(state="draft")
        issued_ids = set(invoices.values_list("pk", flat=True))
        numbers = {("invoice", pk): number for pk, number in invoices.values_list("pk", "number")}
        numbers.update({("credit_note", pk): number for pk, number in CreditNote.objects.filter(
            company=company).exclude(state="draft").values_list("pk", "number")})
        ledger = IssuedNumber.objects.filter(company=company)
        findings = list(run_audit(AuditScope(company_id=company.pk)).findings)
        credit_notes = CreditNote.objects.filter(company=company).exclude(state="draft").count()
        self.stdout.write(
            f"{stats['requests']:,} requests in {stats['elapsed']:.1f} s "
            f"({stats['requests'] / stats['elapsed']:,.0f}/s): "
            f"{sum(kind == 'invoice' for kind, _pk in stats['issued']):,} invoices and "
            f"{stats['credits']:,} credit notes issued, {stats['duplicates']:,} "
            f"duplicate sends refused, {len(stats['5xx'])} 5xx, "
            f"{len(stats['unclear'])} unclear answers; ledger {ledger.count():,} entries, "
            f"audit {'clean' if not findings else 'FINDINGS'}")
        if stats["faults"]:
            self.stdout.write(
                f"Under faults: {stats['unavailable']:,} answered 503 'try again', "
                f"{stats['no_answer']:,} got no answer (a killed worker), "
                f"{len(stats['not_issued']):,} sends reported 'nothing was issued'")
        problems = []
        if stats["5xx"]:
            problems.append(f"5xx answers: {stats['5xx'][:5]}")
        if stats["unclear"]:
            problems.append(f"answers without a clear message: {stats['unclear'][:5]}")
        wrong = {pk: said for pk, said in stats["issued"].items() if said != {numbers.get(pk)}}
        if wrong:
            problems.append(f"a send reported as issued is not issued as reported: "
                            f"{list(wrong.items())[:3]}")
        # A draft that every answer called not issued must still be a draft (any answer lost
        # or uncertain, or another client's send of the same draft, may have issued it).
        said_not = {pk for pk in stats["not_issued"] - stats["unknown"]
                    if pk not in stats["issued"]}
        if said_not & set(numbers):
            problems.append(f"sends reported 'nothing was issued' were issued: "
                            f"{sorted(said_not & set(numbers))[:5]}")
        if ledger.count() != len(issued_ids) + credit_notes:
            problems.append("ledger entries do not match issued documents")
        if findings:
            problems.append(f"audit: {findings[0].message}")
        if not stats["issued"] or not stats["duplicates"]:
            problems.append("the run issued nothing or met no duplicate")
        if problems:
            raise CommandError("; ".join(problems))
        self.stdout.write(self.style.SUCCESS("Load held: nothing lost, nothing issued twice."))
