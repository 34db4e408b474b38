from decimal import Decimal
from importlib import import_module

from django.db import migrations, models

ledger_guards = import_module("counters.migrations.0002_ledger_guards")


class Migration(migrations.Migration):
    dependencies = [("counters", "0002_ledger_guards")]

    operations = [
        migrations.AddField(
            model_name="sequence", name="last_hash",
            field=models.CharField(blank=True, default="", editable=False, max_length=64,
                                   verbose_name="hash of the last entry"),
        ),
        migrations.AddField(
            model_name="issuednumber", name="total",
            field=models.DecimalField(decimal_places=2, max_digits=14, verbose_name="total",
                                      default=Decimal("0")),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="issuednumber", name="currency",
            field=models.CharField(max_length=3, verbose_name="currency", default=""),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="issuednumber", name="previous_hash",
            field=models.CharField(blank=True, max_length=64, verbose_name="previous hash",
                                   default=""),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="issuednumber", name="entry_hash",
            field=models.CharField(max_length=64, verbose_name="hash", default=""),
            preserve_default=False,
        ),
        # SQLite rebuilds a table to add a column, dropping its triggers: put them back.
        migrations.RunPython(ledger_guards.install, migrations.RunPython.noop),
    ]
