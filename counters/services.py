"""
The numbering operations. Each runs inside the caller's transaction (``allocate_number``) or
opens exactly one of its own.

Gaplessness rests on three things: the sequence row is locked and incremented inside the
transaction that issues the document, so a rollback hands the value back; the ledger row is
written in that same transaction; and unique constraints refuse any duplicate that slips past.
"""

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import chain, patterns
from .models import (
    EXAMPLE_CLIENT_REF,
    ClientSequence,
    IssuedNumber,
    Kind,
    NumberingSettings,
    NumberingSettingsChange,
    NumberJump,
    Sequence,
    series_key,
)


class TransactionRequired(RuntimeError):
    """The allocator was called outside ``transaction.atomic()``: its number could leak."""


def missing_client_ref(numbering, kind, client_ref) -> ValidationError | None:
    """The refusal to number a document whose pattern prints a client code it lacks."""
    if client_ref or not numbering.needs_client_ref(kind):
        return None
    return ValidationError(
        _("The numbering pattern prints the client's code ({client_ref}), and this client "
          "has none: give the client a code first."),
        code="client_ref_missing",
    )


def allocate_number(*, company_id, kind, document_id, issue_date, total, currency,
                    snapshot_digest="", client_id=None, client_ref="", series_id=None,
                    user=None) -> IssuedNumber:
    """
    Give the document ``(kind, document_id)`` the next number of its series (the company's
    series ``series_id``, or its default series) and record it in the ledger, chained to the
    entry before it. ``snapshot_digest`` is the digest of what the document says as issued:
    the entry's hash covers it. The entry's ``numbering`` (not a column) is the series it
    was numbered in.

    ``client_id`` and ``client_ref`` are the document's client and its code: when the
    pattern carries ``{client_counter}``, the client's own counter in the series and period
    is taken too (recorded and hashed with the entry); when it prints ``{client_ref}``, a
    client without a code is refused (ValidationError) before any value is taken.

    Must run inside the transaction that issues the document, as its last step: the
    company's numbering settings and the sequence row stay locked until it commits, and a
    rollback returns the number.
    """
    if not connection.in_atomic_block:
        raise TransactionRequired(
            "allocate_number() must run inside transaction.atomic(), in the transaction "
            "that issues the document."
        )
    # Locked, so that the counter layout cannot change between choosing the counter and the
    # commit (save_numbering_settings locks it too, before it carries values over).
    numbering = locked_series(company_id, series_id)
    refusal = missing_client_ref(numbering, kind, client_ref)
    if refusal is not None:
        raise refusal
    series = numbering.series_for(kind)
    period = numbering.period_for(issue_date)
    value, previous_hash = take_next(Sequence, company_id=company_id, series=series,
                                     period=period)
    client_value = None
    if numbering.uses_client_counter(kind):
        if client_id is None:
            raise ValueError("allocate_number(): this pattern counts per client: pass client_id")
        client_value, = take_next(ClientSequence, company_id=company_id, client_id=client_id,
                                  series=series, period=period)
    entry = IssuedNumber(
        company_id=company_id, series=series, period=period, value=value,
        number=numbering.format(kind, issue_date, value, client_value=client_value,
                                client_ref=client_ref),
        kind=str(kind), document_id=document_id, issue_date=issue_date, total=total,
        currency=currency, snapshot_digest=snapshot_digest,
        client_id=client_id if client_value is not None else None, client_value=client_value,
        previous_hash=previous_hash,
        issued_by=user if user is not None and user.is_authenticated else None,
    )
    entry.entry_hash = chain.record_hash(entry)
    entry.save(force_insert=True)
    Sequence.objects.filter(company_id=company_id, series=series, period=period).update(
        last_hash=entry.entry_hash)
    entry.numbering = numbering
    return entry


def locked_series(company_id, series_id=None) -> NumberingSettings:
    """The company's series ``series_id`` (default: its default series, made on first use),
    locked until the transaction ends."""
    rows = NumberingSettings.objects.select_for_update()
    if series_id is not None:
        try:
            return rows.get(company_id=company_id, pk=series_id)
        except NumberingSettings.DoesNotExist:
            raise ValidationError(_("This document's numbering series no longer exists: "
                                    "choose another one."), code="series_gone") from None
    numbering, _created = rows.get_or_create(company_id=company_id, is_default=True,
                                             defaults={"name": _("Main")})
    return numbering


def take_next(model, **key) -> tuple:
    """
    Take the next value of the counter ``model`` (a row with ``last``) identified by
    ``key``, creating it at 1, in one statement that leaves the row locked until the
    transaction ends: (the value, the hash of the record before it) for a chain head (a row
    with ``last_hash``), (the value,) for a plain counter.
    """
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(column) for column in key)
    head = any(field.name == "last_hash" for field in model._meta.concrete_fields)
    insert, values, returning = ("last, last_hash", "1, %s", "last, last_hash") if head \
        else ("last", "1", "last")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS h ({columns}, {insert}) "
            f"VALUES ({', '.join(['%s'] * len(key))}, {values}) ON CONFLICT ({columns}) "
            f"DO UPDATE SET last = h.last + 1 RETURNING {returning}",
            [*key.values(), *([chain.GENESIS] if head else [])],
        )
        return cursor.fetchone()


def _next_value(numbering, kind, issue_date, *, layout_changed=False) -> int:
    series = numbering.series_for(kind)
    period = numbering.period_for(issue_date)
    rows = Sequence.objects.filter(company_id=numbering.company_id,
                                   series__in=numbering.counter_keys())
    if layout_changed:
        # The carry-over rule of save_numbering_settings.
        lasts = [last for row_period, last in rows.values_list("period", "last")
                 if patterns.periods_overlap(row_period, period)]
    else:
        lasts = list(rows.filter(series=series, period=period).values_list("last", flat=True))
    return max(lasts, default=0) + 1


def _next_client_value(numbering, kind, issue_date, client_id) -> int | None:
    if not numbering.uses_client_counter(kind):
        return None
    last = ClientSequence.objects.filter(
        company_id=numbering.company_id, client_id=client_id,
        series=numbering.series_for(kind), period=numbering.period_for(issue_date),
    ).values_list("last", flat=True).first()
    return (last or 0) + 1


def preview_number(document, issue_date=None) -> str:
    """
    The number ``document`` would take if it were issued now. Reads only: consumes nothing,
    and another document issued first will take this number instead. The document's
    ``client_id`` and ``client_ref`` (its client's code) fill the per-client tokens; its
    ``issuing_series_id`` (None: the default) is the series it would be numbered in.
    """
    issue_date = issue_date or timezone.localdate()
    numbering = NumberingSettings.for_company(document.company_id,
                                              getattr(document, "issuing_series_id", None))
    client_id = getattr(document, "client_id", None)
    return numbering.format(
        document.kind, issue_date, _next_value(numbering, document.kind, issue_date),
        client_value=_next_client_value(numbering, document.kind, issue_date, client_id),
        client_ref=getattr(document, "client_ref", "") or "",
    )


def preview_settings(numbering: NumberingSettings, issue_date=None) -> dict:
    """
    The next numbers of each kind in the series ``numbering`` if it (unsaved, perhaps
    invalid) were saved now: {kind: number}, per-client tokens shown for an example client's first
    document (code ``EXAMPLE_CLIENT_REF``). Reads only.
    """
    issue_date = issue_date or timezone.localdate()
    stored = NumberingSettings.objects.filter(pk=numbering.pk).first() if numbering.pk else None
    changed = stored is not None and stored.layout_differs(numbering)
    return {
        kind: numbering.format(kind, issue_date,
                               _next_value(numbering, kind, issue_date, layout_changed=changed),
                               client_value=1, client_ref=EXAMPLE_CLIENT_REF)
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
    (shared/separate counters, reset period, the month a yearly restart happens in) carry
    the current period's values over.

    The rule for a layout change: every series of the new layout starts the current period
    after the highest value any series has used in a period that overlaps it. Numbers so stay
    unique and increasing; the values skipped are recorded as explained jumps. A new period
    that begins later but overlaps a period already used (a fiscal year moved from April to
    July shares April-June with the old one, and its {FY} label) starts after it too.
    """
    if numbering.pk is None and not numbering.is_default:
        # A company's first series is its default: made before any other.
        NumberingSettings.for_company(numbering.company_id)
    # Every series of the company, locked: each is validated against the others' patterns
    # and codes as they stand.
    series = {s.pk: s for s in NumberingSettings.objects.select_for_update().filter(
        company_id=numbering.company_id)}
    before = series.get(numbering.pk)
    if before is not None:
        numbering.is_default = before.is_default  # moved by make_default_series only
    numbering.full_clean()
    old = before.as_dict() if before else {}
    new = numbering.as_dict()
    if before and old == new:
        return numbering
    numbering.save()
    NumberingSettingsChange.objects.create(
        company_id=numbering.company_id,
        changed_by=user if user is not None and user.is_authenticated else None,
        old=old,
        new=new,
    )
    if before and before.layout_differs(numbering):
        _carry_values_over(numbering, user)
    return numbering


def _carry_values_over(numbering, user):
    today = timezone.localdate()
    sequences = list(
        Sequence.objects.select_for_update().filter(company_id=numbering.company_id,
                                                    series__in=numbering.counter_keys())
    )
    reason = _("Counter layout changed (shared counter: %(shared)s, restart: %(reset)s, "
               "fiscal year from: %(month)s).") % {
        "shared": _("yes") if numbering.shared_counter else _("no"),
        "reset": numbering.get_reset_period_display(),
        "month": numbering.get_fiscal_year_start_display(),
    }

    # A quote series with no quote ever numbered has nothing to repeat (its pattern never
    # gives another kind's numbers): it is left to start at 1, without a jump.
    quoted = IssuedNumber.objects.filter(company_id=numbering.company_id, kind=Kind.QUOTE,
                                         series__in=numbering.counter_keys()).exists()

    def start_after(period, floor):
        for series in numbering.series_in_use():
            if series == series_key(numbering.code, Kind.QUOTE) and not quoted:
                continue
            sequence, _created = Sequence.objects.select_for_update().get_or_create(
                company_id=numbering.company_id, series=series, period=period
            )
            _move_forward(sequence, floor + 1, reason, user)

    period = numbering.period_for(today)
    start_after(period, max(
        (s.last for s in sequences if patterns.periods_overlap(s.period, period)), default=0))
    if numbering.reset_period != patterns.YEARLY:
        return
    # A later fiscal year that overlaps a year already used and starts in the same calendar
    # year prints the same {FY} (a year from July 2026 and one from April 2026 are both
    # 2026-27): it starts after that year's values as well.
    used = [(s, patterns.period_span(s.period)) for s in sequences if s.last > 0 and s.period]
    span = patterns.period_span(period)
    while any(span[1] < used_span[1] for _s, used_span in used):
        period = numbering.period_for(span[1])
        span = patterns.period_span(period)
        floor = max((s.last for s, used_span in used
                     if used_span[0].year == span[0].year
                     and patterns.periods_overlap(s.period, period)), default=0)
        if floor:
            start_after(period, floor)


@transaction.atomic
def make_default_series(numbering: NumberingSettings, user=None) -> NumberingSettings:
    """Make ``numbering`` its company's default series (the one documents whose draft and
    client name none are numbered in), recording the change."""
    series = list(NumberingSettings.objects.select_for_update().filter(
        company_id=numbering.company_id))
    previous = next((s for s in series if s.is_default), None)
    if previous is not None and previous.pk == numbering.pk:
        return numbering
    if previous is not None:
        previous.is_default = False
        previous.save(update_fields=["is_default"])
    numbering.is_default = True
    numbering.save(update_fields=["is_default"])
    NumberingSettingsChange.objects.create(
        company_id=numbering.company_id,
        changed_by=user if user is not None and user.is_authenticated else None,
        old={"default_series": previous.name if previous else ""},
        new={"default_series": numbering.name},
    )
    return numbering


def series_is_used(numbering: NumberingSettings) -> bool:
    """Whether any value was ever taken in ``numbering`` (its books must keep it)."""
    return numbering.is_used()


@transaction.atomic
def delete_series(numbering: NumberingSettings, user=None):
    """Delete a series no number was ever taken in and that is not the default; drafts and
    clients that chose it fall back to the default."""
    numbering = NumberingSettings.objects.select_for_update().get(pk=numbering.pk)
    if numbering.is_default:
        raise ValidationError(_("The default series cannot be deleted: make another series "
                                "the default first."), code="default_series")
    if series_is_used(numbering):
        raise ValidationError(_("Numbers were taken in this series: the books keep it."),
                              code="series_used")
    NumberingSettingsChange.objects.create(
        company_id=numbering.company_id,
        changed_by=user if user is not None and user.is_authenticated else None,
        old=numbering.as_dict(), new={},
    )
    numbering.delete()
