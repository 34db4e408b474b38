from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from billing import services
from billing.models import (
    Client,
    Company,
    CreditNote,
    Frequency,
    Invoice,
    Membership,
    Quote,
    RecurringInvoice,
    RecurringMode,
)
from counters.models import NumberingSettings
from counters.services import save_numbering_settings

from . import _parties as parties

DEMO_COMPANY = "Atelier Demo SARL"
# A second company of the demo user's, whose fiscal year starts in July and whose numbers
# carry each client's own counter beside the company's (EX-2026-27-0001-MARTIN-001).
FISCAL_COMPANY = "Atelier Demo Export SAS"
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "folio-demo-2026"

# Everything an e-invoice needs (EN 16931, Peppol BIS 3.0): the demo's documents are valid.
SELLER = {**parties.SELLER, "email": "billing@atelier-demo.example",
          # Overdue invoices get a reminder 7, 14 and 30 days after their due date.
          "reminder_days": "7, 14, 30"}
CLIENTS = [
    {**parties.BUYER, "name": "Boulangerie Martin",
     "email": "compta@boulangerie-martin.example", "reference": "PO-2026-118"},
    {"name": "Nordlicht GmbH", "email": "rechnung@nordlicht.example", "language": "de",
     "street": "Hafenstraße 3", "postal_code": "20457", "city": "Hamburg", "country": "DE",
     "vat_id": "DE136695976", "endpoint_scheme": "9930", "endpoint_id": "DE136695976",
     "attach_ubl": True},
    {"name": "Casa Verde S.L.", "email": "facturas@casaverde.example", "language": "es",
     "street": "Calle Mayor 8", "postal_code": "28013", "city": "Madrid", "country": "ES",
     "vat_id": "ESB58378431", "endpoint_scheme": "9920", "endpoint_id": "ESB58378431"},
]


class Command(BaseCommand):
    help = "Load demo data (a company, its user, clients, drafts and issued documents). Idempotent."

    def handle(self, *args, **options):
        user = self.ensure_user()
        company, created = Company.objects.get_or_create(
            name=DEMO_COMPANY,
            defaults=SELLER,
        )
        Membership.objects.get_or_create(
            user=user, company=company, defaults={"role": Membership.Role.OWNER}
        )
        if created:
            self.create_documents(company, user)
        self.ensure_fiscal_company(user)
        self.stdout.write(self.style.SUCCESS(
            f"Demo data ready. Open http://127.0.0.1:8000/ and log in as "
            f"{DEMO_USERNAME} / {DEMO_PASSWORD}"
        ))

    @transaction.atomic
    def ensure_fiscal_company(self, user):
        company, created = Company.objects.get_or_create(name=FISCAL_COMPANY, defaults=SELLER)
        Membership.objects.get_or_create(
            user=user, company=company, defaults={"role": Membership.Role.OWNER})
        if not created:
            return
        numbering = NumberingSettings.for_company(company.pk)
        numbering.fiscal_year_start = 7
        numbering.invoice_pattern = "EX-{FY}-{counter}-{client_ref}-{client_counter}"
        numbering.credit_note_pattern = "EXA-{FY}-{counter}-{client_ref}-{client_counter}"
        save_numbering_settings(numbering, user=user)
        client = Client.objects.create(company=company, code="MARTIN", **CLIENTS[0])
        invoice = Invoice.objects.create(company=company, client=client)
        invoice.lines.create(position=0, description="Export consulting", quantity=Decimal("1"),
                             unit_price=Decimal("900.00"), tax_rate=Decimal("20"),
                             unit_code="C62")
        invoice.update_totals()
        services.send_document(invoice, user=user)

    def ensure_user(self):
        user, created = get_user_model().objects.get_or_create(
            username=DEMO_USERNAME,
            defaults={"email": "demo@atelier-demo.example", "is_staff": True,
                      "is_superuser": True, "first_name": "Demo"},
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        return user

    @transaction.atomic
    def create_documents(self, company, user):
        clients = [Client.objects.create(company=company, **client) for client in CLIENTS]
        lines = [
            ("Website redesign", "1", "2400.00", "20", "C62"),
            ("Hosting, 12 months", "12", "15.00", "20", "MON"),
            ("Training day", "2", "650.00", "10", "DAY"),
        ]
        # Services to a business in another EU country: the buyer pays the VAT.
        reverse_charge = {"tax_rate": "0", "tax_category": "AE"}

        def draft(model, client, chosen, **taxed):
            document = model.objects.create(company=company, client=client)
            for position, (description, quantity, price, rate, unit) in enumerate(chosen):
                line = document.lines.model(
                    document=document, position=position, description=description,
                    quantity=Decimal(quantity), unit_price=Decimal(price),
                    tax_rate=Decimal(taxed.get("tax_rate", rate)), unit_code=unit,
                    tax_category=taxed.get("tax_category", "S"))
                line.full_clean()  # fills in the exemption a category implies
                line.save()
            document.update_totals()
            return document

        sent = services.send_document(draft(Invoice, clients[0], lines[:2]), user=user)
        paid = services.send_document(draft(Invoice, clients[1], lines[2:], **reverse_charge),
                                      user=user)
        services.record_payment(paid, amount=Decimal("500.00"), method="bank_transfer",
                                reference="VIR NORDLICHT 0412", user=user)
        services.mark_paid(paid, user=user, method="card", reference="Stripe ch_3Pq")
        part_paid = services.send_document(
            draft(Invoice, clients[2], lines[1:], **reverse_charge), user=user)
        services.record_payment(part_paid, amount=Decimal("300.00"), method="bank_transfer",
                                reference="TRF CASA VERDE", user=user)
        mistaken = services.record_payment(part_paid, amount=Decimal("100.00"), method="cash",
                                           user=user)
        services.reverse_payment(mistaken, reason="Recorded on the wrong invoice", user=user)
        hosting = sent.lines.get(description="Hosting, 12 months")
        credit = services.draft_credit_note(
            sent, reason="Hosting not needed", amount_lines=[services.CreditLine.of(hosting)])
        services.send_document(credit, user=user)
        draft(Invoice, clients[0], lines[2:])
        draft(CreditNote, clients[1], [("Goodwill discount", "1", "50.00", "0", "C62")],
              **reverse_charge)
        # A monthly maintenance contract: a draft on the 1st of each month, from this month
        # (the worker makes it; "Run now" on its page makes the due ones at once).
        today = timezone.localdate()
        maintenance = RecurringInvoice.objects.create(
            company=company, client=clients[0], name="Website maintenance",
            currency=company.currency, frequency=Frequency.MONTHLY, day_of_month=1,
            start_date=today.replace(day=1), mode=RecurringMode.DRAFT, owner=user,
            notes="Monthly maintenance contract.")
        maintenance.lines.create(position=0, description="Website maintenance, one month",
                                 quantity=Decimal("1"), unit_price=Decimal("180.00"),
                                 tax_rate=Decimal("20"), unit_code="MON")
        self.create_quotes(company, user, clients, lines, draft)
        self.create_online_series(company, user, clients, lines, draft)

    def create_quotes(self, company, user, clients, lines, draft):
        """Quotes in their own series: one accepted (its invoice is a draft), one sent and
        waiting, one declined, one draft."""
        numbering = NumberingSettings.for_company(company.pk)
        numbering.quote_pattern = "Q-{YYYY}-{counter}"
        save_numbering_settings(numbering, user=user)
        accepted = services.send_document(draft(Quote, clients[0], lines[:2]), user=user)
        services.accept_quote(accepted, user=user)
        services.send_document(draft(Quote, clients[2], lines[2:]), user=user)
        declined = services.send_document(draft(Quote, clients[1], lines[1:2]), user=user)
        services.decline_quote(declined, user=user, reason="Went with another supplier")
        draft(Quote, clients[0], lines[2:])

    def create_online_series(self, company, user, clients, lines, draft):
        """A second named series, "Online shop" (code WEB): one client is numbered in it by
        default, and one of its invoices is issued there."""
        online = save_numbering_settings(NumberingSettings(
            company=company, name="Online shop", code="WEB",
            invoice_pattern="WEB-{YYYY}-{counter}", credit_note_pattern="WEB-CN-{YYYY}-{counter}",
            quote_pattern="WEB-Q-{YYYY}-{counter}"), user=user)
        clients[2].series = online
        clients[2].save(update_fields=["series"])
        services.send_document(draft(Invoice, clients[2], lines[:1]), user=user)
