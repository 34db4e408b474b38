"""The ledger and the record of explained jumps are append-only: the database refuses edits."""

from django.db import migrations

from counters.dbguards import create_guard, drop_guard

APPEND_ONLY = {
    "IssuedNumber": "The ledger of issued numbers is append-only.",
    "NumberJump": "Explained jumps are append-only.",
}


def guards(apps):
    for model_name, message in APPEND_ONLY.items():
        table = apps.get_model("counters", model_name)._meta.db_table
        for event in ("UPDATE", "DELETE"):
            yield dict(name=f"{table}_no_{event.lower()}", table=table, event=event,
                       condition="TRUE", message=message)


def install(apps, schema_editor):
    for guard in guards(apps):
        create_guard(schema_editor, **guard)


def remove(apps, schema_editor):
    for guard in guards(apps):
        drop_guard(schema_editor, name=guard["name"], table=guard["table"])


class Migration(migrations.Migration):
    dependencies = [("counters", "0001_initial")]
    operations = [migrations.RunPython(install, remove)]
