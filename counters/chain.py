"""
The ledger's hash chain. Each entry's hash covers its own content and the hash of the entry
before it in the same sequence (company, series, period), so that changing or removing an
entry, or the document it records, with raw SQL shows when the audit recomputes the chain.

The content is the entry's ``CONTENT_FIELDS`` as text, joined by '|'. ``entry_hash`` computes
it at issue; the audit recomputes a million of them in the database with ``hash_sql``, an SQL
expression generated from the same field list (a test proves the two agree).
"""

import hashlib
from decimal import Decimal

from django.db import models

from .models import IssuedNumber

GENESIS = ""  # the previous hash of a sequence's first entry

CONTENT_FIELDS = ("company_id", "series", "period", "value", "number", "kind", "document_id",
                  "issue_date", "total", "currency", "previous_hash")


def _text(field: models.Field, value) -> str:
    if isinstance(field, models.DecimalField):
        return f"{Decimal(value):.{field.decimal_places}f}"
    if isinstance(field, models.DateField):
        return value.isoformat()
    return str(value)


def entry_content(entry: IssuedNumber) -> str:
    return "|".join(_text(field, getattr(entry, field.attname)) for field in _fields())


def _fields():
    return [IssuedNumber._meta.get_field(name) for name in CONTENT_FIELDS]


def entry_hash(entry: IssuedNumber) -> str:
    return hashlib.sha256(entry_content(entry).encode()).hexdigest()


# SQLite has no SHA-256 of its own: the audit registers Python's under this name.
SQLITE_SHA256 = "folio_sha256"


def sqlite_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def hash_sql(alias: str, vendor: str) -> str:
    """
    SQL computing ``entry_hash`` of the ledger row ``alias`` on ``vendor``'s database, for a
    statement run with parameters (it writes ``%`` as ``%%``).
    """
    parts = [_text_sql(f"{alias}.{field.column}", field, vendor) for field in _fields()]
    content = " || '|' || ".join(parts)
    if vendor == "postgresql":
        return f"encode(sha256(convert_to({content}, 'UTF8')), 'hex')"
    return f"{SQLITE_SHA256}({content})"


def _text_sql(column: str, field: models.Field, vendor: str) -> str:
    """SQL writing ``column`` as ``_text`` writes its value."""
    if isinstance(field, models.DecimalField):
        # PostgreSQL writes a numeric column with its scale; SQLite stores a REAL.
        if vendor == "postgresql":
            return f"CAST({column} AS TEXT)"
        return f"printf('%%.{field.decimal_places}f', {column})"
    if isinstance(field, models.DateField):
        return f"to_char({column}, 'YYYY-MM-DD')" if vendor == "postgresql" else column
    if isinstance(field, models.CharField):
        return column
    return f"CAST({column} AS TEXT)"
