"""
Named series: a company may have several numbering settings rows, each a series with a
name, a code and one default. The existing row of each company becomes its default series
"Main", without a code, so its counters keep their keys and its books stay as they are.
"""

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from counters.dbguards import sqlite_triggers_lifted

LIFT, RESTORE = sqlite_triggers_lifted()


def existing_rows_are_default(apps, schema_editor):
    apps.get_model("counters", "NumberingSettings").objects.update(is_default=True)


class Migration(migrations.Migration):

    dependencies = [
        ("counters", "0014_client_counters"),
    ]

    operations = [
        LIFT,
        migrations.AddField(
            model_name="numberingsettings",
            name="name",
            field=models.CharField(default="Main", help_text="How people call this series, e.g. Shop or Madrid.", max_length=40, verbose_name="series name"),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="numberingsettings",
            name="code",
            field=models.CharField(blank=True, help_text="A short code the books and the audit record this series under (e.g. SHOP). Only the company's first series has none.", max_length=8, validators=[django.core.validators.RegexValidator("^[A-Z0-9]+\\Z", "Use capital letters and digits only (e.g. SHOP).")], verbose_name="series code"),
        ),
        migrations.AddField(
            model_name="numberingsettings",
            name="is_default",
            field=models.BooleanField(default=False, help_text="Documents whose draft and client name no series are numbered in it.", verbose_name="default series"),
        ),
        migrations.RunPython(existing_rows_are_default, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="numberingsettings",
            name="company",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="numbering_series", to=settings.COUNTERS_COMPANY_MODEL),
        ),
        migrations.AlterModelOptions(
            name="numberingsettings",
            options={"ordering": ["company", "-is_default", "name"], "verbose_name": "numbering series", "verbose_name_plural": "numbering series"},
        ),
        migrations.AddConstraint(
            model_name="numberingsettings",
            constraint=models.UniqueConstraint(fields=("company", "name"), name="counters_series_name_unique", violation_error_message="This company already has a series of that name."),
        ),
        migrations.AddConstraint(
            model_name="numberingsettings",
            constraint=models.UniqueConstraint(fields=("company", "code"), name="counters_series_code_unique", violation_error_message="This company already has a series with that code."),
        ),
        migrations.AddConstraint(
            model_name="numberingsettings",
            constraint=models.UniqueConstraint(condition=models.Q(("is_default", True)), fields=("company",), name="counters_one_default_series", violation_error_message="A company has one default series."),
        ),
        migrations.AlterField(
            model_name="sequence",
            name="series",
            field=models.CharField(max_length=20, verbose_name="series"),
        ),
        migrations.AlterField(
            model_name="clientsequence",
            name="series",
            field=models.CharField(max_length=20, verbose_name="series"),
        ),
        migrations.AlterField(
            model_name="issuednumber",
            name="series",
            field=models.CharField(max_length=20, verbose_name="series"),
        ),
        migrations.AlterField(
            model_name="numberjump",
            name="series",
            field=models.CharField(max_length=20, verbose_name="series"),
        ),
        RESTORE,
    ]
