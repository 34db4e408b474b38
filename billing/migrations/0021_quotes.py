import django.core.validators
import django.db.models.deletion
import django.db.models.functions.text
import django.db.models.lookups
import django_fsm
"""
Quotes (``billing.models.Quote``), and the database's rules for them, whatever writes to it:

- a sent quote and its lines are never changed or deleted (as issued invoices);
- its state moves only as the state machine allows: draft → sent → accepted, declined or
  expired; accepted only once an invoice names it (``billing.services.accept_quote``
  drafts that invoice first, in the same transaction);
- invoices get the column naming their quote: the guards of issued documents are installed
  again to cover it.
"""

from decimal import Decimal
from importlib import import_module

from django.db import migrations, models

from counters.dbguards import create_guard, distinct, drop_guard, sqlite_triggers_lifted

document_guards = import_module("billing.migrations.0002_issued_documents_guards")
LIFT, RESTORE = sqlite_triggers_lifted()

LOCKED = "Sent quotes cannot be changed or deleted."
TRANSITION_REFUSED = "This change of state is not allowed by the quotes' state machine."
ALLOWED = " OR ".join([
    "(OLD.state = 'draft' AND NEW.state = 'sent')",
    "(OLD.state = 'sent' AND NEW.state = 'accepted' "
    "AND EXISTS (SELECT 1 FROM billing_invoice i WHERE i.quote_id = NEW.id))",
    "(OLD.state = 'sent' AND NEW.state = 'declined')",
    "(OLD.state = 'sent' AND NEW.state = 'expired')",
])


def quote_guards(apps, vendor):
    quote = apps.get_model("billing", "Quote")
    table, line_table = quote._meta.db_table, apps.get_model("billing", "QuoteLine")._meta.db_table
    frozen = [f.column for f in quote._meta.concrete_fields
              if f.column not in document_guards.MUTABLE]
    changed = " OR ".join(distinct(column, vendor) for column in frozen)
    yield dict(name=f"{table}_no_delete", table=table, event="DELETE",
               condition="OLD.state <> 'draft'", message=LOCKED)
    yield dict(name=f"{table}_frozen", table=table, event="UPDATE",
               condition=f"OLD.state <> 'draft' AND (NEW.state = 'draft' OR {changed})",
               message=LOCKED)
    yield dict(name=f"{table}_transitions", table=table, event="UPDATE",
               condition=f"OLD.state <> NEW.state AND NOT ({ALLOWED})",
               message=TRANSITION_REFUSED)

    def parent_sent(ref):
        return f"(SELECT state FROM {table} WHERE id = {ref}.document_id) <> 'draft'"

    yield dict(name=f"{line_table}_no_insert", table=line_table, event="INSERT",
               condition=parent_sent("NEW"), message=LOCKED)
    yield dict(name=f"{line_table}_no_update", table=line_table, event="UPDATE",
               condition=f"{parent_sent('OLD')} OR {parent_sent('NEW')}", message=LOCKED)
    yield dict(name=f"{line_table}_no_delete", table=line_table, event="DELETE",
               condition=parent_sent("OLD"), message=LOCKED)


def install_quote_guards(apps, schema_editor):
    for guard in quote_guards(apps, schema_editor.connection.vendor):
        create_guard(schema_editor, **guard)


def remove_quote_guards(apps, schema_editor):
    for guard in quote_guards(apps, schema_editor.connection.vendor):
        drop_guard(schema_editor, name=guard["name"], table=guard["table"])


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0020_api_tokens_idempotency_keys'),
    ]

    operations = [
        # Dropped first and installed last, with the invoices' new column.
        migrations.RunPython(document_guards.remove, document_guards.install),
        LIFT,
        migrations.CreateModel(
            name='QuoteLine',
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
                'verbose_name': 'quote line',
                'ordering': ['position', 'id'],
                'abstract': False,
            },
        ),
        migrations.AlterField(
            model_name='emaildelivery',
            name='kind',
            field=models.CharField(choices=[('invoice', 'Invoice'), ('credit_note', 'Credit note'), ('quote', 'Quote')], max_length=20),
        ),
        migrations.CreateModel(
            name='Quote',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.CharField(blank=True, default='', editable=False, max_length=64, verbose_name='number')),
                ('sequence_value', models.PositiveBigIntegerField(blank=True, editable=False, null=True, verbose_name='sequence value')),
                ('issue_date', models.DateField(blank=True, editable=False, null=True, verbose_name='issue date')),
                ('due_date', models.DateField(blank=True, null=True, verbose_name='due date')),
                ('currency', models.CharField(default='EUR', max_length=3, verbose_name='currency')),
                ('notes', models.TextField(blank=True, max_length=2000, verbose_name='notes')),
                ('buyer_reference', models.CharField(blank=True, help_text="Empty: the client's reference, or else the document's number.", max_length=100, verbose_name='buyer reference')),
                ('subtotal', models.DecimalField(decimal_places=2, default=Decimal('0.00'), editable=False, max_digits=14, verbose_name='subtotal')),
                ('tax_total', models.DecimalField(decimal_places=2, default=Decimal('0.00'), editable=False, max_digits=14, verbose_name='tax')),
                ('total', models.DecimalField(decimal_places=2, default=Decimal('0.00'), editable=False, max_digits=14, verbose_name='total')),
                ('snapshot', models.TextField(blank=True, default='', editable=False, verbose_name='content at issue')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created')),
                ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated')),
                ('state', django_fsm.FSMField(choices=[('draft', 'Draft'), ('sent', 'Sent'), ('accepted', 'Accepted'), ('declined', 'Declined'), ('expired', 'Expired')], default='draft', max_length=50, protected=True, verbose_name='state')),
                ('valid_until', models.DateField(blank=True, help_text='Empty: 30 days after the quote is sent.', null=True, verbose_name='valid until')),
                ('client', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='%(class)ss', to='billing.client', verbose_name='client')),
                ('company', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='%(class)ss', to='billing.company', verbose_name='company')),
            ],
            options={
                'verbose_name': 'quote',
                'ordering': ['-created_at', '-id'],
                'abstract': False,
            },
            bases=(django_fsm.ConcurrentTransitionMixin, models.Model),
        ),
        migrations.AddField(
            model_name='invoice',
            name='quote',
            field=models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='invoices', to='billing.quote', verbose_name='quote'),
        ),
        migrations.AddConstraint(
            model_name='invoice',
            constraint=models.UniqueConstraint(condition=models.Q(('quote__isnull', False)), fields=('quote',), name='billing_invoice_one_per_quote'),
        ),
        migrations.AddField(
            model_name='quoteline',
            name='document',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='lines', to='billing.quote'),
        ),
        migrations.AddIndex(
            model_name='quote',
            index=models.Index(fields=['company', '-created_at', '-id'], name='billing_quo_company_a87936_idx'),
        ),
        migrations.AddIndex(
            model_name='quote',
            index=models.Index(fields=['company', 'state', '-created_at', '-id'], name='billing_quo_company_07c71e_idx'),
        ),
        migrations.AddConstraint(
            model_name='quote',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('issue_date__isnull', True), ('number', ''), ('sequence_value__isnull', True), ('state', 'draft')), models.Q(models.Q(('state', 'draft'), _negated=True), models.Q(('number', ''), _negated=True), ('sequence_value__isnull', False), ('issue_date__isnull', False)), _connector='OR'), name='billing_quote_numbered_iff_issued'),
        ),
        migrations.AddConstraint(
            model_name='quote',
            constraint=models.UniqueConstraint(condition=models.Q(('number', ''), _negated=True), fields=('company', 'number'), name='billing_quote_number_unique'),
        ),
        migrations.AddConstraint(
            model_name='quote',
            constraint=models.CheckConstraint(condition=django.db.models.lookups.LessThanOrEqual(django.db.models.functions.text.Length('notes'), 2000), name='billing_quote_notes_length'),
        ),
        migrations.AddConstraint(
            model_name='quote',
            constraint=models.CheckConstraint(condition=models.Q(('subtotal__gte', Decimal('-999999999999.99')), ('subtotal__lte', Decimal('999999999999.99')), ('tax_total__gte', Decimal('-999999999999.99')), ('tax_total__lte', Decimal('999999999999.99')), ('total__gte', Decimal('-999999999999.99')), ('total__lte', Decimal('999999999999.99'))), name='billing_quote_totals_fit'),
        ),
        migrations.AddConstraint(
            model_name='quote',
            constraint=models.CheckConstraint(condition=models.Q(('state__in', ['draft', 'sent', 'accepted', 'declined', 'expired'])), name='billing_quote_state_valid'),
        ),
        migrations.AddConstraint(
            model_name='quote',
            constraint=models.CheckConstraint(condition=models.Q(('state', 'draft'), models.Q(('valid_until__gte', models.F('issue_date')), ('valid_until__isnull', False)), _connector='OR'), name='billing_quote_valid_until_set'),
        ),
        migrations.AddConstraint(
            model_name='quoteline',
            constraint=models.CheckConstraint(condition=models.Q(('tax_category__in', ['S', 'Z', 'E', 'AE', 'K', 'G', 'O'])), name='billing_quoteline_tax_category_valid'),
        ),
        migrations.AddConstraint(
            model_name='quoteline',
            constraint=models.CheckConstraint(condition=models.Q(('quantity__gt', 0)), name='billing_quoteline_quantity_positive'),
        ),
        migrations.AddConstraint(
            model_name='quoteline',
            constraint=models.CheckConstraint(condition=models.Q(('unit_price__gte', 0)), name='billing_quoteline_price_not_negative'),
        ),
        migrations.AddConstraint(
            model_name='quoteline',
            constraint=models.CheckConstraint(condition=models.Q(('tax_rate__gte', 0), ('tax_rate__lte', 100)), name='billing_quoteline_tax_rate_range'),
        ),
        migrations.AddConstraint(
            model_name='quoteline',
            constraint=models.CheckConstraint(condition=models.Q(('tax_category', 'S'), ('tax_rate', 0), _connector='OR'), name='billing_quoteline_untaxed_category_rate_zero'),
        ),
        RESTORE,
        migrations.RunPython(document_guards.install, document_guards.remove),
        migrations.RunPython(install_quote_guards, remove_quote_guards),
    ]
