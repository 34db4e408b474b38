"""
Drop the single-column company indexes of the sequences and the ledger: the unique indexes
that begin with the company serve the same lookups, and each index less is less work for
every number issued.

Only the indexes go (SeparateDatabaseAndState): altering the fields would make SQLite
rebuild the ledger table, and with it drop its guards.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "counters_issuednumber": "counters_issuednumber_company_id_4f8108c2",
    "counters_sequence": "counters_sequence_company_id_3108fc3d",
}


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_initial"),
        ("counters", "0004_allocation_in_one_statement"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(f"DROP INDEX IF EXISTS {index}",
                                  f"CREATE INDEX {index} ON {table} (company_id)")
                for table, index in INDEXES.items()
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="issuednumber", name="company",
                    field=models.ForeignKey(
                        db_index=False, on_delete=django.db.models.deletion.PROTECT,
                        related_name="+", to="billing.company"),
                ),
                migrations.AlterField(
                    model_name="sequence", name="company",
                    field=models.ForeignKey(
                        db_index=False, on_delete=django.db.models.deletion.CASCADE,
                        related_name="+", to="billing.company"),
                ),
            ],
        ),
    ]
