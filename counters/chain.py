"""
Hash chains: the ledger's, one per sequence (company, series, period), and the history's, one
per company. Each record's hash covers its own content and the hash of the record before it
in its chain, so that changing or removing a record, or the document it records, with raw
SQL shows when the audit recomputes the chains.

A record's content is its model's ``HASHED_FIELDS`` as text, joined by '|', then its
``OPTIONAL_HASHED_FIELDS`` (fields added after records were first chained), each as '|' and
its text, up to the last one that is not empty: a record without them keeps the content it
was chained with, and a later field's value can never pass for an earlier one's.
``record_hash`` computes it when a record is written. ``digest`` is the one hash function:
SHA-256 of the content, or, when the
installation has a ledger key (``settings.FOLIO_LEDGER_KEY``, which the database never sees),
HMAC-SHA256 under that key, so that someone with database rights alone cannot recompute a
consistent chain. Keyed or not is per installation: every record is hashed the same way.

Without a key the audit recomputes millions of hashes in the database with ``hash_sql``, an
SQL expression generated from the same fields; with a key it cannot (the key would have to be
sent), so the database writes each record's content (``content_sql``, the expression
``hash_sql`` hashes) and Python hashes it with ``digest``. ``row_hash`` does the same from a
row's raw columns (benchmarks, re-keying). Tests prove they all agree.
"""

import hashlib
import hmac
from datetime import UTC, date, datetime
from decimal import Decimal

from django.conf import settings
from django.db import models

from .models import IssuedNumber

GENESIS = ""  # the previous hash of a chain's first record


def content_fields(model) -> tuple[str, ...]:
    """The fields a record's content is made of, in order (the optional ones last)."""
    return (*model.HASHED_FIELDS, *_optional(model))


def _optional(model) -> tuple[str, ...]:
    return tuple(getattr(model, "OPTIONAL_HASHED_FIELDS", ()))


# The ledger's, in the order ``row_content`` reads a ledger row.
CONTENT_FIELDS = content_fields(IssuedNumber)


def ledger_key() -> bytes | None:
    return getattr(settings, "FOLIO_LEDGER_KEY", None) or None


def digest(content: str, key: bytes | None = None) -> str:
    """
    The hash of a chain link's ``content``, as 64 hex digits: HMAC-SHA256 under the ledger
    key when the installation has one, else SHA-256. Every hash chain goes through here.
    ``key`` overrides the configured key (for re-keying; ``b""``: unkeyed).
    """
    return digester(key)(content)


def digester(key: bytes | None = None):
    """
    ``digest`` as a function of the content alone, its key set up once: for hashing many
    contents (the audit), where setting the key up again for each one would cost more than
    the hash itself.
    """
    key = key if key is not None else ledger_key()
    if not key:
        return lambda content: hashlib.sha256(content.encode()).hexdigest()
    keyed = hmac.new(key, digestmod="sha256")

    def keyed_digest(content: str) -> str:
        link = keyed.copy()
        link.update(content.encode())
        return link.hexdigest()

    return keyed_digest


def key_id(key: bytes | None = None) -> str:
    """A public fingerprint of the ledger key (which key signed, never the key)."""
    key = key if key is not None else ledger_key()
    if not key:
        return ""
    return hmac.digest(key, b"folio ledger key id", "sha256").hex()[:16]


def record_content(record: models.Model, model=None) -> str:
    """``record``'s content; ``model`` names the fields when ``record`` is a migration's."""
    model = model or type(record)
    return _join(model, [_text(field, getattr(record, field.attname))
                         for field in _fields(model)])


def record_hash(record: models.Model, model=None, key: bytes | None = None) -> str:
    return digest(record_content(record, model), key)


def row_content(row, model=IssuedNumber) -> str:
    """
    ``record_content`` of a row as a database cursor returns its ``content_fields`` (SQLite
    gives a date as text and a decimal as a number).
    """
    texts = []
    for field, value in zip(_fields(model), row, strict=True):
        if isinstance(field, models.DecimalField) and value is not None:
            value = Decimal(str(value))
        elif (isinstance(field, models.DateField) and not isinstance(field, models.DateTimeField)
              and not isinstance(value, date)):
            texts.append("" if value is None else str(value))
            continue
        texts.append(_text(field, value))
    return _join(model, texts)


def row_hash(row, key: bytes | None = None, model=IssuedNumber) -> str:
    """``record_hash`` of a row as a cursor returns its ``content_fields``."""
    return digest(row_content(row, model), key)


# The ledger's names for the same functions.
entry_content = record_content
entry_hash = record_hash


def _fields(model):
    return [model._meta.get_field(name) for name in content_fields(model)]


def _join(model, texts) -> str:
    count = len(_optional(model))
    if not count:
        return "|".join(texts)
    texts, optional = texts[:-count], list(texts[-count:])
    while optional and not optional[-1]:
        optional.pop()
    return "|".join(texts) + "".join(f"|{text}" for text in optional)


def _text(field: models.Field, value) -> str:
    if value is None:
        return ""
    if isinstance(field, models.DecimalField):
        return f"{Decimal(value):.{field.decimal_places}f}"
    if isinstance(field, models.DateTimeField):
        if not isinstance(value, datetime):
            raise TypeError(f"{field.name}: a datetime, not {value!r}")
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


def hash_sql(alias: str, vendor: str, model=IssuedNumber) -> str:
    """
    SQL computing the unkeyed ``record_hash`` of the ``model`` row ``alias`` on ``vendor``'s
    database, for a statement run with parameters (it writes ``%`` as ``%%``). Only for an
    installation without a ledger key.
    """
    return sha256_sql(content_sql(alias, vendor, model), vendor)


def content_sql(alias: str, vendor: str, model=IssuedNumber) -> str:
    """SQL writing ``record_content`` of the ``model`` row ``alias`` (``%`` written ``%%``)."""
    fields = _fields(model)
    count = len(_optional(model))
    texts = [_text_sql(f"{alias}.{field.column}", field, vendor) for field in fields]
    if count:
        texts, optional = texts[:-count], texts[-count:]
    content = " || '|' || ".join(texts)
    if count:
        content += " || " + _optional_sql(optional)
    return content


def _optional_sql(texts) -> str:
    """SQL for ``_join``'s tail: '|' and each text, up to the last that is not empty."""
    if not texts:
        return "''"
    all_empty = " AND ".join(f"{text} = ''" for text in texts)
    return (f"CASE WHEN {all_empty} THEN '' "
            f"ELSE '|' || {texts[0]} || {_optional_sql(texts[1:])} END")


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
