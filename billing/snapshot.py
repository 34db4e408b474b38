"""
What a document says: its parties, lines and totals, as one structure that pages, PDFs,
e-mails and exports read.

A draft's content is read from its current data. When the document is issued, the ``send``
transition stores that content as canonical JSON (``Document.snapshot``): from then on
everything shown or sent reads the snapshot only, so editing the client or the company later
changes nothing issued. The ledger entry's hash covers the snapshot's digest, so a raw
change of the snapshot is reported ``tampered`` by the audit.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

from . import money

# The party fields frozen at issue, as they are named on Company (the seller) and Client
# (the buyer).
ADDRESS_FIELDS = ("street", "postal_code", "city", "country")
ENDPOINT_FIELDS = ("endpoint_scheme", "endpoint_id")
SELLER_FIELDS = ("name", *ADDRESS_FIELDS, "vat_id", "registration_id", "email", "iban", "bic",
                 *ENDPOINT_FIELDS)
BUYER_FIELDS = ("name", *ADDRESS_FIELDS, "vat_id", "email", *ENDPOINT_FIELDS)
LINE_FIELDS = ("description", "quantity", "unit_price", "tax_rate", "unit_code",
               "tax_category", "tax_exemption_reason", "tax_exemption_code")
# What a line of a snapshot taken before a field existed says.
LINE_DEFAULTS = {"unit_code": "C62", "tax_category": "S", "tax_exemption_reason": "",
                 "tax_exemption_code": ""}


def build(document, lines, totals: money.Totals | None = None) -> dict:
    """
    The content of ``document`` with ``lines`` (whose ``totals`` the caller may already
    have), from their current data, as plain JSON.
    """
    totals = totals or money.totals(lines)
    data = {
        "kind": str(document.kind),
        "seller": {name: str(getattr(document.company, name)) for name in SELLER_FIELDS},
        "buyer": {name: str(getattr(document.client, name)) for name in BUYER_FIELDS},
        "buyer_reference": document.buyer_reference,
        "currency": document.currency,
        "locale": document.client.document_language,  # the language it is written in
        "issue_date": _day(document.issue_date),
        "due_date": _day(document.due_date),
        "payment_terms_days": document.company.payment_terms_days,
        "notes": document.notes,
        "lines": [
            {**{name: str(getattr(line, name)) for name in LINE_FIELDS},
             "net_amount": str(line.net_amount)}
            for line in lines
        ],
        "groups": [
            {"category": group.category, "rate": str(group.rate),
             "taxable": str(group.taxable), "tax": str(group.tax)}
            for group in totals.groups
        ],
        "subtotal": str(totals.subtotal),
        "tax": str(totals.tax),
        "total": str(totals.total),
    }
    if hasattr(document, "invoice_number"):  # a credit note
        data["corrects"] = {"number": document.invoice_number,
                            "issue_date": _day(document.invoice_issue_date)}
        data["reason"] = document.reason
    if hasattr(document, "valid_until"):  # a quote
        data["valid_until"] = _day(document.valid_until)
    return data


def dumps(data: dict) -> str:
    """Canonical JSON: the same content always gives the same text, and so the same digest."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(text: str) -> str:
    """The SHA-256 of a stored snapshot's text, as the audit recomputes it in the database."""
    return hashlib.sha256(text.encode()).hexdigest()


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


# --- Reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    description: str
    quantity: Decimal
    unit_price: Decimal
    tax_rate: Decimal
    net_amount: Decimal
    unit_code: str = "C62"
    tax_category: str = "S"
    tax_exemption_reason: str = ""
    tax_exemption_code: str = ""


class Party(SimpleNamespace):
    """A seller or a buyer: the fields of ``SELLER_FIELDS`` or ``BUYER_FIELDS``."""

    @property
    def address_lines(self) -> list[str]:
        if getattr(self, "address", ""):  # a snapshot taken when addresses were free text
            return self.address.splitlines()
        return address_lines(self)


def address_lines(party) -> list[str]:
    """
    ``party``'s postal address as printed: street, postal code and city, the country's name
    in the active language.
    """
    from django_countries import countries

    place = " ".join(part for part in (party.postal_code, party.city) if part)
    return [part for part in (party.street, place, countries.name(str(party.country)))
            if part]


@dataclass(frozen=True)
class TaxBreakdown:
    """A tax group (``money.TaxGroup``) with the exemption its lines give (EN 16931 BG-23)."""

    category: str
    rate: Decimal
    taxable: Decimal
    tax: Decimal
    exemption_reason: str = ""
    exemption_code: str = ""


@dataclass(frozen=True)
class Corrected:
    number: str
    issue_date: date | None


@dataclass(frozen=True)
class Content:
    """What a document says, with amounts as ``Decimal`` and dates as ``date``."""

    kind: str
    seller: Party  # SELLER_FIELDS as attributes
    buyer: Party  # BUYER_FIELDS as attributes
    currency: str
    locale: str
    issue_date: date | None
    due_date: date | None
    payment_terms_days: int
    notes: str
    lines: tuple[Line, ...]
    groups: tuple[money.TaxGroup, ...]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    corrects: Corrected | None = None
    reason: str = ""
    buyer_reference: str = ""
    valid_until: date | None = None  # a quote's

    @property
    def breakdown(self) -> tuple[TaxBreakdown, ...]:
        """The tax groups, each with the exemption reason and code of its lines."""
        exemptions = {}
        for line in self.lines:
            if line.tax_exemption_reason or line.tax_exemption_code:
                exemptions.setdefault((line.tax_category, line.tax_rate),
                                      (line.tax_exemption_reason, line.tax_exemption_code))
        return tuple(
            TaxBreakdown(group.category, group.rate, group.taxable, group.tax,
                         *exemptions.get((group.category, group.rate), ("", "")))
            for group in self.groups)


def read(data: dict) -> Content:
    """``data`` (from ``build``, or a stored snapshot) as a ``Content``."""
    return Content(
        kind=data["kind"],
        seller=_party(data["seller"], SELLER_FIELDS),
        buyer=_party(data["buyer"], BUYER_FIELDS),
        currency=data["currency"],
        locale=data["locale"],
        issue_date=_parse_day(data["issue_date"]),
        due_date=_parse_day(data["due_date"]),
        payment_terms_days=data["payment_terms_days"],
        notes=data["notes"],
        lines=tuple(Line(description=line["description"],
                         **{name: Decimal(line[name]) for name in
                            ("quantity", "unit_price", "tax_rate", "net_amount")},
                         **{name: line.get(name, default)
                            for name, default in LINE_DEFAULTS.items()})
                    for line in data["lines"]),
        groups=tuple(money.TaxGroup(group["category"], Decimal(group["rate"]),
                                    Decimal(group["taxable"]), Decimal(group["tax"]))
                     for group in data["groups"]),
        subtotal=Decimal(data["subtotal"]),
        tax=Decimal(data["tax"]),
        total=Decimal(data["total"]),
        corrects=Corrected(data["corrects"]["number"],
                           _parse_day(data["corrects"]["issue_date"]))
        if "corrects" in data else None,
        reason=data.get("reason", ""),
        buyer_reference=data.get("buyer_reference", ""),
        valid_until=_parse_day(data.get("valid_until")),
    )


def _party(values: dict, fields) -> Party:
    # A snapshot taken before a field existed shows it empty; one taken when addresses were
    # free text keeps its address.
    return Party(**{name: values.get(name, "") for name in fields},
                 address=values.get("address", ""))


def _parse_day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
