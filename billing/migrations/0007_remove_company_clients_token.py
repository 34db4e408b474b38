"""
``Company.clients_token`` goes, and with it the triggers of 0006 that replaced it whenever one
of a company's clients changed: nothing caches the client filter's options any more.
"""

import importlib

from django.db import migrations

TRIGGER = "billing_client_changed"

POSTGRESQL = [f"DROP TRIGGER IF EXISTS {TRIGGER} ON billing_client",
              f"DROP FUNCTION IF EXISTS {TRIGGER}_fn()"]
SQLITE = [f"DROP TRIGGER IF EXISTS {TRIGGER}_{event}" for event in ("insert", "delete", "update")]


def run(statements):
    def operation(apps, schema_editor):
        for statement in statements().get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)
    return operation


def created_in_0006():
    """Unapplying: the triggers as 0006 created them."""
    created = importlib.import_module("billing.migrations.0006_company_clients_token")
    return {"postgresql": created.POSTGRESQL, "sqlite": created.SQLITE}


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0006_company_clients_token"),
    ]

    operations = [
        # The triggers first: they write the column.
        migrations.RunPython(run(lambda: {"postgresql": POSTGRESQL, "sqlite": SQLITE}),
                             run(created_in_0006)),
        migrations.RemoveField(model_name="company", name="clients_token"),
    ]
