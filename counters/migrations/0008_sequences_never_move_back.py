"""
A sequence never moves back: the database refuses lowering its ``last`` below the highest
value in its ledger (every later issue in that series would then collide with a number
already issued), and deleting or renaming a sequence that has ledger entries.

The allocator and ``set_next_number`` only ever raise ``last``; the guard costs one index
lookup, and only when ``last`` goes down or the row is moved. SQLite drops a table's triggers
when it rebuilds it: a later migration that alters ``counters_sequence`` calls ``install``
again (as 0003 does for the ledger guards).
"""

from django.db import migrations

from counters.dbguards import create_guard, distinct, drop_guard

MESSAGE = "A sequence never moves back below the values its ledger has issued."


def guards(apps, vendor):
    sequences = apps.get_model("counters", "Sequence")._meta.db_table
    ledger = apps.get_model("counters", "IssuedNumber")._meta.db_table

    def highest(row):
        return (f"(SELECT COALESCE(MAX(l.value), 0) FROM {ledger} l "
                f"WHERE l.company_id = {row}.company_id AND l.series = {row}.series "
                f"AND l.period = {row}.period)")

    def issued(row):
        return (f"EXISTS (SELECT 1 FROM {ledger} l WHERE l.company_id = {row}.company_id "
                f"AND l.series = {row}.series AND l.period = {row}.period)")

    moved = " OR ".join(distinct(column, vendor) for column in ("company_id", "series", "period"))
    yield dict(
        name=f"{sequences}_never_back", table=sequences, event="UPDATE", message=MESSAGE,
        condition=(f"(NEW.last < OLD.last AND NEW.last < {highest('NEW')}) "
                   f"OR (({moved}) AND ({issued('OLD')} OR NEW.last < {highest('NEW')}))"),
    )
    yield dict(
        name=f"{sequences}_keep_issued", table=sequences, event="DELETE", message=MESSAGE,
        condition=issued("OLD"),
    )


def install(apps, schema_editor):
    for guard in guards(apps, schema_editor.connection.vendor):
        create_guard(schema_editor, **guard)


def remove(apps, schema_editor):
    for guard in guards(apps, schema_editor.connection.vendor):
        drop_guard(schema_editor, name=guard["name"], table=guard["table"])


class Migration(migrations.Migration):
    dependencies = [("counters", "0007_plain_allocation")]
    operations = [migrations.RunPython(install, remove)]
