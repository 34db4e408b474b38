from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from billing import services
from billing.models import Client, Company, CreditNote, Invoice, Membership

DEMO_COMPANY = "Atelier Demo SARL"
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "folio-demo-2026"

CLIENTS = [
    ("Boulangerie Martin", "compta@boulangerie-martin.example", "12 rue du Four, Lyon"),
    ("Nordlicht GmbH", "rechnung@nordlicht.example", "Hafenstraße 3, Hamburg"),
    ("Casa Verde S.L.", "facturas@casaverde.example", "Calle Mayor 8, Madrid"),
]


class Command(BaseCommand):
    help = "Load demo data (a company, its user, clients, drafts and issued documents). Idempotent."

    def handle(self, *args, **options):
        user = self.ensure_user()
        company, created = Company.objects.get_or_create(
            name=DEMO_COMPANY,
            defaults={"address": "3 place des Arts, Paris", "vat_id": "FR12345678901",
                      "email": "billing@atelier-demo.example"},
        )
        Membership.objects.get_or_create(
            user=user, company=company, defaults={"role": Membership.Role.OWNER}
        )
        if created:
            self.create_documents(company, user)
        self.stdout.write(self.style.SUCCESS(
            f"Demo data ready. Open http://127.0.0.1:8000/ and log in as "
            f"{DEMO_USERNAME} / {DEMO_PASSWORD}"
        ))

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
        clients = [
            Client.objects.create(company=company, name=name, email=email, address=address)
            for name, email, address in CLIENTS
        ]
        lines = [
            ("Website redesign", "1", "2400.00", "20"),
            ("Hosting, 12 months", "12", "15.00", "20"),
            ("Training day", "2", "650.00", "10"),
        ]

        def draft(model, client, chosen, **extra):
            document = model.objects.create(company=company, client=client, **extra)
            for position, (description, quantity, price, rate) in enumerate(chosen):
                document.lines.create(
                    position=position, description=description, quantity=Decimal(quantity),
                    unit_price=Decimal(price), tax_rate=Decimal(rate),
                )
            document.update_totals()
            return document

        sent = services.send_document(draft(Invoice, clients[0], lines[:2]), user=user)
        paid = services.send_document(draft(Invoice, clients[1], lines[2:]), user=user)
        services.record_payment(paid, amount=Decimal("500.00"), method="bank_transfer",
                                reference="VIR NORDLICHT 0412", user=user)
        services.mark_paid(paid, user=user, method="card", reference="Stripe ch_3Pq")
        part_paid = services.send_document(draft(Invoice, clients[2], lines[1:]), user=user)
        services.record_payment(part_paid, amount=Decimal("300.00"), method="bank_transfer",
                                reference="TRF CASA VERDE", user=user)
        mistaken = services.record_payment(part_paid, amount=Decimal("100.00"), method="cash",
                                           user=user)
        services.reverse_payment(mistaken, reason="Recorded on the wrong invoice", user=user)
        credit = services.draft_credit_note(
            sent, reason="Hosting not needed",
            amount_lines=[("Hosting, 12 months", Decimal("12"), Decimal("15.00"), Decimal("20"))],
        )
        services.send_document(credit, user=user)
        draft(Invoice, clients[0], lines[2:])
        draft(CreditNote, clients[1], [("Goodwill discount", "1", "50.00", "10")])
