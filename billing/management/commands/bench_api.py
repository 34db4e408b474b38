"""
``manage.py bench_api --drafts 300 --clients 4 --workers 2``: sends per second through the
API (``POST /api/v1/invoices/{id}/send`` with a bearer token and an Idempotency-Key) against
the same send through the web page (``POST /invoices/{id}/send/`` with a logged-in session
and its CSRF token, answered by a redirect that is not followed), under one gunicorn on
PostgreSQL, in the same run. Use a scratch database: the command makes its own company, user,
token and drafts, and removes them afterwards.

The two sides take turns in rounds (web, then API, then web…) so that neither gets a
quieter machine; each round sends ``--drafts / --rounds`` drafts per side from ``--clients``
threads, one keep-alive HTTP connection each. The ratio printed is the goal's: API / page,
which should reach 0.8. Afterwards every draft must be issued exactly once and every answer
must have been the expected one (200 with the number; 302 back to the document).
"""

import http.client
import json
import queue
import re
import threading
import time
import urllib.parse
import uuid
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from billing.api.tokens import create_token
from billing.loopback import gunicorn
from billing.maintenance import purge_companies
from billing.models import Client, Company, Invoice, InvoiceLine, Membership
from counters.models import IssuedNumber

from ._parties import BUYER, SELLER

PASSWORD = "bench-api-passphrase-2026"
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Http:
    """One HTTP connection to the server, with its cookies (a browser without a browser)."""

    def __init__(self, base):
        netloc = urllib.parse.urlsplit(base).netloc
        self.connection = http.client.HTTPConnection(netloc, timeout=120)
        self.cookies = {}

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        if response.getheader("Connection", "").lower() == "close":
            self.connection.close()  # gunicorn's sync workers answer one request a connection
        return response.status, response.getheader("Location", ""), data

    def log_in(self, username):
        _status, _location, page = self.request("GET", "/accounts/login/")
        form = {"username": username, "password": PASSWORD,
                "csrfmiddlewaretoken": CSRF_INPUT.search(page.decode()).group(1)}
        status, location, _ = self.request(
            "POST", "/accounts/login/", urllib.parse.urlencode(form),
            {"Content-Type": "application/x-www-form-urlencoded",
             "Referer": self.base_referer("/accounts/login/")})
        if status != 302 or "login" in location:
            raise CommandError(f"{username} could not log in ({status}).")

    def base_referer(self, path):
        return f"http://{self.connection.host}:{self.connection.port}{path}"

    def send_page(self, pk):
        token = self.cookies.get("csrftoken", "")
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": token})
        status, location, data = self.request(
            "POST", f"/invoices/{pk}/send/", body,
            {"Content-Type": "application/x-www-form-urlencoded", "X-CSRFToken": token,
             "Referer": self.base_referer(f"/invoices/{pk}/")})
        return status == 302 and location.endswith(f"/invoices/{pk}/"), status

    def send_api(self, pk, token):
        status, _location, data = self.request(
            "POST", f"/api/v1/invoices/{pk}/send", b"",
            {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4()),
             "Content-Type": "application/json"})
        return status == 200 and bool(json.loads(data).get("number")), status


class Command(BaseCommand):
    help = "Benchmark sending through the API against the web page (PostgreSQL, gunicorn)."

    def add_arguments(self, parser):
        parser.add_argument("--drafts", type=int, default=300, help="Per side.")
        parser.add_argument("--clients", type=int, default=4, help="Concurrent clients.")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn workers.")
        parser.add_argument("--rounds", type=int, default=3)

    def handle(self, *args, drafts, clients, workers, rounds, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_api needs PostgreSQL: set DATABASE_URL.")
        company, user, token, ids = self.prepare(2 * drafts)
        page_ids, api_ids = ids[:drafts], ids[drafts:]
        try:
            with gunicorn(workers=workers, timeout=120) as base:
                sessions = [Http(base) for _ in range(clients)]
                for session in sessions:
                    session.log_in(user.username)
                apis = [Http(base) for _ in range(clients)]
                self.run_side(apis, api_ids[:clients], lambda s, pk: s.send_api(pk, token))
                self.run_side(sessions, page_ids[:clients], lambda s, pk: s.send_page(pk))
                totals = {"page": 0.0, "api": 0.0}
                done = {"page": clients, "api": clients}  # the warm-up sends above
                per_round = (drafts - clients) // rounds
                for _round in range(rounds):
                    for side in ("page", "api"):
                        chunk = (page_ids if side == "page" else api_ids)[
                            done[side]:done[side] + per_round]
                        totals[side] += self.run_side(
                            sessions if side == "page" else apis, chunk,
                            (lambda s, pk: s.send_page(pk)) if side == "page"
                            else (lambda s, pk: s.send_api(pk, token)))
                        done[side] += len(chunk)
            self.verify(company, done["page"] + done["api"])
            sent = {side: done[side] - clients for side in done}
            page_rate, api_rate = (sent["page"] / totals["page"], sent["api"] / totals["api"])
            self.stdout.write(f"{clients} clients, {workers} gunicorn workers, PostgreSQL, "
                              f"{rounds} rounds")
            self.stdout.write(f"{'send through':28}{'sends':>8}{'per s':>10}{'ms each':>10}")
            for label, side, rate in (("the web page (session)", "page", page_rate),
                                      ("the API (token + key)", "api", api_rate)):
                self.stdout.write(f"{label:28}{sent[side]:>8}{rate:>10.1f}"
                                  f"{1000 * clients / rate:>10.1f}")
            self.stdout.write(f"API / page: {api_rate / page_rate:.2f} (goal: 0.8 or more)")
        finally:
            purge_companies([company.pk])
            user.delete()

    def prepare(self, count):
        company = Company.objects.create(name=f"Bench API {timezone.now():%H%M%S}", **SELLER)
        user = get_user_model().objects.create_user(f"benchapi{time.time_ns()}",
                                                    password=PASSWORD)
        Membership.objects.create(user=user, company=company, role=Membership.Role.OWNER)
        client = Client.objects.create(company=company, name="Bench client", **BUYER)
        invoices = Invoice.objects.bulk_create([
            Invoice(company=company, client=client, subtotal=Decimal("100.00"),
                    tax_total=Decimal("20.00"), total=Decimal("120.00"))
            for _ in range(count)])
        InvoiceLine.objects.bulk_create([
            InvoiceLine(document=invoice, description="Work", quantity=1,
                        unit_price=Decimal("100.00"), tax_rate=Decimal("20"))
            for invoice in invoices])
        _row, token = create_token(company, "accountant", name="bench", user=user)
        return company, user, token, [invoice.pk for invoice in invoices]

    def run_side(self, sessions, ids, send):
        """Send ``ids`` from one thread per session; the seconds it took."""
        work = queue.Queue()
        for pk in ids:
            work.put(pk)
        failures = []
        barrier = threading.Barrier(len(sessions) + 1)

        def client(session):
            barrier.wait()
            while True:
                try:
                    pk = work.get_nowait()
                except queue.Empty:
                    return
                ok, status = send(session, pk)
                if not ok:
                    failures.append((pk, status))

        threads = [threading.Thread(target=client, args=(s,)) for s in sessions]
        for thread in threads:
            thread.start()
        barrier.wait()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        if failures:
            raise CommandError(f"{len(failures)} sends failed, e.g. {failures[:3]}")
        return elapsed

    def verify(self, company, expected):
        issued = IssuedNumber.objects.filter(company=company).count()
        sent = Invoice.objects.filter(company=company).exclude(state="draft").count()
        if issued != expected or sent != expected:
            raise CommandError(f"{expected} sends answered, but {sent} invoices sent and "
                               f"{issued} numbers issued.")
