"""
Database triggers that make issued documents and their lines immutable, whatever writes to
the database: the model refuses too, but a raw UPDATE or a bulk delete does not ask it.
"""

from django.db import migrations

from counters.dbguards import create_guard, distinct, drop_guard

DOCUMENTS = {"Invoice": "InvoiceLine", "CreditNote": "CreditNoteLine"}
# Columns an issued document may still change (Document.MUTABLE_WHEN_ISSUED).
MUTABLE = {"state", "updated_at"}
LOCKED = "Issued documents cannot be changed or deleted; correct them with a credit note."


def guards(apps, vendor):
    for document_name, line_name in DOCUMENTS.items():
        document = apps.get_model("billing", document_name)
        line = apps.get_model("billing", line_name)
        table, line_table = document._meta.db_table, line._meta.db_table
        frozen = [f.column for f in document._meta.concrete_fields if f.column not in MUTABLE]
        changed = " OR ".join(distinct(column, vendor) for column in frozen)
        yield dict(name=f"{table}_no_delete", table=table, event="DELETE",
                   condition="OLD.state <> 'draft'")
        yield dict(name=f"{table}_frozen", table=table, event="UPDATE",
                   condition=f"OLD.state <> 'draft' AND (NEW.state = 'draft' OR {changed})")

        def parent_issued(ref):
            return f"(SELECT state FROM {table} WHERE id = {ref}.document_id) <> 'draft'"

        yield dict(name=f"{line_table}_no_insert", table=line_table, event="INSERT",
                   condition=parent_issued("NEW"))
        yield dict(name=f"{line_table}_no_update", table=line_table, event="UPDATE",
                   condition=f"{parent_issued('OLD')} OR {parent_issued('NEW')}")
        yield dict(name=f"{line_table}_no_delete", table=line_table, event="DELETE",
                   condition=parent_issued("OLD"))


def install(apps, schema_editor):
    for guard in guards(apps, schema_editor.connection.vendor):
        create_guard(schema_editor, message=LOCKED, **guard)


def remove(apps, schema_editor):
    for guard in guards(apps, schema_editor.connection.vendor):
        drop_guard(schema_editor, name=guard["name"], table=guard["table"])


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(install, remove)]
