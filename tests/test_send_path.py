"""
What one send costs the database, on PostgreSQL: the statements it needs and no others, in
as few round trips as they allow, prepared once per connection. Throughput itself is
measured by ``manage.py bench_numbering``, not here.
"""

import pytest
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext

from billing.models import DRAFT, Invoice
from billing.services import send_document
from counters.models import IssuedNumber

from .factories import ClientFactory, InvoiceFactory
from .locking import held_in_another_transaction, lock_timeout

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_a_send_runs_three_statements_lock_lines_and_allocation():
    client = ClientFactory()
    send_document(InvoiceFactory(client=client))  # the numbering settings are now cached
    draft = InvoiceFactory(client=client)
    with CaptureQueriesContext(connection) as context:
        issued = send_document(draft)
    # The test's own transaction makes send_document's atomic block a savepoint: not counted.
    statements = [query["sql"] for query in context.captured_queries
                  if "SAVEPOINT" not in query["sql"]]
    assert len(statements) == 3, statements
    assert "FOR UPDATE OF d" in statements[0]
    assert "document_id" in statements[1] and "ORDER BY" in statements[1]
    assert statements[2].lstrip().startswith("WITH layout AS")
    assert issued.number.endswith("-0002")


def test_the_lock_and_the_lines_share_one_round_trip():
    draft = InvoiceFactory()
    pipelines = []
    raw = connection.connection
    original = type(raw).pipeline

    def counting_pipeline(self, *args, **kwargs):
        pipelines.append(self)
        return original(self, *args, **kwargs)

    type(raw).pipeline = counting_pipeline
    try:
        send_document(draft)
    finally:
        type(raw).pipeline = original
    assert pipelines == [raw]
    assert IssuedNumber.objects.get().document_id == draft.pk


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
