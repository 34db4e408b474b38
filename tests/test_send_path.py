"""
What one send costs the database, on PostgreSQL: the statements it needs and no others, in
as few round trips as they allow, prepared once per connection, with COMMIT travelling with
the allocation when the send owns its transaction, and nothing committed when it fails.
Throughput itself is measured by ``manage.py bench_numbering``, not here.
"""

from contextlib import contextmanager
from unittest.mock import patch

import psycopg
import pytest
from django.db import IntegrityError, OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext

from billing import models as billing_models
from billing.loopback import database_url
from billing.models import DRAFT, Client, Invoice
from billing.services import NotADraft, send_document
from counters.models import IssuedNumber, NumberingSettings, Sequence
from counters.services import (
    NumberingChanged,
    TransactionRequired,
    allocate_number,
)

from .factories import ClientFactory, InvoiceFactory, configure_numbering
from .locking import held_in_another_transaction, lock_timeout

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_a_send_runs_three_statements_lock_lines_and_allocation():
    draft = InvoiceFactory()
    send_document(InvoiceFactory(client=draft.client))  # a company's first send stores its settings
    with CaptureQueriesContext(connection) as context:
        issued = send_document(draft)
    # The test's own transaction makes send_document's atomic block a savepoint: not counted.
    statements = [query["sql"] for query in context.captured_queries
                  if "SAVEPOINT" not in query["sql"]]
    assert len(statements) == 3, statements
    assert "FOR UPDATE OF d FOR KEY SHARE OF n" in statements[0]  # the settings: n
    assert "document_id" in statements[1] and "ORDER BY" in statements[1]
    assert statements[2].lstrip().startswith("WITH layout AS")
    assert issued.number.endswith("-0002")


@contextmanager
def recorded_pipelines():
    """Record each psycopg pipeline opened on the connection, with the statements sent in it."""
    connection.ensure_connection()
    raw, recorded = connection.connection, []
    with raw.cursor() as probe:
        cursor_class = type(probe)
    original_pipeline, original_execute = type(raw).pipeline, cursor_class.execute

    def pipeline(self, *args, **kwargs):
        recorded.append([])
        return original_pipeline(self, *args, **kwargs)

    def execute(self, query, *args, **kwargs):
        if self.connection._pipeline is not None:
            text = query.decode() if isinstance(query, bytes) else str(query)
            recorded[-1].append(" ".join(text.split()[:2]))
        return original_execute(self, query, *args, **kwargs)

    with (patch.object(type(raw), "pipeline", pipeline),
          patch.object(cursor_class, "execute", execute)):
        yield recorded


def test_the_lock_and_the_lines_share_one_round_trip():
    draft = InvoiceFactory()
    NumberingSettings.for_company(draft.company_id)  # stored before a company's first send
    with recorded_pipelines() as recorded:
        send_document(draft)
    # Inside the test's transaction the allocation runs alone, after the pipeline.
    assert recorded == [["SELECT d.\"id\",", "SELECT l.\"id\","]]
    assert IssuedNumber.objects.get().document_id == draft.pk


@pytest.mark.django_db(transaction=True)
def test_a_send_that_owns_its_transaction_commits_in_the_allocations_round_trip(monkeypatch):
    first = InvoiceFactory()
    second = InvoiceFactory(client=first.client)
    NumberingSettings.for_company(first.company_id)
    seen_by_others = []

    def allocate_then_look_from_another_connection(**kwargs):
        entry = allocate_number(**kwargs)
        with psycopg.connect(database_url(), autocommit=True) as other:
            seen_by_others.append(other.execute(
                "SELECT number FROM counters_issuednumber WHERE id = %s", [entry.pk]
            ).fetchone())
        return entry

    monkeypatch.setattr(billing_models, "allocate_number",
                        allocate_then_look_from_another_connection)
    with recorded_pipelines() as recorded:
        number = send_document(first).number
    # Two round trips: BEGIN + lock (with the settings) + lines, then allocation + COMMIT.
    # (psycopg would send its own BEGIN, and wait for the reply, before the first pipeline.)
    assert recorded == [["BEGIN", "SELECT d.\"id\",", "SELECT l.\"id\","],
                        ["WITH layout", "COMMIT"]]
    assert seen_by_others == [(number,)]  # committed before send_document's block ended

    with transaction.atomic():  # the caller owns the transaction: it commits, not the send
        send_document(second)
    assert seen_by_others[1] is None
    assert Invoice.objects.get(pk=second.pk).number.endswith("-0002")


@pytest.mark.django_db(transaction=True)
def test_a_configured_isolation_level_is_left_to_psycopgs_own_begin(monkeypatch):
    draft = InvoiceFactory()
    NumberingSettings.for_company(draft.company_id)
    connection.ensure_connection()
    raw = connection.connection
    raw.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
    seen = []
    original = billing_models.allocate_number

    def allocate_and_look(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SHOW transaction_isolation")
            seen.append(cursor.fetchone()[0])
        return original(**kwargs)

    monkeypatch.setattr(billing_models, "allocate_number", allocate_and_look)
    try:
        with recorded_pipelines() as recorded:
            send_document(draft)
    finally:
        raw.isolation_level = None
    assert recorded[0][0].startswith("SELECT")  # no BEGIN of ours: psycopg sent its own
    assert seen == ["serializable"]


@pytest.mark.django_db(transaction=True)
def test_a_send_refused_after_its_begin_leaves_the_connection_as_it_found_it():
    issued = send_document(InvoiceFactory())
    raw = connection.connection
    with pytest.raises(NotADraft):
        send_document(issued)  # refused after BEGIN and the lock, in its own transaction
    assert raw.autocommit and connection.get_autocommit() and not connection.in_atomic_block
    assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    # The next atomic block is a transaction again: what it wrote is rolled back.
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        ClientFactory(name="Rolled back")
        assert not raw.autocommit
        1 / 0  # noqa: B018
    assert not Client.objects.filter(name="Rolled back").exists()
    assert Invoice.objects.get(pk=issued.pk).number == issued.number


@pytest.mark.django_db(transaction=True)
def test_an_allocation_that_fails_with_its_commit_in_flight_commits_nothing():
    draft = InvoiceFactory()
    later = InvoiceFactory(client=draft.client)
    send_document(InvoiceFactory(client=draft.client))
    # A ledger entry already claims the draft: the allocating statement will break the
    # one-entry-per-document constraint after it has incremented the counter.
    IssuedNumber.objects.create(
        company=draft.company, series="imported", period="", value=1, number="OLD-1",
        kind="invoice", document_id=draft.pk, issue_date=draft.created_at.date(),
        total=0, currency="EUR", previous_hash="", entry_hash="0" * 64)
    with pytest.raises(IntegrityError, match="counters_document_once"):
        send_document(draft)
    assert Invoice.objects.get(pk=draft.pk).state == DRAFT
    assert Sequence.objects.get(company=draft.company).last == 1  # the increment rolled back
    assert not connection.in_atomic_block
    assert send_document(later).number.endswith("-0002")  # same connection, no gap


@pytest.mark.django_db(transaction=True)
def test_stale_numbering_settings_number_nothing():
    draft = InvoiceFactory()
    stale = NumberingSettings.for_company(draft.company_id)
    configure_numbering(draft.company, invoice_pattern="NEW-{YYYY}-{counter}")
    today = draft.created_at.date()
    allocation = dict(company_id=draft.company_id, kind="invoice", document_id=draft.pk,
                      issue_date=today, total=0, currency="EUR")
    with pytest.raises(NumberingChanged, match="nothing was issued"), transaction.atomic():
        allocate_number(**allocation, numbering=stale, commit=True)
    assert not IssuedNumber.objects.exists() and not Sequence.objects.exists()
    with transaction.atomic():  # without the commit, the allocator reads them again
        assert allocate_number(**allocation, numbering=stale).number == f"NEW-{today.year}-0001"


def test_only_the_outermost_block_may_commit_with_the_allocation():
    draft = InvoiceFactory()
    with pytest.raises(TransactionRequired, match="outermost"), transaction.atomic():
        allocate_number(company_id=draft.company_id, kind="invoice", document_id=draft.pk,
                        issue_date=draft.created_at.date(), total=0, currency="EUR",
                        commit=True)


def test_repeated_statements_are_prepared_on_the_server():
    client = ClientFactory()
    for _ in range(7):  # psycopg prepares a statement on its 5th run on a connection
        send_document(InvoiceFactory(client=client))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("WITH layout AS" in statement for statement in prepared)
    assert any("FOR UPDATE OF d" in statement for statement in prepared)


@pytest.mark.django_db(transaction=True)
def test_a_lock_timeout_in_the_pipeline_is_a_django_error_and_the_connection_recovers():
    draft = InvoiceFactory()

    def lock_the_document():
        Invoice.objects.select_for_update().get(pk=draft.pk)

    with (held_in_another_transaction(lock_the_document),
          pytest.raises(OperationalError, match="lock timeout"),
          transaction.atomic()):
        lock_timeout("50ms")
        send_document(draft)
    assert Invoice.objects.get(pk=draft.pk).state == DRAFT
    assert send_document(draft).number.endswith("-0001")  # same connection, working again

