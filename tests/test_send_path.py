"""
The send path, statement by statement, on both databases: lock the draft, read its lines,
lock the numbering settings, take the next value, write the ledger entry, save the
document, record the change in the history; in one transaction, the allocation last of the
transition, nothing written when any step fails.
Throughput is measured by ``manage.py bench_numbering``, not here.
"""

import pytest
from django.db import IntegrityError, OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext

from billing.models import DRAFT, Invoice
from billing.services import send_document
from counters.models import IssuedNumber, Sequence

from .conftest import ON_POSTGRES
from .factories import ClientFactory, InvoiceFactory
from .locking import held_in_another_transaction, lock_timeout

pytestmark = pytest.mark.django_db


def _statements(context):
    return [" ".join(query["sql"].split()) for query in context.captured_queries
            if "SAVEPOINT" not in query["sql"]]


def test_a_send_locks_reads_allocates_last_and_saves():
    draft = InvoiceFactory()
    send_document(InvoiceFactory(client=draft.client))  # a company's first send stores its settings
    with CaptureQueriesContext(connection) as context:
        issued = send_document(draft)
    statements = _statements(context)
    steps = [
        ('FROM "billing_invoice"', "the draft, with its company and client"),
        ('FROM "billing_invoiceline"', "its lines"),
        ('FROM "counters_numberingsettings"', "the numbering settings"),
        ('INSERT INTO "counters_sequence"', "the next value"),
        ('INSERT INTO "counters_issuednumber"', "the ledger entry"),
        ('UPDATE "counters_sequence"', "the chain's head"),
        ('UPDATE "billing_invoice"', "the document"),
        ('INSERT INTO "counters_eventchain"', "the history's next event"),
        ('INSERT INTO "counters_stateevent"', "the event"),
        ('UPDATE "counters_eventchain"', "the history's head"),
    ]
    assert len(statements) == len(steps), statements
    for statement, (table, what) in zip(statements, steps, strict=True):
        assert table in statement, f"expected {what}: {statement}"
    if ON_POSTGRES:
        assert statements[0].endswith('FOR UPDATE OF "billing_invoice"')  # not the company
        assert statements[2].endswith("FOR UPDATE")
    assert "ON CONFLICT" in statements[3] and "RETURNING" in statements[3]
    # The document is saved only while it is still a draft (django-fsm's concurrency check).
    assert "\"state\" = 'draft'" in statements[6] or '"state" = %s' in statements[6]
    assert issued.number.endswith("-0002")


def test_the_first_send_of_a_company_creates_its_sequence_at_one():
    issued = send_document(InvoiceFactory())
    sequence = Sequence.objects.get(company_id=issued.company_id)
    assert (sequence.series, sequence.last) == ("invoice", 1)
    assert sequence.last_hash == IssuedNumber.objects.get().entry_hash


@pytest.mark.django_db(transaction=True)
def test_a_send_that_fails_after_the_increment_commits_nothing():
    draft = InvoiceFactory()
    later = InvoiceFactory(client=draft.client)
    send_document(InvoiceFactory(client=draft.client))
    # A ledger entry already claims the draft: the ledger insert breaks the
    # one-entry-per-document constraint after the counter was incremented.
    IssuedNumber.objects.create(
        company=draft.company, series="imported", period="", value=1, number="OLD-1",
        kind="invoice", document_id=draft.pk, issue_date=draft.created_at.date(),
        total=0, currency="EUR", previous_hash="", entry_hash="0" * 64)
    with pytest.raises(IntegrityError):
        send_document(draft)
    assert Invoice.objects.get(pk=draft.pk).state == DRAFT
    assert Sequence.objects.get(company=draft.company, series="invoice").last == 1
    assert not connection.in_atomic_block
    assert send_document(later).number.endswith("-0002")  # same connection, no gap


@pytest.mark.postgres
def test_repeated_statements_are_prepared_on_the_server():
    client = ClientFactory()
    for _ in range(7):  # psycopg prepares a statement on its 5th run on a connection
        send_document(InvoiceFactory(client=client))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('INSERT INTO "counters_sequence"' in statement for statement in prepared)
    assert any('INSERT INTO "counters_issuednumber"' in statement for statement in prepared)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_lock_timeout_is_a_django_error_and_the_connection_recovers():
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
