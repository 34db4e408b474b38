"""
Row guards: database triggers that refuse a change the application never makes, so that a
raw SQL statement, a bulk update or another program cannot rewrite what has been issued.

Used from migrations. Each guard fires BEFORE one event (INSERT, UPDATE or DELETE) on one
table when a condition written in SQL over OLD/NEW holds, and aborts the statement with an
integrity error carrying ``message``.
"""

from contextlib import contextmanager

from django.db import transaction


def distinct(column, vendor):
    """SQL that is true when OLD.column and NEW.column differ, NULLs included."""
    op = "IS DISTINCT FROM" if vendor == "postgresql" else "IS NOT"
    return f"OLD.{column} {op} NEW.{column}"


def create_guard(schema_editor, *, name, table, event, condition, message):
    vendor = schema_editor.connection.vendor
    message = message.replace("'", "''")
    if vendor == "postgresql":
        schema_editor.execute(
            f"CREATE OR REPLACE FUNCTION {name}_fn() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n"
            f"  IF {condition} THEN\n"
            f"    RAISE EXCEPTION '{message}' USING ERRCODE = 'integrity_constraint_violation';\n"
            f"  END IF;\n"
            f"  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;\n"
            f"  RETURN NEW;\n"
            f"END $$"
        )
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        schema_editor.execute(
            f"CREATE TRIGGER {name} BEFORE {event} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {name}_fn()"
        )
    elif vendor == "sqlite":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")
        schema_editor.execute(
            f"CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW WHEN {condition} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )
    else:  # pragma: no cover - Folio supports these two databases
        raise NotImplementedError(f"No row guards for {vendor}.")


def drop_guard(schema_editor, *, name, table):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}_fn()")
    else:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")


@contextmanager
def guards_lifted(connection):
    """
    Run the block with the row guards off, for maintenance that must rewrite history (and
    for tests that simulate damage done outside Folio). PostgreSQL: the triggers do not fire
    for a ``session_replication_role = replica`` transaction (superuser only). SQLite: the
    triggers are dropped and re-created exactly as they were.
    """
    if connection.vendor == "postgresql":
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            yield
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        triggers = cursor.fetchall()
        for name, _sql in triggers:
            cursor.execute(f'DROP TRIGGER "{name}"')
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for _name, sql in triggers:
                cursor.execute(sql)


def sqlite_triggers_lifted():
    """
    Two migration operations to put around operations that make SQLite rebuild a table
    (altering a column, adding a check): SQLite drops the rebuilt table's triggers, and
    refuses to rename the new table into place while another table's trigger names the old
    one. The first saves and drops every trigger, the second re-creates them exactly as they
    were (and the reverse). PostgreSQL alters tables in place: both do nothing there.
    """
    from django.db import migrations

    saved = []

    def lift(apps, schema_editor):
        if schema_editor.connection.vendor != "sqlite":
            return
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            saved[:] = cursor.fetchall()
        for name, _sql in saved:
            schema_editor.execute(f'DROP TRIGGER "{name}"')

    def restore(apps, schema_editor):
        if schema_editor.connection.vendor != "sqlite":
            return
        with schema_editor.connection.cursor() as cursor:
            for _name, sql in saved:
                cursor.execute(sql)
        saved.clear()

    return migrations.RunPython(lift, restore), migrations.RunPython(restore, lift)
