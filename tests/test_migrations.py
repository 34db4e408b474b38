"""Migrations that do more than Django's operations: what they leave in the database."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)


def client_triggers():
    """The names of the triggers on billing_client that 0006 created."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger "
                           "WHERE tgrelid = 'billing_client'::regclass AND NOT tgisinternal")
        else:
            cursor.execute("SELECT name FROM sqlite_master "
                           "WHERE type = 'trigger' AND tbl_name = 'billing_client'")
        return sorted(name for (name,) in cursor.fetchall()
                      if name.startswith("billing_client_changed"))


def company_columns():
    with connection.cursor() as cursor:
        return {c.name for c in connection.introspection.get_table_description(
            cursor, "billing_company")}


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate(target)


def test_0007_drops_the_clients_token_with_its_triggers_and_unapplies_both():
    assert client_triggers() == [] and "clients_token" not in company_columns()
    migrate([("billing", "0006_company_clients_token")])
    try:
        expected = (["billing_client_changed"] if connection.vendor == "postgresql" else
                    ["billing_client_changed_delete", "billing_client_changed_insert",
                     "billing_client_changed_update"])
        assert client_triggers() == expected and "clients_token" in company_columns()
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    assert client_triggers() == [] and "clients_token" not in company_columns()


def triggers():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgrelid::regclass::text, tgname FROM pg_trigger "
                           "WHERE NOT tgisinternal")
        else:
            cursor.execute("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")
        return sorted(cursor.fetchall())


def test_the_bounds_migrations_keep_every_guard_both_ways():
    """SQLite rebuilds the documents' and jumps' tables for the new checks: the row guards
    (triggers) are all there afterwards, and after unapplying and applying again."""
    before = triggers()
    assert ("billing_invoice", "billing_invoice_frozen") in before
    assert any(table == "counters_numberjump" for table, _name in before)
    migrate([("billing", "0011_user_preferences"),
             ("counters", "0010_sequences_never_move_back")])
    try:
        # Only the payments' guards (billing 0015), the quotes' and the client sequences'
        # (counters 0014) come off, with their tables.
        assert triggers() == [(table, name) for table, name in before
                              if table not in ("billing_payment", "billing_paymentreversal",
                                               "billing_quote", "billing_quoteline",
                                               "counters_clientsequence")]
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    assert triggers() == before


def test_the_snapshot_and_history_migrations_unapply_and_apply_again():
    """billing 0008 and counters 0009 come off and go back with their guards."""
    before = triggers()
    assert ("billing_invoice", "billing_invoice_transitions") in before
    migrate([("billing", "0007_remove_company_clients_token"),
             ("counters", "0008_snapshot_digest")])
    try:
        names = {name for _table, name in triggers()}
        assert "billing_invoice_transitions" not in names
        assert "billing_invoice_frozen" in names  # the issued documents stay guarded
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    assert triggers() == before


def test_the_payment_migrations_unapply_and_apply_again():
    """billing 0016 puts billing 0008's state machine back when unapplied, and its own
    guards again when reapplied; 0015 takes the payments' tables."""
    before = triggers()
    assert ("billing_payment", "billing_payment_no_update") in before
    migrate([("billing", "0014_einvoice_data")])
    try:
        names = {name for _table, name in triggers()}
        assert "billing_invoice_transitions" in names
        assert not any(name.startswith("billing_payment") for name in names)
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    assert triggers() == before


def test_the_quotes_migration_unapplies_and_applies_again():
    """billing 0021 takes the quotes' tables and guards, and gives the invoices' frozen guard
    back without the quote column (which it covers once applied)."""
    before = triggers()
    assert ("billing_quote", "billing_quote_transitions") in before
    assert ("billing_quoteline", "billing_quoteline_no_insert") in before
    migrate([("billing", "0020_api_tokens_idempotency_keys")])
    try:
        assert not any(table.startswith("billing_quote") for table, _name in triggers())
        assert triggers() == [(table, name) for table, name in before
                              if not table.startswith("billing_quote")]
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    assert triggers() == before
