"""
A sequence never moves back: the database refuses lowering its ``last`` (every later issue in
that series would collide with a number already issued, or reuse values an explained jump
skipped), and deleting or moving (other company, series or period) a sequence that has handed
out values. The allocator, ``set_next_number`` and layout changes only ever raise ``last``.

The guards read only the row itself, never the ledger: on SQLite a trigger that names another
table makes Django's rebuild of that table fail ("error in trigger …: no such table"), so a
later migration altering the ledger would break. It also keeps the issuing path free of extra
queries. SQLite drops a table's own triggers when it rebuilds it: a later migration that
alters ``counters_sequence`` calls ``install`` again (as 0003 does for the ledger guards).
"""

from django.db import migrations

from counters.dbguards import create_guard, distinct, drop_guard

MESSAGE = "A sequence never moves back: its values have been handed out."


def guards(apps, vendor):
    table = apps.get_model("counters", "Sequence")._meta.db_table
    moved = " OR ".join(distinct(column, vendor) for column in ("company_id", "series", "period"))
    yield dict(name=f"{table}_never_back", table=table, event="UPDATE", message=MESSAGE,
               condition=f"NEW.last < OLD.last OR (OLD.last > 0 AND ({moved}))")
    yield dict(name=f"{table}_kept", table=table, event="DELETE", message=MESSAGE,
               condition="OLD.last > 0")


def install(apps, schema_editor):
    for guard in guards(apps, schema_editor.connection.vendor):
        create_guard(schema_editor, **guard)


def remove(apps, schema_editor):
    for guard in guards(apps, schema_editor.connection.vendor):
        drop_guard(schema_editor, name=guard["name"], table=guard["table"])


class Migration(migrations.Migration):
    dependencies = [("counters", "0009_state_history")]
    operations = [migrations.RunPython(install, remove)]
