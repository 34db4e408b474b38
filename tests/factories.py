from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from billing.models import (
    Client,
    Company,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    Membership,
    Quote,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company

    name = factory.Sequence(lambda n: f"Company {n}")
    # What an e-invoice needs of its seller (EN 16931, Peppol BIS 3.0).
    street = "3 place des Arts"
    postal_code = "75001"
    city = "Paris"
    country = "FR"
    vat_id = "FR44732829320"
    registration_id = "732829320"
    iban = "FR7630006000011234567890189"
    bic = "BNPAFRPP"
    endpoint_scheme = "0009"
    endpoint_id = "73282932000017"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    company = factory.SubFactory(CompanyFactory)


class ClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Client

    company = factory.SubFactory(CompanyFactory)
    name = factory.Sequence(lambda n: f"Client {n}")
    email = factory.LazyAttribute(lambda c: f"billing{c.name.split()[-1]}@client.example")
    # What an e-invoice needs of its buyer.
    street = "12 rue du Four"
    postal_code = "69001"
    city = "Lyon"
    country = "FR"
    vat_id = "FR03552081317"
    endpoint_scheme = "0009"
    endpoint_id = "55208131700018"


class DocumentFactory(factory.django.DjangoModelFactory):
    """A draft with ``lines`` lines (one by default) and its totals stored."""

    class Meta:
        abstract = True
        skip_postgeneration_save = True

    client = factory.SubFactory(ClientFactory)
    company = factory.LazyAttribute(lambda d: d.client.company)

    @factory.post_generation
    def lines(self, create, extracted, **kwargs):
        if not create:
            return
        specs = extracted if extracted is not None else [
            {"description": "Consulting", "quantity": Decimal("2"),
             "unit_price": Decimal("100.00"), "tax_rate": Decimal("20")},
        ]
        for position, spec in enumerate(specs):
            self.lines.create(position=position, **spec)
        self.update_totals()


class InvoiceFactory(DocumentFactory):
    class Meta:
        model = Invoice


class CreditNoteFactory(DocumentFactory):
    class Meta:
        model = CreditNote


class QuoteFactory(DocumentFactory):
    class Meta:
        model = Quote


__all__ = [
    "ClientFactory", "CompanyFactory", "CreditNoteFactory", "CreditNoteLine", "InvoiceFactory",
    "InvoiceLine", "MembershipFactory", "QuoteFactory", "UserFactory",
]


def configure_numbering(company, **fields):
    """Change ``company``'s numbering settings the way the settings page does."""
    from counters.models import NumberingSettings
    from counters.services import save_numbering_settings

    numbering = NumberingSettings.for_company(company.pk)
    for name, value in fields.items():
        setattr(numbering, name, value)
    return save_numbering_settings(numbering)
