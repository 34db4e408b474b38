"""``billing.maintenance.purge_companies``: a scratch company goes with every row it has."""

from datetime import date
from decimal import Decimal

import pytest
from django.apps import apps

from billing import batches, recurring, services
from billing.api.tokens import create_token
from billing.maintenance import purge_companies
from billing.models import Company, Reminder
from counters.models import NumberingSettings
from counters.services import save_numbering_settings

from .factories import (
    ClientFactory,
    CompanyFactory,
    InvoiceFactory,
    QuoteFactory,
    configure_numbering,
)
from .test_recurring import schedule_of

pytestmark = pytest.mark.django_db


def rows_of(company_id):
    """Every model's rows that name the company (by a ``company`` foreign key)."""
    counts = {}
    for model in apps.get_models():
        if any(f.name == "company" for f in model._meta.get_fields()):
            count = model._base_manager.filter(company_id=company_id).count()
            if count:
                counts[model._meta.label] = count
    return counts


def test_a_company_is_purged_with_all_its_documents_history_and_settings():
    company = CompanyFactory()
    kept = InvoiceFactory(client=ClientFactory(company=CompanyFactory()))
    configure_numbering(company, invoice_pattern="INV-{YYYY}-{counter}-{client_ref}"
                                                 "-{client_counter}")
    shop = save_numbering_settings(NumberingSettings(
        company=company, name="Shop", code="SHOP", invoice_pattern="S-{YYYY}-{counter}",
        credit_note_pattern="SC-{YYYY}-{counter}"))
    client = ClientFactory(company=company, code="ACME", series=shop)
    services.send_document(InvoiceFactory(client=ClientFactory(company=company, code="B")))
    sent = services.send_document(InvoiceFactory(client=client))  # in its client's Shop
    payment = services.record_payment(sent, amount=Decimal("1.00"), method="cash")
    services.reverse_payment(payment, reason="wrong invoice")
    services.cancel_invoice(services.send_document(InvoiceFactory(client=client)))
    services.accept_quote(services.send_document(QuoteFactory(client=client)))
    recurring.run_schedule(schedule_of(client), date(2026, 2, 15))
    Reminder.objects.create(company=company, invoice=sent, step=3, due_on=date(2026, 1, 1))
    batches.create(company, "invoice", [InvoiceFactory(client=client).pk])
    create_token(company, "viewer")
    assert len(rows_of(company.pk)) > 10

    purge_companies([company.pk])

    assert rows_of(company.pk) == {}
    assert not Company.objects.filter(pk=company.pk).exists()
    assert type(kept).objects.filter(pk=kept.pk).exists()  # other companies keep theirs
