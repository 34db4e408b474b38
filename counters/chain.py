"""
The ledger's hash chain. Each entry's hash covers its own content and the hash of the entry
before it in the same sequence (company, series, period), so that changing or removing an
entry, or the document it records, with raw SQL shows when the audit recomputes the chain.

The content is the entry's ``CONTENT_FIELDS`` as text, joined by '|'. ``entry_hash`` computes
it at issue. ``digest`` is the one hash function: SHA-256 of the content, or, when the
installation has a ledger key (``settings.FOLIO_LEDGER_KEY``, which the database never sees),
HMAC-SHA256 under that key, so that someone with database rights alone cannot recompute a
consistent chain. Keyed or not is per installation: every entry is hashed the same way.

Without a key the audit recomputes a million hashes in the database with ``hash_sql``, an SQL
expression generated from the same field list; with a key it cannot (the key would have to be
sent), so the database writes each entry's content (``content_sql``, the expression
``hash_sql`` hashes) and Python streams and hashes it with ``digest``. ``row_hash`` does the
same from a row's raw columns (benchmarks, re-keying). Tests prove they all agree.
"""

import hashlib
import hmac
from datetime import date
from decimal import Decimal

from django.conf import settings
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


def row_content(row) -> str:
    """
    ``entry_content`` of a ledger row as a database cursor returns its ``CONTENT_FIELDS``
    (SQLite gives a date as text and a decimal as a number).
    """
    parts = []
    for field, value in zip(_fields(), row, strict=True):
        if isinstance(field, models.DecimalField):
            value = f"{Decimal(str(value)):.{field.decimal_places}f}"
        elif isinstance(field, models.DateField) and isinstance(value, date):
            value = value.isoformat()
        parts.append(str(value))
    return "|".join(parts)


def _fields():
    return [IssuedNumber._meta.get_field(name) for name in CONTENT_FIELDS]


def ledger_key() -> bytes | None:
    return getattr(settings, "FOLIO_LEDGER_KEY", None) or None


def digest(content: str, key: bytes | None = None) -> str:
    """
    The hash of a chain link's ``content``, as 64 hex digits: HMAC-SHA256 under the ledger
    key when the installation has one, else SHA-256. Every hash chain (the ledger, and any
    other chain of this installation) goes through here. ``key`` overrides the configured
    key (for re-keying).
    """
    key = key if key is not None else ledger_key()
    if key:
        return hmac.digest(key, content.encode(), "sha256").hex()
    return hashlib.sha256(content.encode()).hexdigest()


def key_id(key: bytes | None = None) -> str:
    """A public fingerprint of the ledger key (which key signed, never the key)."""
    key = key if key is not None else ledger_key()
    if not key:
        return ""
    return hmac.digest(key, b"folio ledger key id", "sha256").hex()[:16]


def entry_hash(entry: IssuedNumber) -> str:
    return digest(entry_content(entry))


def row_hash(row, key: bytes | None = None) -> str:
    """``entry_hash`` of a ledger row as a cursor returns its ``CONTENT_FIELDS``."""
    return digest(row_content(row), key)


# SQLite has no SHA-256 of its own: the audit registers Python's under this name.
SQLITE_SHA256 = "folio_sha256"


def sqlite_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def hash_sql(alias: str, vendor: str) -> str:
    """
    SQL computing the unkeyed ``entry_hash`` of the ledger row ``alias`` on ``vendor``'s
    database, for a statement run with parameters (it writes ``%`` as ``%%``). Only for an
    installation without a ledger key.
    """
    content = content_sql(alias, vendor)
    if vendor == "postgresql":
        return f"encode(sha256(convert_to({content}, 'UTF8')), 'hex')"
    return f"{SQLITE_SHA256}({content})"


def content_sql(alias: str, vendor: str) -> str:
    """SQL writing ``entry_content`` of the ledger row ``alias`` (``%`` written ``%%``)."""
    return " || '|' || ".join(
        _text_sql(f"{alias}.{field.column}", field, vendor) for field in _fields())


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
