"""Quotes: a third kind of document, with its own pattern or the invoices' counter."""

from django.db import migrations, models

from counters.dbguards import sqlite_triggers_lifted

# SQLite rebuilds the settings' table for the new columns, which other tables' triggers name.
LIFT, RESTORE = sqlite_triggers_lifted()


class Migration(migrations.Migration):

    dependencies = [
        ('counters', '0012_fiscal_year_start'),
    ]

    operations = [
        LIFT,
        migrations.AddField(
            model_name='numberingsettings',
            name='quote_pattern',
            field=models.CharField(blank=True, default='', help_text='Empty: the invoice pattern after Q- (Q-INV-2026-0001).', max_length=48, verbose_name='quote pattern'),
        ),
        migrations.AddField(
            model_name='numberingsettings',
            name='quotes_share_invoice_counter',
            field=models.BooleanField(default=False, help_text="Quotes draw their values from the invoices' sequence instead of their own.", verbose_name="quotes share the invoices' counter"),
        ),
        migrations.AlterField(
            model_name='issuednumber',
            name='kind',
            field=models.CharField(choices=[('invoice', 'Invoice'), ('credit_note', 'Credit note'), ('quote', 'Quote')], max_length=20, verbose_name='document kind'),
        ),
        migrations.AlterField(
            model_name='issuednumber',
            name='series',
            field=models.CharField(choices=[('shared', 'Shared'), ('invoice', 'Invoice'), ('credit_note', 'Credit note'), ('quote', 'Quote')], max_length=20, verbose_name='series'),
        ),
        migrations.AlterField(
            model_name='numberjump',
            name='series',
            field=models.CharField(choices=[('shared', 'Shared'), ('invoice', 'Invoice'), ('credit_note', 'Credit note'), ('quote', 'Quote')], max_length=20, verbose_name='series'),
        ),
        migrations.AlterField(
            model_name='sequence',
            name='series',
            field=models.CharField(choices=[('shared', 'Shared'), ('invoice', 'Invoice'), ('credit_note', 'Credit note'), ('quote', 'Quote')], max_length=20, verbose_name='series'),
        ),
        migrations.AlterField(
            model_name='stateevent',
            name='kind',
            field=models.CharField(choices=[('invoice', 'Invoice'), ('credit_note', 'Credit note'), ('quote', 'Quote')], max_length=20, verbose_name='document kind'),
        ),
        RESTORE,
    ]
