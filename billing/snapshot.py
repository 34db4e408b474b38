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
SELLER_FIELDS = ("name", "address", "vat_id", "registration_id", "email", "iban", "bic")
BUYER_FIELDS = ("name", "address", "vat_id", "email")
LINE_FIELDS = ("description", "quantity", "unit_price", "tax_rate")


def build(document, lines, totals: money.Totals | None = None) -> dict:
    """
    The content of ``document`` with ``lines`` (whose ``totals`` the caller may already
    have), from their current data, as plain JSON.
    """
    totals = totals or money.totals(lines)
    data = {
        "kind": str(document.kind),
        "seller": {name: getattr(document.company, name) for name in SELLER_FIELDS},
        "buyer": {name: getattr(document.client, name) for name in BUYER_FIELDS},
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


@dataclass(frozen=True)
class Corrected:
    number: str
    issue_date: date | None


@dataclass(frozen=True)
class Content:
    """What a document says, with amounts as ``Decimal`` and dates as ``date``."""

    kind: str
    seller: SimpleNamespace  # SELLER_FIELDS as attributes
    buyer: SimpleNamespace  # BUYER_FIELDS as attributes
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
                            ("quantity", "unit_price", "tax_rate", "net_amount")})
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
    )


def _party(values: dict, fields) -> SimpleNamespace:
    # A snapshot taken before a field existed shows it empty.
    return SimpleNamespace(**{name: values.get(name, "") for name in fields})


def _parse_day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
