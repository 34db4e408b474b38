"""
Recurring invoices (schedules, their template lines, the invoice's schedule and period, one
invoice per schedule and period) and reminders (the company's steps, one reminder per invoice
and step, the reminder's e-mail deliveries).

The issued-documents guards name every column of the invoice table: they are dropped first
and installed again last, with the new columns frozen too. SQLite rebuilds the company table
to add its column, and drops triggers on the way: they are lifted around the operations.
"""

import billing.models
import django.core.validators
import django.db.models.deletion
import django.db.models.functions.text
import django.db.models.lookups
import django.utils.timezone
from decimal import Decimal
from django.conf import settings
from importlib import import_module

from django.db import migrations, models

from counters.dbguards import sqlite_triggers_lifted

document_guards = import_module("billing.migrations.0002_issued_documents_guards")
LIFT, RESTORE = sqlite_triggers_lifted()


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0017_email_delivery_jobs'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(document_guards.remove, document_guards.install),
        LIFT,
        migrations.CreateModel(
            name='RecurringLine',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('description', models.CharField(max_length=500, verbose_name='description')),
                ('quantity', models.DecimalField(decimal_places=3, default=Decimal('1'), max_digits=12, validators=[django.core.validators.MinValueValidator(Decimal('0.001'))], verbose_name='quantity')),
                ('unit_price', models.DecimalField(decimal_places=2, max_digits=12, validators=[django.core.validators.MinValueValidator(Decimal('0'))], verbose_name='unit price')),
                ('tax_rate', models.DecimalField(decimal_places=2, default=Decimal('20.00'), max_digits=5, validators=[django.core.validators.MinValueValidator(Decimal('0')), django.core.validators.MaxValueValidator(Decimal('100'))], verbose_name='tax rate (%)')),
                ('unit_code', models.CharField(choices=[('C62', 'unit'), ('H87', 'piece'), ('HUR', 'hour'), ('DAY', 'day'), ('WEE', 'week'), ('MON', 'month'), ('ANN', 'year'), ('KGM', 'kilogram'), ('MTR', 'metre'), ('MTK', 'square metre'), ('LTR', 'litre'), ('KMT', 'kilometre'), ('SET', 'set'), ('LS', 'lump sum')], default='C62', max_length=3, verbose_name='unit')),
                ('tax_category', models.CharField(choices=[('S', 'Standard rate'), ('Z', 'Zero rated'), ('E', 'Exempt from VAT'), ('AE', 'Reverse charge'), ('K', 'Intra-community supply (EU)'), ('G', 'Export outside the EU'), ('O', 'Not subject to VAT')], default='S', max_length=2, verbose_name='tax category')),
                ('tax_exemption_reason', models.CharField(blank=True, help_text='Why no VAT is charged, as printed on the document.', max_length=300, verbose_name='exemption reason')),
                ('tax_exemption_code', models.CharField(blank=True, help_text='The VATEX code of the exemption, such as VATEX-EU-132.', max_length=30, verbose_name='exemption code')),
                ('position', models.PositiveIntegerField(default=0)),
            ],
            options={
                'verbose_name': 'recurring invoice line',
                'ordering': ['position', 'id'],
                'abstract': False,
            },
        ),
        migrations.CreateModel(
            name='Reminder',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('step', models.PositiveSmallIntegerField(verbose_name='days after the due date')),
                ('due_on', models.DateField(verbose_name='due on')),
                ('skipped', models.BooleanField(default=False, help_text='Not sent: a later reminder was due at the same time and went instead.', verbose_name='skipped')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='created')),
            ],
            options={
                'verbose_name': 'reminder',
                'ordering': ['invoice', 'step'],
            },
        ),
        migrations.AddField(
            model_name='company',
            name='reminder_days',
            field=models.CharField(blank=True, help_text='When overdue invoices get a reminder e-mail, in days after their due date, such as "3, 14, 30". Empty: no reminders.', max_length=100, validators=[billing.models.validate_reminder_days], verbose_name='reminders (days after the due date)'),
        ),
        migrations.AddField(
            model_name='invoice',
            name='recurring_period',
            field=models.DateField(blank=True, editable=False, null=True, verbose_name='period'),
        ),
        migrations.CreateModel(
            name='RecurringInvoice',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(help_text='What the schedule is for, such as "Hosting".', max_length=200, verbose_name='name')),
                ('currency', models.CharField(default='EUR', max_length=3, verbose_name='currency')),
                ('buyer_reference', models.CharField(blank=True, max_length=100, verbose_name='buyer reference')),
                ('notes', models.TextField(blank=True, max_length=2000, verbose_name='notes')),
                ('frequency', models.CharField(choices=[('monthly', 'Monthly'), ('quarterly', 'Quarterly'), ('yearly', 'Yearly')], default='monthly', max_length=10, verbose_name='frequency')),
                ('day_of_month', models.PositiveSmallIntegerField(choices=[(1, '1'), (2, '2'), (3, '3'), (4, '4'), (5, '5'), (6, '6'), (7, '7'), (8, '8'), (9, '9'), (10, '10'), (11, '11'), (12, '12'), (13, '13'), (14, '14'), (15, '15'), (16, '16'), (17, '17'), (18, '18'), (19, '19'), (20, '20'), (21, '21'), (22, '22'), (23, '23'), (24, '24'), (25, '25'), (26, '26'), (27, '27'), (28, '28'), (31, 'Last day')], default=1, verbose_name='day of the month')),
                ('start_date', models.DateField(help_text='The first invoice is made on the first chosen day of the month from this date on.', verbose_name='start date')),
                ('end_date', models.DateField(blank=True, help_text='Empty: until paused.', null=True, verbose_name='end date')),
                ('mode', models.CharField(choices=[('draft', 'Create drafts'), ('send', 'Create and send')], default='draft', max_length=10, verbose_name='mode')),
                ('email', models.BooleanField(default=True, help_text='In the "create and send" mode.', verbose_name='e-mail the invoice to the client')),
                ('active', models.BooleanField(default=True, verbose_name='active')),
                ('last_period', models.DateField(blank=True, editable=False, null=True, verbose_name='last period')),
                ('last_error', models.TextField(blank=True, editable=False, verbose_name='last problem')),
                ('last_error_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created')),
                ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated')),
                ('client', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='recurring_invoices', to='billing.client', verbose_name='client')),
                ('company', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='recurring_invoices', to='billing.company', verbose_name='company')),
                ('owner', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='set up by')),
            ],
            options={
                'verbose_name': 'recurring invoice',
                'verbose_name_plural': 'recurring invoices',
                'ordering': ['name', 'id'],
            },
        ),
        migrations.AddField(
            model_name='invoice',
            name='recurring',
            field=models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='invoices', to='billing.recurringinvoice', verbose_name='recurring schedule'),
        ),
        migrations.AddConstraint(
            model_name='invoice',
            constraint=models.UniqueConstraint(condition=models.Q(('recurring__isnull', False)), fields=('recurring', 'recurring_period'), name='billing_invoice_one_per_period'),
        ),
        migrations.AddConstraint(
            model_name='invoice',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('recurring__isnull', True), ('recurring_period__isnull', True)), models.Q(('recurring__isnull', False), ('recurring_period__isnull', False)), _connector='OR'), name='billing_invoice_recurring_has_period'),
        ),
        migrations.AddField(
            model_name='recurringline',
            name='document',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='lines', to='billing.recurringinvoice'),
        ),
        migrations.AddField(
            model_name='reminder',
            name='company',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='billing.company', verbose_name='company'),
        ),
        migrations.AddField(
            model_name='reminder',
            name='invoice',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='reminders', to='billing.invoice', verbose_name='invoice'),
        ),
        migrations.AddField(
            model_name='emaildelivery',
            name='reminder',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='billing.reminder', verbose_name='reminder'),
        ),
        migrations.AddIndex(
            model_name='recurringinvoice',
            index=models.Index(fields=['company', 'name'], name='billing_rec_company_38e5a4_idx'),
        ),
        migrations.AddConstraint(
            model_name='recurringinvoice',
            constraint=models.CheckConstraint(condition=models.Q(('frequency__in', ['monthly', 'quarterly', 'yearly'])), name='billing_recurringinvoice_frequency_valid'),
        ),
        migrations.AddConstraint(
            model_name='recurringinvoice',
            constraint=models.CheckConstraint(condition=models.Q(('mode__in', ['draft', 'send'])), name='billing_recurringinvoice_mode_valid'),
        ),
        migrations.AddConstraint(
            model_name='recurringinvoice',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('day_of_month__gte', 1), ('day_of_month__lte', 28)), ('day_of_month', 31), _connector='OR'), name='billing_recurringinvoice_day_valid'),
        ),
        migrations.AddConstraint(
            model_name='recurringinvoice',
            constraint=models.CheckConstraint(condition=models.Q(('end_date__isnull', True), ('end_date__gte', models.F('start_date')), _connector='OR'), name='billing_recurringinvoice_ends_after_start'),
        ),
        migrations.AddConstraint(
            model_name='recurringinvoice',
            constraint=models.CheckConstraint(condition=django.db.models.lookups.LessThanOrEqual(django.db.models.functions.text.Length('notes'), 2000), name='billing_recurringinvoice_notes_length'),
        ),
        migrations.AddConstraint(
            model_name='recurringline',
            constraint=models.CheckConstraint(condition=models.Q(('tax_category__in', ['S', 'Z', 'E', 'AE', 'K', 'G', 'O'])), name='billing_recurringline_tax_category_valid'),
        ),
        migrations.AddConstraint(
            model_name='recurringline',
            constraint=models.CheckConstraint(condition=models.Q(('quantity__gt', 0)), name='billing_recurringline_quantity_positive'),
        ),
        migrations.AddConstraint(
            model_name='recurringline',
            constraint=models.CheckConstraint(condition=models.Q(('unit_price__gte', 0)), name='billing_recurringline_price_not_negative'),
        ),
        migrations.AddConstraint(
            model_name='recurringline',
            constraint=models.CheckConstraint(condition=models.Q(('tax_rate__gte', 0), ('tax_rate__lte', 100)), name='billing_recurringline_tax_rate_range'),
        ),
        migrations.AddConstraint(
            model_name='recurringline',
            constraint=models.CheckConstraint(condition=models.Q(('tax_category', 'S'), ('tax_rate', 0), _connector='OR'), name='billing_recurringline_untaxed_category_rate_zero'),
        ),
        migrations.AddConstraint(
            model_name='reminder',
            constraint=models.UniqueConstraint(fields=('invoice', 'step'), name='billing_reminder_once_per_step'),
        ),
        RESTORE,
        migrations.RunPython(document_guards.install, document_guards.remove),
    ]
