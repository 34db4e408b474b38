"""
The numbering operations. Each runs inside the caller's transaction (``allocate_number``) or
opens exactly one of its own.

Gaplessness rests on three things: the sequence row is locked and incremented inside the
transaction that issues the document, so a rollback hands the value back; the ledger row is
written in that same transaction; and unique constraints refuse any duplicate that slips past.
"""

from dataclasses import dataclass, field
from functools import cache

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import chain, patterns
from .models import (
    IssuedNumber,
    Kind,
    NumberingSettings,
    NumberingSettingsChange,
    NumberJump,
    Sequence,
)


class TransactionRequired(RuntimeError):
    """The allocator was called outside ``transaction.atomic()``: its number could leak."""


class NumberingChanged(ValidationError):
    """
    The numbering settings changed between being read and the allocation, which therefore
    issued nothing (shown to the user like any other reason a send was refused).
    """


@dataclass(frozen=True)
class DocumentWrite:
    """
    The issued document's row, written by the allocation itself: ``number`` and
    ``sequence_value`` get the allocated values, ``values`` the other columns. Writing it in
    the allocating statement means the counter row stays locked for that one statement and
    the commit, nothing more.
    """

    table: str
    pk: int
    values: dict = field(default_factory=dict)


# Per process: the settings last read for each company. The allocating statement checks
# their version under a share lock, so a stale entry is caught and simply read again.
_settings_cache: dict[int, NumberingSettings] = {}


def _settings(company_id, *, fresh=False) -> NumberingSettings:
    if fresh or company_id not in _settings_cache:
        _settings_cache[company_id] = NumberingSettings.for_company(company_id)
    return _settings_cache[company_id]


def allocate_number(*, company_id, kind, document_id, issue_date, total, currency, user=None,
                    document: DocumentWrite | None = None,
                    numbering: NumberingSettings | None = None,
                    commit=False) -> IssuedNumber:
    """
    Give the document ``(kind, document_id)`` the next number of its series, record it in
    the ledger chained to the entry before it, and (with ``document``) write the document.

    Must run inside the transaction that issues the document: the sequence row stays locked
    until it commits, and a rollback returns the number.

    ``numbering`` is the company's settings as the caller read them in this transaction;
    without it the allocator uses its per-process copy. Either way the allocating statement
    checks their version, so stale settings never number anything.

    ``commit`` (PostgreSQL; ignored on SQLite): the allocation is the last statement of the
    transaction, and COMMIT travels with it in the same round trip. The counter row is then
    locked only while the server writes and commits, never while a reply crosses the network
    or waits for this process to be scheduled. Only the owner of the outermost atomic block
    may ask for it, and nothing that can fail may follow: when this returns, the transaction
    is committed. If the statement fails, the COMMIT is not run and the caller rolls back
    as usual.
    """
    if not connection.in_atomic_block:
        raise TransactionRequired(
            "allocate_number() must run inside transaction.atomic(), in the transaction "
            "that issues the document."
        )
    if commit and len(connection.atomic_blocks) != 1:
        raise TransactionRequired(
            "allocate_number(commit=True) must run in the outermost atomic block: an inner "
            "block cannot commit its caller's transaction."
        )
    request = dict(company_id=company_id, kind=str(kind), document_id=document_id,
                   issue_date=issue_date, total=total, currency=currency,
                   user_id=user.pk if user is not None and user.is_authenticated else None)
    if connection.vendor == "postgresql":
        return _allocate_in_one_statement(request, document, numbering, commit)
    return _allocate_step_by_step(request, document, numbering)


def _entry(request, series, period, value, number, previous_hash, entry_hash, pk=None):
    """The ledger entry of ``request``: unsaved without ``pk``, as stored with it."""
    entry = IssuedNumber(
        pk=pk, company_id=request["company_id"], series=series, period=period, value=value,
        number=number, kind=request["kind"], document_id=request["document_id"],
        issue_date=request["issue_date"], total=request["total"],
        currency=request["currency"], previous_hash=previous_hash, entry_hash=entry_hash,
        issued_by_id=request["user_id"],
    )
    entry._state.adding = pk is None
    return entry


def _allocate_step_by_step(request, document, numbering):
    """SQLite: the IMMEDIATE transaction already holds the database's only write lock."""
    company_id = request["company_id"]
    numbering = numbering or _settings(company_id, fresh=True)
    series = numbering.series_for(request["kind"])
    period = patterns.period_key(numbering.reset_period, request["issue_date"])
    table = Sequence._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (company_id, series, period, last, last_hash, prev_hash) "
            f"VALUES (%s, %s, %s, 1, '', '') ON CONFLICT (company_id, series, period) "
            f"DO UPDATE SET last = {table}.last + 1 RETURNING last, last_hash",
            [company_id, series, period],
        )
        value, previous_hash = cursor.fetchone()
    number = numbering.format(request["kind"], request["issue_date"], value)
    entry_hash = chain.entry_hash(
        company_id=company_id, series=series, period=period, value=value, number=number,
        kind=request["kind"], document_id=request["document_id"],
        issue_date=request["issue_date"], total=request["total"],
        currency=request["currency"], previous_hash=previous_hash,
    )
    Sequence.objects.filter(company_id=company_id, series=series, period=period).update(
        last_hash=entry_hash, prev_hash=previous_hash)
    entry = _entry(request, series, period, value, number, previous_hash, entry_hash)
    entry.save(force_insert=True)
    if document is not None:
        values = {**document.values, "number": number, "sequence_value": value}
        columns = ", ".join(f"{column} = %s" for column in values)
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {document.table} SET {columns} WHERE id = %s",
                           [*values.values(), document.pk])
    return entry


def _allocate_in_one_statement(request, document, numbering, commit):
    """
    PostgreSQL: one statement checks the settings' version under a share lock, increments
    the sequence (computing the number and the chained hash in the same row update), writes
    the ledger entry and the document. A stale version returns nothing: read the settings
    again and retry, unless the transaction has already committed with the statement.
    """
    company_id = request["company_id"]
    numbering = numbering or _settings(company_id)
    for _attempt in range(3):
        row = _run_allocation(numbering, request, document, commit)
        if row is not None:
            pk, value, number, previous_hash, entry_hash, series, period = row
            return _entry(request, series, period, value, number, previous_hash, entry_hash,
                          pk)
        _settings_cache.pop(company_id, None)
        if commit:  # the transaction has ended, with nothing written: the caller may retry
            break
        numbering = _settings(company_id, fresh=True)
    raise NumberingChanged(
        _("The numbering settings changed while the document was being issued; nothing was "
          "issued. Please send it again."),
        code="numbering_changed",
    )


def _run_allocation(numbering, request, document, commit):
    kind, issue_date = request["kind"], request["issue_date"]
    series = numbering.series_for(kind)
    period = patterns.period_key(numbering.reset_period, issue_date)
    prefix, suffix = patterns.split_at_counter(numbering.pattern_for(kind), issue_date)
    head, tail = chain.content_around_value(
        company_id=request["company_id"], series=series, period=period, kind=kind,
        document_id=request["document_id"], issue_date=issue_date, total=request["total"],
        currency=request["currency"],
    )
    params = dict(request, series=series, period=period, version=numbering.version,
                  settings_id=numbering.pk,
                  prefix=prefix, suffix=suffix, padding=numbering.padding, head=head, tail=tail)
    columns = ()
    if document is not None:
        columns = tuple(document.values)
        params.update({f"doc_{column}": value for column, value in document.values.items()},
                      doc_pk=document.pk)
    sql = _allocation_sql(document and document.table, columns)
    with connection.cursor() as cursor:
        if commit:
            raw = connection.connection
            # COMMIT as a plain statement behind the allocation: the server skips it if the
            # allocation fails. (psycopg's commit() would add a second Sync to the pipeline.)
            with connection.wrap_database_errors, raw.cursor() as end, raw.pipeline():
                cursor.execute(sql, params)
                end.execute(b"COMMIT", prepare=False)
        else:
            cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else (*row, series, period)


@cache
def _allocation_sql(document_table, document_columns):
    """
    The allocating statement, written once per document table: the same text every time,
    so that psycopg prepares it and PostgreSQL plans it once per connection.
    """
    def number(value):
        return (f"%(prefix)s || repeat('0', greatest(%(padding)s - length(({value})::text), 0))"
                f" || ({value})::text || %(suffix)s")

    def digest(value, previous):
        return (f"encode(sha256(convert_to(%(head)s || ({value})::text || '|' || "
                f"{number(value)} || %(tail)s || {previous}, 'UTF8')), 'hex')")

    settings_table = NumberingSettings._meta.db_table
    sequences = Sequence._meta.db_table
    ledger = IssuedNumber._meta.db_table
    write_document = ""
    if document_table is not None:
        assignments = "".join(f", {column} = %(doc_{column})s" for column in document_columns)
        write_document = (
            f", document AS (UPDATE {document_table} SET number = entry.number, "
            f"sequence_value = entry.value{assignments} FROM entry "
            f"WHERE {document_table}.id = %(doc_pk)s RETURNING 1)"
        )
    return f"""
        WITH layout AS (
            SELECT 1 FROM {settings_table}
            WHERE id = %(settings_id)s AND company_id = %(company_id)s
              AND version = %(version)s
            FOR KEY SHARE
        ), seq AS (
            INSERT INTO {sequences} AS s (company_id, series, period, last, prev_hash, last_hash)
            SELECT %(company_id)s, %(series)s, %(period)s, 1, '', {digest("1", "''")}
            FROM layout
            ON CONFLICT (company_id, series, period) DO UPDATE
            SET last = s.last + 1, prev_hash = s.last_hash,
                last_hash = {digest("s.last + 1", "s.last_hash")}
            RETURNING last, prev_hash, last_hash
        ), entry AS (
            INSERT INTO {ledger} (company_id, series, period, value, number, kind, document_id,
                                  issue_date, total, currency, previous_hash, entry_hash,
                                  issued_by_id, issued_at)
            SELECT %(company_id)s, %(series)s, %(period)s, seq.last, {number("seq.last")},
                   %(kind)s, %(document_id)s, %(issue_date)s, %(total)s, %(currency)s,
                   seq.prev_hash, seq.last_hash, %(user_id)s, now()
            FROM seq
            RETURNING id, value, number, previous_hash, entry_hash
        ){write_document}
        SELECT id, value, number, previous_hash, entry_hash FROM entry
    """


def _next_value(numbering, kind, issue_date, *, layout_changed=False) -> int:
    series = numbering.series_for(kind)
    period = patterns.period_key(numbering.reset_period, issue_date)
    rows = Sequence.objects.filter(company_id=numbering.company_id)
    if layout_changed:
        # The carry-over rule of save_numbering_settings.
        lasts = [last for row_period, last in rows.values_list("period", "last")
                 if patterns.periods_overlap(row_period, period)]
    else:
        lasts = list(rows.filter(series=series, period=period).values_list("last", flat=True))
    return max(lasts, default=0) + 1


def preview_number(document, issue_date=None) -> str:
    """
    The number ``document`` would take if it were issued now. Reads only: consumes nothing,
    and another document issued first will take this number instead.
    """
    issue_date = issue_date or timezone.localdate()
    numbering = NumberingSettings.for_company(document.company_id)
    return numbering.format(document.kind, issue_date,
                            _next_value(numbering, document.kind, issue_date))


def preview_settings(numbering: NumberingSettings, issue_date=None) -> dict:
    """
    The next invoice and credit-note numbers if ``numbering`` (unsaved, perhaps invalid)
    were saved now: {kind: number}. Reads only.
    """
    issue_date = issue_date or timezone.localdate()
    stored = NumberingSettings.objects.filter(pk=numbering.pk).first() if numbering.pk else None
    changed = stored is not None and any(
        getattr(stored, f) != getattr(numbering, f) for f in NumberingSettings.LAYOUT_FIELDS
    )
    return {
        kind: numbering.format(kind, issue_date,
                               _next_value(numbering, kind, issue_date, layout_changed=changed))
        for kind in Kind
    }


def _move_forward(sequence, next_value, reason, user):
    """Make ``next_value`` the next value of a locked ``sequence``, recording the jump."""
    if next_value <= sequence.last + 1:
        return None
    jump = NumberJump.objects.create(
        company_id=sequence.company_id,
        series=sequence.series,
        period=sequence.period,
        first_value=sequence.last + 1,
        last_value=next_value - 1,
        reason=reason,
        created_by=user if user is not None and user.is_authenticated else None,
    )
    sequence.last = next_value - 1
    sequence.save(update_fields=["last"])
    return jump


@transaction.atomic
def set_next_number(*, company_id, series, period, next_value, reason, user=None) -> NumberJump:
    """
    Move a series forward so that its next value is ``next_value`` (e.g. when migrating from
    another system). Never backwards: values already handed out are never handed out again.
    The skipped values are recorded as an explained jump.
    """
    if not (reason or "").strip():
        raise ValidationError({"reason": _("Say why the numbering jumps forward.")})
    sequence, _created = Sequence.objects.select_for_update().get_or_create(
        company_id=company_id, series=series, period=period
    )
    if next_value <= sequence.last:
        raise ValidationError({
            "next_value": _(
                "The next number can only move forward: %(value)d has already been issued "
                "in this series; the next one is %(next)d."
            ) % {"value": sequence.last, "next": sequence.last + 1}
        })
    return _move_forward(sequence, next_value, reason.strip(), user)


@transaction.atomic
def save_numbering_settings(numbering: NumberingSettings, user=None) -> NumberingSettings:
    """
    Validate and save ``numbering``, record the change, and when the counter layout changed
    (shared/separate counters, reset period) carry the current period's values over.

    The rule for a layout change: every series of the new layout starts the current period
    after the highest value any series has used in a period that overlaps it. Numbers so stay
    unique and increasing; the values skipped are recorded as explained jumps.
    """
    numbering.full_clean()
    before = (
        NumberingSettings.objects.select_for_update().filter(pk=numbering.pk).first()
        if numbering.pk else None
    )
    old = before.as_dict() if before else {}
    new = numbering.as_dict()
    if before and old == new:
        return numbering
    # A new version makes every allocator that cached the old settings read them again.
    numbering.version = (before.version if before else numbering.version) + 1
    numbering.save()
    NumberingSettingsChange.objects.create(
        company_id=numbering.company_id,
        changed_by=user if user is not None and user.is_authenticated else None,
        old=old,
        new=new,
    )
    if before and any(old[f] != new[f] for f in NumberingSettings.LAYOUT_FIELDS):
        _carry_values_over(numbering, user)
    return numbering


def _carry_values_over(numbering, user):
    period = patterns.period_key(numbering.reset_period, timezone.localdate())
    sequences = list(
        Sequence.objects.select_for_update().filter(company_id=numbering.company_id)
    )
    floor = max(
        (s.last for s in sequences if patterns.periods_overlap(s.period, period)), default=0
    )
    reason = _("Counter layout changed (shared counter: %(shared)s, restart: %(reset)s).") % {
        "shared": _("yes") if numbering.shared_counter else _("no"),
        "reset": numbering.get_reset_period_display(),
    }
    for series in numbering.series_in_use():
        sequence, _created = Sequence.objects.select_for_update().get_or_create(
            company_id=numbering.company_id, series=series, period=period
        )
        _move_forward(sequence, floor + 1, reason, user)
