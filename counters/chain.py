"""
Hash chains: the ledger's, one per sequence (company, series, period), and the history's, one
per company. Each record's hash covers its own content and the hash of the record before it
in its chain, so that changing or removing a record, or the document it records, with raw
SQL shows when the audit recomputes the chains.

A record's content is its model's ``HASHED_FIELDS`` as text, joined by '|', then, when it
has one, '|' and its ``OPTIONAL_HASHED_FIELD`` (a field added after records were first
chained: older records keep their content). ``record_hash`` computes it when a record is
written; the audit recomputes millions of them in the database with ``hash_sql``, an SQL
expression generated from the same fields (a test proves the two agree).
"""

import hashlib
from datetime import UTC
from decimal import Decimal

from django.db import models

GENESIS = ""  # the previous hash of a chain's first record


def digest(content: str) -> str:
    """The hash of a record's content."""
    return hashlib.sha256(content.encode()).hexdigest()


def record_content(record: models.Model, model=None) -> str:
    """``record``'s content; ``model`` names the fields when ``record`` is a migration's."""
    model = model or type(record)
    content = "|".join(_text(field, getattr(record, field.attname))
                       for field in _fields(model))
    optional = getattr(model, "OPTIONAL_HASHED_FIELD", None)
    if optional and getattr(record, optional):
        content += f"|{getattr(record, optional)}"
    return content


def record_hash(record: models.Model, model=None) -> str:
    return digest(record_content(record, model))


def _fields(model):
    return [model._meta.get_field(name) for name in model.HASHED_FIELDS]


def _text(field: models.Field, value) -> str:
    if value is None:
        return ""
    if isinstance(field, models.DecimalField):
        return f"{Decimal(value):.{field.decimal_places}f}"
    if isinstance(field, models.DateTimeField):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    if isinstance(field, models.DateField):
        return value.isoformat()
    return str(value)


# SQLite has no SHA-256 of its own: the audit registers Python's under this name.
SQLITE_SHA256 = "folio_sha256"


def sqlite_sha256(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


def sha256_sql(expression: str, vendor: str) -> str:
    """SQL for the hex SHA-256 of a text ``expression``."""
    if vendor == "postgresql":
        return f"encode(sha256(convert_to({expression}, 'UTF8')), 'hex')"
    return f"{SQLITE_SHA256}({expression})"


def hash_sql(model, alias: str, vendor: str) -> str:
    """
    SQL computing ``record_hash`` of the ``model`` row ``alias`` on ``vendor``'s database,
    for a statement run with parameters (it writes ``%`` as ``%%``).
    """
    parts = [_text_sql(f"{alias}.{field.column}", field, vendor) for field in _fields(model)]
    content = " || '|' || ".join(parts)
    optional = getattr(model, "OPTIONAL_HASHED_FIELD", None)
    if optional:
        column = f"{alias}.{model._meta.get_field(optional).column}"
        content += f" || CASE WHEN {column} = '' THEN '' ELSE '|' || {column} END"
    return sha256_sql(content, vendor)


def _text_sql(column: str, field: models.Field, vendor: str) -> str:
    """SQL writing ``column`` as ``_text`` writes its value."""
    if isinstance(field, models.DecimalField):
        # PostgreSQL writes a numeric column with its scale; SQLite stores a REAL.
        if vendor == "postgresql":
            return f"CAST({column} AS TEXT)"
        return f"printf('%%.{field.decimal_places}f', {column})"
    if isinstance(field, models.DateTimeField):
        if vendor == "postgresql":
            return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
        # Django stores UTC as text, without the fraction when it is zero.
        return (f"replace(CASE WHEN length({column}) = 19 THEN {column} || '.000000' "
                f"ELSE {column} END, ' ', 'T')")
    if isinstance(field, models.DateField):
        return f"to_char({column}, 'YYYY-MM-DD')" if vendor == "postgresql" else column
    if isinstance(field, models.CharField | models.TextField):
        return f"COALESCE({column}, '')"
    return f"COALESCE(CAST({column} AS TEXT), '')"
