"""
Drop the documents' single-column company and state indexes: the list indexes (company,
state, created, id) and (company, created, id) serve the same lookups, and sending a
document rewrites an entry in every index of its row, so each index less is less work
for every document issued.

Only the indexes go (SeparateDatabaseAndState): altering the fields would make SQLite
rebuild the document tables, and with them drop their guards.
"""

import django.db.models.deletion
import django_fsm
from django.db import migrations, models

# Django's names for them (the same on every database); the _like ones exist on PostgreSQL.
INDEXES = {
    "billing_invoice": [
        ("billing_invoice_company_id_f0aed760", "company_id"),
        ("billing_invoice_state_5f3b43c5", "state"),
        ("billing_invoice_state_5f3b43c5_like", None),
    ],
    "billing_creditnote": [
        ("billing_creditnote_company_id_1e9fc507", "company_id"),
        ("billing_creditnote_state_155f6eab", "state"),
        ("billing_creditnote_state_155f6eab_like", None),
    ],
}


def drop(index, table, column):
    # A _like index is not put back: PostgreSQL only used it for LIKE on the state.
    reverse = f"CREATE INDEX {index} ON {table} ({column})" if column else migrations.RunSQL.noop
    return migrations.RunSQL(f"DROP INDEX IF EXISTS {index}", reverse)


def state_field(model_name):
    return migrations.AlterField(
        model_name=model_name, name="state",
        field=django_fsm.FSMField(
            choices=[("draft", "Draft"), ("sent", "Sent"), ("paid", "Paid"),
                     ("cancelled", "Cancelled")],
            default="draft", max_length=50, protected=True, verbose_name="state"),
    )


def company_field(model_name):
    return migrations.AlterField(
        model_name=model_name, name="company",
        field=models.ForeignKey(
            db_index=False, on_delete=django.db.models.deletion.PROTECT,
            related_name="%(class)ss", to="billing.company", verbose_name="company"),
    )


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_list_indexes")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                drop(index, table, column)
                for table, indexes in INDEXES.items() for index, column in indexes
            ],
            state_operations=[
                company_field("creditnote"), state_field("creditnote"),
                company_field("invoice"), state_field("invoice"),
            ],
        ),
    ]
