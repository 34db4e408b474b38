"""
The gap audit: is every series continuous, unique and chronological, is every hole explained,
and does every issued document still match the ledger entry that was chained when it was
issued?

The work is done in SQL, a few set queries over the ledger and the registered document
tables, so that a series of a million numbers is audited in seconds with bounded memory;
findings stream out one by one. ``run_audit`` is the one entry point, used by the
``audit_gaps`` command and the audit page.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal

from django.apps import apps
from django.conf import settings
from django.db import connection

from . import chain, registry
from .models import SHARED_SERIES, IssuedNumber, NumberJump, Sequence

GAP = "gap"
DUPLICATE = "duplicate"
NUMBERED_DRAFT = "numbered_draft"
UNNUMBERED_ISSUED = "unnumbered_issued"
LEDGER_MISMATCH = "ledger_mismatch"
CHRONOLOGY = "chronology_break"
TAMPERED = "tampered"
FINDING_KINDS = [GAP, DUPLICATE, NUMBERED_DRAFT, UNNUMBERED_ISSUED, LEDGER_MISMATCH, CHRONOLOGY,
                 TAMPERED]

LEDGER = IssuedNumber._meta.db_table
SEQUENCES = Sequence._meta.db_table


@dataclass
class Finding:
    kind: str
    company_id: int
    message: str
    series: str = ""
    period: str = ""
    values: list[int] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    date: date | None = None
    document_kind: str = ""  # for findings about a document outside any series

    def as_dict(self):
        data = asdict(self)
        data["date"] = self.date.isoformat() if self.date else None
        return data


@dataclass
class SeriesSummary:
    company_id: int
    series: str
    period: str
    first_value: int | None
    last_value: int | None
    issued: int
    sequence_last: int
    explained_jumps: list[dict]

    def as_dict(self):
        return asdict(self)


@dataclass
class AuditScope:
    company_id: int | None = None
    series: str | None = None
    period: str | None = None
    date_from: date | None = None
    date_to: date | None = None

    def where(self, alias, *, series_columns=True):
        """SQL conditions and parameters restricting ``alias`` to this scope."""
        conditions, params = ["1 = 1"], []
        if self.company_id is not None:
            conditions.append(f"{alias}.company_id = %s")
            params.append(self.company_id)
        if series_columns and self.series is not None:
            conditions.append(f"{alias}.series = %s")
            params.append(self.series)
        if series_columns and self.period is not None:
            conditions.append(f"{alias}.period = %s")
            params.append(self.period)
        return " AND ".join(conditions), params

    def covers(self, finding):
        day = finding.date
        if day is not None and self.date_from and day < self.date_from:
            return False
        if day is not None and self.date_to and day > self.date_to:
            return False
        if finding.series or not finding.document_kind:
            return True
        # A document-level finding has no series: match it by kind and date.
        if self.series and self.series not in (SHARED_SERIES, finding.document_kind):
            return False
        return not (self.period and day and not day.isoformat().startswith(self.period))


@dataclass
class Audit:
    """The result: summaries and jumps up front, findings as an iterator to stream."""

    scope: AuditScope
    series: list[SeriesSummary]
    findings: object  # an iterator of Finding

    @property
    def explained_jumps(self):
        return [jump for summary in self.series for jump in summary.explained_jumps]


def run_audit(scope: AuditScope | None = None) -> Audit:
    scope = scope or AuditScope()
    summaries = _summaries(scope)
    jumps = {(s.company_id, s.series, s.period): s.explained_jumps for s in summaries}
    last = {(s.company_id, s.series, s.period): s.sequence_last for s in summaries}
    findings = (
        finding
        for finding in _all_findings(scope, jumps, last)
        if scope.covers(finding)
    )
    return Audit(scope=scope, series=summaries, findings=findings)


# --- Summaries -----------------------------------------------------------------------------


def _summaries(scope):
    where, params = scope.where("l")
    rows = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT l.company_id, l.series, l.period, MIN(l.value), MAX(l.value), COUNT(*) "
            f"FROM {LEDGER} l WHERE {where} GROUP BY l.company_id, l.series, l.period",
            params,
        )
        for company_id, series, period, first, last, count in cursor.fetchall():
            rows[(company_id, series, period)] = [first, last, count, 0]
        where, params = scope.where("s")
        cursor.execute(
            f"SELECT s.company_id, s.series, s.period, s.last FROM {SEQUENCES} s "
            f"WHERE {where} AND s.last > 0",
            params,
        )
        for company_id, series, period, sequence_last in cursor.fetchall():
            rows.setdefault((company_id, series, period), [None, None, 0, 0])[3] = sequence_last
    jumps = defaultdict(list)
    jump_filter = {
        name: value for name, value in (("company_id", scope.company_id),
                                        ("series", scope.series), ("period", scope.period))
        if value is not None
    }
    for jump in NumberJump.objects.filter(**jump_filter).select_related("created_by"):
        key = (jump.company_id, jump.series, jump.period)
        rows.setdefault(key, [None, None, 0, 0])
        jumps[key].append({
            "company_id": jump.company_id, "series": jump.series, "period": jump.period,
            "first_value": jump.first_value, "last_value": jump.last_value,
            "reason": jump.reason, "by": str(jump.created_by or ""),
            "at": jump.created_at.isoformat(timespec="seconds"),
        })
    return [
        SeriesSummary(company_id, series, period, first, last, count, sequence_last,
                      jumps[(company_id, series, period)])
        for (company_id, series, period), (first, last, count, sequence_last)
        in sorted(rows.items())
    ]


# --- Findings ------------------------------------------------------------------------------


def _all_findings(scope, jumps, last):
    yield from _series_findings(scope, jumps, last)
    yield from _ledger_duplicates(scope)
    yield from _document_findings(scope)


def _stream(sql, params):
    """Rows of ``sql``, fetched in chunks (a server-side cursor on PostgreSQL)."""
    if connection.vendor == "sqlite":
        _register_sqlite_sha256()
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(2000):
            yield from rows


def _register_sqlite_sha256():
    connection.ensure_connection()
    connection.connection.create_function(
        "folio_sha256", 1, lambda text: hashlib.sha256(text.encode()).hexdigest(),
        deterministic=True,
    )


def _hash_sql(alias):
    """SQL recomputing ``chain.entry_hash`` of a ledger row."""
    a = alias
    if connection.vendor == "postgresql":
        parts = [f"{a}.company_id::text", f"{a}.series", f"{a}.period", f"{a}.value::text",
                 f"{a}.number", f"{a}.kind", f"{a}.document_id::text",
                 f"to_char({a}.issue_date, 'YYYY-MM-DD')", f"{a}.total::text", f"{a}.currency",
                 f"{a}.previous_hash"]
        content = " || '|' || ".join(parts)
        return f"encode(sha256(convert_to({content}, 'UTF8')), 'hex')"
    parts = [f"CAST({a}.company_id AS TEXT)", f"{a}.series", f"{a}.period",
             f"CAST({a}.value AS TEXT)", f"{a}.number", f"{a}.kind",
             f"CAST({a}.document_id AS TEXT)", f"{a}.issue_date", f"printf('%%.2f', {a}.total)",
             f"{a}.currency", f"{a}.previous_hash"]
    content = " || '|' || ".join(parts)
    return f"folio_sha256({content})"


def _as_date(value):
    return date.fromisoformat(value) if isinstance(value, str) else value


def _as_money(value):
    """A total as both databases return it (SQLite gives a float)."""
    return Decimal(str(value)).quantize(Decimal("0.01")) if value is not None else None


def _series_findings(scope, jumps, last):
    """One pass over the ledger, in series order: gaps, repeats, dates, the hash chain."""
    where, params = scope.where("l")
    sql = f"""
        SELECT company_id, series, period, value, number, kind, document_id, issue_date,
               entry_hash, previous_hash, recomputed,
               prev_value, prev_number, prev_date, prev_hash
        FROM (
            SELECT l.company_id, l.series, l.period, l.value, l.number, l.kind, l.document_id,
                   l.issue_date, l.entry_hash, l.previous_hash, {_hash_sql("l")} AS recomputed,
                   LAG(l.value) OVER w AS prev_value, LAG(l.number) OVER w AS prev_number,
                   LAG(l.issue_date) OVER w AS prev_date, LAG(l.entry_hash) OVER w AS prev_hash
            FROM {LEDGER} l
            WHERE {where}
            WINDOW w AS (PARTITION BY l.company_id, l.series, l.period ORDER BY l.value, l.id)
        ) t
        WHERE (prev_value IS NULL AND value > 1)
           OR value - prev_value > 1
           OR value = prev_value
           OR prev_date > issue_date
           OR recomputed <> entry_hash
           OR previous_hash <> COALESCE(prev_hash, '')
        ORDER BY company_id, series, period, value
    """
    seen_last = {}
    for row in _stream(sql, params):
        (company_id, series, period, value, number, kind, document_id, issue_date, entry_hash,
         previous_hash, recomputed, prev_value, prev_number, prev_date, prev_hash) = row
        issue_date, prev_date = _as_date(issue_date), _as_date(prev_date)
        key = (company_id, series, period)
        where_ = dict(company_id=company_id, series=series, period=period, date=issue_date)
        document = f"{kind} #{document_id}"
        missing_from = (prev_value or 0) + 1
        if value > missing_from:
            yield from _gap(key, missing_from, value - 1, jumps, where_,
                            [n for n in (prev_number, number) if n])
        if value == prev_value:
            yield Finding(DUPLICATE, message=f"value {value} issued twice "
                          f"({prev_number} and {number})", values=[value],
                          numbers=[prev_number, number], documents=[document], **where_)
        if prev_date is not None and prev_date > issue_date:
            yield Finding(CHRONOLOGY, message=f"{number} is dated {issue_date} but the lower "
                          f"{prev_number} is dated {prev_date}", values=[prev_value, value],
                          numbers=[prev_number, number], documents=[document], **where_)
        if recomputed != entry_hash:
            yield Finding(TAMPERED, message=f"ledger entry {number} was altered after it was "
                          f"issued (its hash no longer matches its content)", values=[value],
                          numbers=[number], documents=[document], **where_)
        if previous_hash != (prev_hash or chain.GENESIS):
            yield Finding(TAMPERED, message=f"the hash chain breaks before {number}: the entry "
                          f"it was chained to is missing or altered", values=[value],
                          numbers=[number], documents=[document], **where_)
        seen_last[key] = value
    # Values handed out by a sequence after its last ledger entry.
    where, params = scope.where("l")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT l.company_id, l.series, l.period, MAX(l.value), MAX(l.issue_date) "
            f"FROM {LEDGER} l WHERE {where} GROUP BY l.company_id, l.series, l.period",
            params,
        )
        highest = {(c, s, p): (v, _as_date(d)) for c, s, p, v, d in cursor.fetchall()}
    for key, sequence_last in sorted(last.items()):
        top, top_date = highest.get(key, (0, None))
        if sequence_last > top:
            company_id, series, period = key
            yield from _gap(key, top + 1, sequence_last, jumps,
                            dict(company_id=company_id, series=series, period=period,
                                 date=top_date), [])


def _gap(key, first, last, jumps, where, neighbours):
    """A finding for each part of first..last that no explained jump covers."""
    for start, end in _subtract((first, last), [(j["first_value"], j["last_value"])
                                                for j in jumps.get(key, [])]):
        values = f"{start}" if start == end else f"{start}..{end}"
        around = f" (between {' and '.join(neighbours)})" if len(neighbours) == 2 else (
            f" (before {neighbours[0]})" if neighbours else " (after the last entry)")
        yield Finding(GAP, message=f"value {values} missing{around}",
                      values=list(range(start, end + 1)) if end - start < 100 else [start, end],
                      numbers=neighbours, **where)


def _subtract(span, covered):
    """The parts of the inclusive range ``span`` outside every range in ``covered``."""
    start, end = span
    for c_start, c_end in sorted(covered):
        if c_end < start or c_start > end:
            continue
        if c_start > start:
            yield (start, c_start - 1)
        start = max(start, c_end + 1)
        if start > end:
            return
    if start <= end:
        yield (start, end)


def _ledger_duplicates(scope):
    """Numbers recorded twice: only possible once a unique constraint has been dropped."""
    where, params = scope.where("l")
    sql = (f"SELECT l.company_id, l.number, COUNT(*) FROM {LEDGER} l WHERE {where} "
           f"GROUP BY l.company_id, l.number HAVING COUNT(*) > 1")
    for company_id, number, count in _stream(sql, params):
        yield Finding(DUPLICATE, company_id=company_id, numbers=[number],
                      message=f"number {number} recorded {count} times in the ledger")


def _documents_sql():
    return " UNION ALL ".join(
        f"SELECT '{k.kind}' AS kind, id, company_id, state, number, issue_date, total, "
        f"currency, CASE WHEN state = '{k.draft_state}' THEN 1 ELSE 0 END AS is_draft "
        f"FROM {k.table}"
        for k in registry.registered()
    )


def _document_findings(scope):
    docs = _documents_sql()
    where_d, params_d = scope.where("d", series_columns=False)
    where_l, params_l = scope.where("l")

    sql = (f"SELECT d.company_id, d.kind, d.id, d.number, d.is_draft FROM ({docs}) d "
           f"WHERE {where_d} AND ((d.is_draft = 1 AND d.number <> '') "
           f"OR (d.is_draft = 0 AND (d.number = '' OR d.number IS NULL)))")
    for company_id, kind, doc_id, number, is_draft in _stream(sql, params_d):
        if is_draft:
            yield Finding(NUMBERED_DRAFT, company_id=company_id, numbers=[number],
                          document_kind=kind,
                          documents=[f"{kind} #{doc_id}"],
                          message=f"draft {kind} #{doc_id} carries the number {number}")
        else:
            yield Finding(UNNUMBERED_ISSUED, company_id=company_id, document_kind=kind,
                          documents=[f"{kind} #{doc_id}"],
                          message=f"issued {kind} #{doc_id} has no number")

    sql = (f"SELECT d.company_id, d.number, COUNT(*) FROM ({docs}) d "
           f"WHERE {where_d} AND d.number <> '' GROUP BY d.company_id, d.number "
           f"HAVING COUNT(*) > 1")
    for company_id, number, count in _stream(sql, params_d):
        yield Finding(DUPLICATE, company_id=company_id, numbers=[number],
                      message=f"{count} documents carry the number {number}")

    sql = (f"SELECT l.company_id, l.series, l.period, l.value, l.number, l.kind, "
           f"l.document_id, l.issue_date FROM {LEDGER} l "
           f"LEFT JOIN ({docs}) d ON d.kind = l.kind AND d.id = l.document_id "
           f"WHERE {where_l} AND d.id IS NULL")
    for company_id, series, period, value, number, kind, doc_id, issue_date in _stream(
            sql, params_l):
        yield Finding(LEDGER_MISMATCH, company_id=company_id, series=series, period=period,
                      values=[value], numbers=[number], documents=[f"{kind} #{doc_id}"],
                      date=_as_date(issue_date),
                      message=f"{number} is in the ledger but its {kind} #{doc_id} is gone")

    sql = (f"SELECT d.company_id, d.kind, d.id, d.number, d.issue_date FROM ({docs}) d "
           f"LEFT JOIN {LEDGER} l ON l.kind = d.kind AND l.document_id = d.id "
           f"WHERE {where_d} AND d.is_draft = 0 AND l.id IS NULL")
    for company_id, kind, doc_id, number, issue_date in _stream(sql, params_d):
        yield Finding(LEDGER_MISMATCH, company_id=company_id, numbers=[number] if number else [],
                      document_kind=kind,
                      documents=[f"{kind} #{doc_id}"], date=_as_date(issue_date),
                      message=f"issued {kind} #{doc_id} ({number or 'no number'}) "
                              f"has no ledger entry")

    sql = (f"SELECT l.company_id, l.series, l.period, l.value, l.kind, l.document_id, "
           f"l.number, d.number, l.issue_date, d.issue_date, l.total, d.total, l.currency, "
           f"d.currency, d.company_id FROM {LEDGER} l "
           f"JOIN ({docs}) d ON d.kind = l.kind AND d.id = l.document_id "
           f"WHERE {where_l} AND (d.number <> l.number OR d.issue_date IS NULL "
           f"OR d.issue_date <> l.issue_date OR d.total <> l.total "
           f"OR d.currency <> l.currency OR d.company_id <> l.company_id)")
    for (company_id, series, period, value, kind, doc_id, l_number, d_number, l_date, d_date,
         l_total, d_total, l_currency, d_currency, d_company) in _stream(sql, params_l):
        where_ = dict(company_id=company_id, series=series, period=period, values=[value],
                      documents=[f"{kind} #{doc_id}"], date=_as_date(l_date))
        if l_number != d_number:
            yield Finding(LEDGER_MISMATCH, numbers=[l_number, d_number],
                          message=f"{kind} #{doc_id} carries {d_number or 'no number'} "
                                  f"but the ledger issued it {l_number}", **where_)
        changed = [
            f"{name} {was} -> {now}" for name, was, now in (
                ("issue date", _as_date(l_date), _as_date(d_date)),
                ("total", _as_money(l_total), _as_money(d_total)),
                ("currency", l_currency, d_currency), ("company", company_id, d_company))
            if was != now
        ]
        if changed:
            yield Finding(TAMPERED, numbers=[l_number],
                          message=f"{l_number} was changed after it was issued: "
                                  f"{', '.join(changed)}", **where_)


def company_names(ids):
    model = apps.get_model(settings.COUNTERS_COMPANY_MODEL)
    return {company.pk: str(company) for company in model.objects.filter(pk__in=set(ids))}
