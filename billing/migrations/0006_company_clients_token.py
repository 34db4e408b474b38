"""
``Company.clients_token``, and the triggers that replace it whenever one of the company's
clients is added, renamed, moved to another company or deleted, whatever writes the row.
"""

import uuid

from django.db import migrations, models

TRIGGER = "billing_client_changed"

POSTGRESQL = [
    f"""CREATE OR REPLACE FUNCTION {TRIGGER}_fn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    UPDATE billing_company SET clients_token = gen_random_uuid() WHERE id = OLD.company_id;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    UPDATE billing_company SET clients_token = gen_random_uuid() WHERE id = NEW.company_id;
  END IF;
  RETURN NULL;
END $$""",
    f"""CREATE TRIGGER {TRIGGER} AFTER INSERT OR DELETE OR UPDATE OF name, company_id
ON billing_client FOR EACH ROW EXECUTE FUNCTION {TRIGGER}_fn()""",
]
POSTGRESQL_REVERSE = [f"DROP TRIGGER IF EXISTS {TRIGGER} ON billing_client",
                      f"DROP FUNCTION IF EXISTS {TRIGGER}_fn()"]

# SQLite stores a UUIDField as 32 hex digits.
NEW_TOKEN = "UPDATE billing_company SET clients_token = lower(hex(randomblob(16)))"
SQLITE = [
    f"CREATE TRIGGER {TRIGGER}_insert AFTER INSERT ON billing_client "
    f"BEGIN {NEW_TOKEN} WHERE id = NEW.company_id; END",
    f"CREATE TRIGGER {TRIGGER}_delete AFTER DELETE ON billing_client "
    f"BEGIN {NEW_TOKEN} WHERE id = OLD.company_id; END",
    f"CREATE TRIGGER {TRIGGER}_update AFTER UPDATE OF name, company_id ON billing_client "
    f"BEGIN {NEW_TOKEN} WHERE id IN (OLD.company_id, NEW.company_id); END",
]
SQLITE_REVERSE = [f"DROP TRIGGER IF EXISTS {TRIGGER}_{event}"
                  for event in ("insert", "delete", "update")]


def run(statements):
    def operation(apps, schema_editor):
        for statement in statements[schema_editor.connection.vendor]:
            schema_editor.execute(statement)
    return operation


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0005_document_indexes_covered"),
    ]

    operations = [
        migrations.AddField(
            model_name="company",
            name="clients_token",
            field=models.UUIDField(default=uuid.uuid4, editable=False),
        ),
        migrations.RunPython(
            run({"postgresql": POSTGRESQL, "sqlite": SQLITE}),
            run({"postgresql": POSTGRESQL_REVERSE, "sqlite": SQLITE_REVERSE}),
        ),
    ]
