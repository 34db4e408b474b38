"""
Drafts and clients choose the series they are numbered in (counters 0015); an issued
document records the series it was numbered in.
"""

import django.db.models.deletion
from django.db import migrations, models

from counters.dbguards import sqlite_triggers_lifted

LIFT, RESTORE = sqlite_triggers_lifted()


def issued_in_the_default_series(apps, schema_editor):
    """Documents issued so far were numbered in their company's one series, now its default
    (a credit note drafted from such an invoice follows it there)."""
    defaults = apps.get_model("counters", "NumberingSettings").objects.filter(is_default=True)
    for company_id, series_id in defaults.values_list("company_id", "pk"):
        for name in ("Invoice", "CreditNote", "Quote"):
            apps.get_model("billing", name).objects.filter(company_id=company_id).exclude(
                state="draft").update(series_id=series_id)


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0023_client_code'),
        ('counters', '0015_named_series'),
    ]

    operations = [
        LIFT,
        migrations.AddField(
            model_name='client',
            name='series',
            field=models.ForeignKey(blank=True, help_text="The series this client's documents are numbered in. Empty: the company's default series.", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='counters.numberingsettings', verbose_name='numbering series'),
        ),
        migrations.AddField(
            model_name='creditnote',
            name='series',
            field=models.ForeignKey(blank=True, help_text="Empty: the client's series, or else the company's default series.", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='counters.numberingsettings', verbose_name='numbering series'),
        ),
        migrations.AddField(
            model_name='invoice',
            name='series',
            field=models.ForeignKey(blank=True, help_text="Empty: the client's series, or else the company's default series.", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='counters.numberingsettings', verbose_name='numbering series'),
        ),
        migrations.AddField(
            model_name='quote',
            name='series',
            field=models.ForeignKey(blank=True, help_text="Empty: the client's series, or else the company's default series.", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='counters.numberingsettings', verbose_name='numbering series'),
        ),
        migrations.RunPython(issued_in_the_default_series, migrations.RunPython.noop),
        RESTORE,
    ]
