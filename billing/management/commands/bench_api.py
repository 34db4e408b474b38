"""
``manage.py bench_api --drafts 300 --clients 4 --workers 2``: sends per second through the
API (``POST /api/v1/invoices/{id}/send`` with a bearer token, without and with an
Idempotency-Key) against the same send through the web page (``POST /invoices/{id}/send/``
with a logged-in session and its CSRF token, answered by a redirect that is not followed),
under one gunicorn on PostgreSQL, in the same run. Use a scratch database: the command makes
its own company, user, token and drafts, and removes them afterwards.

The sides take turns in rounds (web, API, API with a key, web…) so that none gets a quieter
machine; each round sends ``--drafts / --rounds`` drafts per side from ``--clients``
threads, one keep-alive HTTP connection each. The ratios printed are to the page's rate; the
goal: 0.8 or more. Afterwards every draft must be issued exactly once and every answer must
have been the expected one (200 with the number; 302 back to the document).
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
SIDES = ("page", "api", "api_key")
LABELS = {"page": "the web page (session, CSRF)", "api": "the API (bearer token)",
          "api_key": "the API, with an Idempotency-Key"}
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

    def send_api(self, pk, token, key):
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if key:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        status, _location, data = self.request(
            "POST", f"/api/v1/invoices/{pk}/send", b"", headers)
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
        company, user, token, ids = self.prepare(len(SIDES) * drafts)
        todo = {side: ids[i * drafts:(i + 1) * drafts] for i, side in enumerate(SIDES)}
        try:
            with gunicorn(workers=workers, timeout=120) as base:
                connections_of = {side: [Http(base) for _ in range(clients)] for side in SIDES}
                for session in connections_of["page"]:
                    session.log_in(user.username)
                send = {"page": lambda s, pk: s.send_page(pk),
                        "api": lambda s, pk: s.send_api(pk, token, key=False),
                        "api_key": lambda s, pk: s.send_api(pk, token, key=True)}
                for side in SIDES:  # warm-up: one send per connection, not timed
                    self.run_side(connections_of[side], todo[side][:clients], send[side])
                done = dict.fromkeys(SIDES, clients)
                seconds = dict.fromkeys(SIDES, 0.0)
                per_round = (drafts - clients) // rounds
                for _round in range(rounds):
                    for side in SIDES:
                        chunk = todo[side][done[side]:done[side] + per_round]
                        seconds[side] += self.run_side(connections_of[side], chunk, send[side])
                        done[side] += len(chunk)
            self.verify(company, sum(done.values()))
            self.stdout.write(f"{clients} clients, {workers} gunicorn workers, PostgreSQL, "
                              f"{rounds} rounds")
            self.stdout.write(f"{'send through':34}{'sends':>7}{'per s':>8}{'ms each':>9}"
                              f"{'/ page':>8}")
            rates = {side: (done[side] - clients) / seconds[side] for side in SIDES}
            for side in SIDES:
                self.stdout.write(f"{LABELS[side]:34}{done[side] - clients:>7}"
                                  f"{rates[side]:>8.1f}{1000 * clients / rates[side]:>9.1f}"
                                  f"{rates[side] / rates['page']:>8.2f}")
            self.stdout.write("goal: the API's send at 0.8 of the page's or more")
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
