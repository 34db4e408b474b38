"""
Faults, on PostgreSQL: a worker killed while it holds the counter lock, connections
terminated in the middle of a stream of sends, the app recovering without a restart.
After each, the series must be whole.
"""

import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import psycopg
import pytest
from django.db import DatabaseError, connection, connections

from billing import services as billing_services
from billing.loopback import database_url, gunicorn
from billing.models import Invoice
from billing.services import send_document
from counters.audit import AuditScope, run_audit
from counters.models import IssuedNumber

from .factories import ClientFactory, InvoiceFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
KILL_ROUNDS = int(os.environ.get("FOLIO_KILL_ROUNDS", "5"))  # more for a soak run

PARKED_SENDER = """
import os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
django.setup()
from django.db import transaction
from billing.loopback import database_url, gunicorn
from billing import services as billing_services
from billing.models import Invoice
from billing.services import send_document

with transaction.atomic():
    sent = send_document(Invoice.objects.get(pk=int(sys.argv[1])))
    print("ALLOCATED", sent.number, flush=True)
    sys.stdin.readline()  # parked inside the transaction, holding the counter row
"""


def admin_connection():
    """A second, plain psycopg connection to the test database (a DBA's psql)."""
    return psycopg.connect(database_url(), autocommit=True)


def assert_whole(company_id):
    values = list(IssuedNumber.objects.filter(company_id=company_id).order_by("value")
                  .values_list("value", flat=True))
    assert values == list(range(1, len(values) + 1))
    assert list(run_audit(AuditScope(company_id=company_id)).findings) == []
    return len(values)


def test_a_worker_killed_while_holding_the_counter_loses_nothing():
    client = ClientFactory()
    env = {**os.environ, "DATABASE_URL": database_url()}
    for round_ in range(1, KILL_ROUNDS + 1):
        doomed = InvoiceFactory(client=client)
        worker = subprocess.Popen(
            [sys.executable, "-c", PARKED_SENDER, str(doomed.pk)], cwd=ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            line = worker.stdout.readline()
            assert line.startswith("ALLOCATED"), line
            taken = line.split()[1]
        finally:
            worker.kill()  # SIGKILL: no rollback from the client, no goodbye to the server
            worker.wait(timeout=30)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '30s'")  # fail, never hang, if it stayed locked
        survivor = send_document(InvoiceFactory(client=client))
        assert survivor.number == taken, f"round {round_}"
        doomed.refresh_from_db()
        assert doomed.is_draft and doomed.number == ""
    assert assert_whole(client.company_id) == KILL_ROUNDS


def test_connections_terminated_mid_send_leave_nothing_half_issued(monkeypatch):
    client = ClientFactory()
    drafts = [InvoiceFactory(client=client) for _ in range(24)]
    lock = billing_services._lock
    calls = {"n": 0}

    def lock_then_lose_the_connection(*args, **kwargs):
        locked = lock(*args, **kwargs)
        calls["n"] += 1
        # Every fourth send: the server drops us while the document is locked, before the
        # allocation.
        if calls["n"] % 4 == 0:
            with admin_connection() as admin:
                admin.execute("SELECT pg_terminate_backend(%s)",
                              [connection.connection.info.backend_pid])
        return locked

    monkeypatch.setattr(billing_services, "_lock", lock_then_lose_the_connection)
    outcomes = {}

    def stream():
        try:
            for draft in drafts:
                for _attempt in range(3):
                    try:
                        outcomes[draft.pk] = send_document(draft).number
                        break
                    except DatabaseError as error:
                        outcomes.setdefault("errors", []).append(type(error).__name__)
                        connection.close()  # what Django does at the next request
        finally:
            connections.close_all()

    thread = threading.Thread(target=stream)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive()
    errors = outcomes.pop("errors", [])
    assert len(errors) >= 5, "the connection was never lost"
    assert set(errors) <= {"OperationalError", "InterfaceError"}
    assert sorted(outcomes) == sorted(d.pk for d in drafts)  # every draft issued in the end
    issued = dict(Invoice.objects.filter(pk__in=outcomes).values_list("pk", "number"))
    assert issued == outcomes  # exactly what each successful send reported
    assert assert_whole(client.company_id) == len(drafts)


def test_the_app_recovers_from_lost_connections_without_a_restart():
    connection.ensure_connection()
    own = connection.connection.info.backend_pid
    with gunicorn(workers=1) as base:
        url = base + "/health/"
        assert urllib.request.urlopen(url, timeout=30).status == 200
        with admin_connection() as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND pid <> %s", [own]).fetchone()[0]
        assert killed >= 1  # the server's persistent connection was among them
        for _ in range(3):
            response = urllib.request.urlopen(url, timeout=30)
            assert (response.status, response.read()) == (200, b"ok")
