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

import queue
import re
import threading
from array import array
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from functools import partial

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.utils import translation
from django.utils.translation import gettext as _

from . import chain, patterns, registry
from .models import (
    SHARED_SERIES,
    ClientSequence,
    EventChain,
    IssuedNumber,
    NumberJump,
    Sequence,
    StateEvent,
    split_series_key,
)

GAP = "gap"
DUPLICATE = "duplicate"
NUMBERED_DRAFT = "numbered_draft"
UNNUMBERED_ISSUED = "unnumbered_issued"
LEDGER_MISMATCH = "ledger_mismatch"
CHRONOLOGY = "chronology_break"
TAMPERED = "tampered"
STATE_MISMATCH = "state_mismatch"
SEQUENCE_BEHIND = "sequence_behind"
TRUNCATED = "truncated"
FINDING_KINDS = [GAP, DUPLICATE, NUMBERED_DRAFT, UNNUMBERED_ISSUED, LEDGER_MISMATCH, CHRONOLOGY,
                 TAMPERED, STATE_MISMATCH, SEQUENCE_BEHIND, TRUNCATED]

LEDGER = IssuedNumber._meta.db_table
EVENTS = StateEvent._meta.db_table
SEQUENCES = Sequence._meta.db_table
CLIENT_SEQUENCES = ClientSequence._meta.db_table


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
    client_id: int | None = None  # for findings about a client's own counter

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
    last_issue_date: date | None = None

    def as_dict(self):
        data = asdict(self)
        data["last_issue_date"] = self.last_issue_date.isoformat() if self.last_issue_date \
            else None
        return data


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
        counter = split_series_key(self.series)[1] if self.series else None
        if counter and counter not in (SHARED_SERIES, finding.document_kind):
            return False
        return not (self.period and day and not patterns.period_contains(self.period, day))


@dataclass
class Audit:
    """The result: summaries and jumps up front, findings as an iterator to stream."""

    scope: AuditScope
    series: list[SeriesSummary]
    findings: object  # an iterator of Finding


def run_audit(scope: AuditScope | None = None, checkpoint=None) -> Audit:
    """
    Audit the books in ``scope``; with a verified ``counters.checkpoint.Checkpoint``, also
    check that every chain still reaches the head it had then. The summaries and the
    findings read the books in one transaction (``_reading``), which stays open until the
    findings have been read to the end.
    """
    scope = scope or AuditScope()
    reading = _audit(scope, checkpoint)
    summaries = next(reading)
    findings = (finding for finding in reading if scope.covers(finding))
    return Audit(scope=scope, series=summaries, findings=findings)


def _audit(scope, checkpoint):
    """The series' summaries, then each finding."""
    with _reading() as snapshot:
        summaries = _summaries(scope)
        yield summaries
        yield from _all_findings(scope, summaries, checkpoint, snapshot)


# --- Summaries -----------------------------------------------------------------------------


def _summaries(scope):
    # The ledger and the sequences in one statement, which reads one snapshot of both even in
    # a caller's read-committed transaction: read one after the other, a number issued in
    # between would show as handed out by its sequence but missing from the ledger.
    where_l, params_l = scope.where("l")
    where_s, params_s = scope.where("s")
    rows, last_dates = {}, {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COALESCE(m.company_id, s.company_id), COALESCE(m.series, s.series), "
            f"COALESCE(m.period, s.period), m.first, m.last, COALESCE(m.issued, 0), "
            f"m.last_date, COALESCE(s.last, 0) "
            f"FROM (SELECT l.company_id, l.series, l.period, MIN(l.value) AS first, "
            f"MAX(l.value) AS last, COUNT(*) AS issued, MAX(l.issue_date) AS last_date "
            f"FROM {LEDGER} l WHERE {where_l} GROUP BY l.company_id, l.series, l.period) m "
            f"FULL JOIN (SELECT * FROM {SEQUENCES} s WHERE {where_s} AND s.last > 0) s "
            f"ON s.company_id = m.company_id AND s.series = m.series AND s.period = m.period",
            params_l + params_s,
        )
        for (company_id, series, period, first, last, count, day,
             sequence_last) in cursor.fetchall():
            rows[(company_id, series, period)] = [first, last, count, sequence_last]
            if day is not None:
                last_dates[(company_id, series, period)] = _as_date(day)
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
                      jumps[(company_id, series, period)],
                      last_dates.get((company_id, series, period)))
        for (company_id, series, period), (first, last, count, sequence_last)
        in sorted(rows.items())
    ]


# --- Findings ------------------------------------------------------------------------------


def _all_findings(scope, summaries, checkpoint, snapshot):
    document_passes = [partial(_document_findings, scope), partial(_state_findings, scope)]
    lane = None
    if snapshot and sum(s.issued for s in summaries) >= SECOND_CONNECTION_FROM:
        lane = _Lane(document_passes, snapshot)
        lane.start()
    try:
        yield from _series_findings(scope, summaries)
        yield from _client_counter_findings(scope)
        if checkpoint is not None:
            yield from checkpoint.findings(scope)
        yield from _hash_findings(scope)
        yield from _duplicate_numbers(scope)
        yield from _history_findings(scope)
        if lane:
            yield from lane.findings()
        else:
            for make in document_passes:
                yield from make()
    finally:
        if lane:
            lane.stop()


@contextmanager
def _reading():
    """
    The audit's queries in one transaction, so that PostgreSQL plans them under settings of
    their own (``SET LOCAL`` ends with the transaction; inside a caller's transaction, with
    the caller's). JIT compiling costs more than it saves on these one-pass scans, and a
    join or an aggregate over every document fits in memory rather than spilling to disk.

    In a transaction of its own on PostgreSQL, every query reads one snapshot of the books
    (repeatable read), which it exports for a second connection (``_Lane``): yields its id,
    else None.
    """
    own = not connection.in_atomic_block
    with transaction.atomic():
        snapshot = None
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                if own:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                _plan_for_the_audit(cursor)
                if own:
                    cursor.execute("SELECT pg_export_snapshot()")
                    snapshot = cursor.fetchone()[0]
        yield snapshot


def _plan_for_the_audit(cursor):
    cursor.execute("SET LOCAL jit = off")
    cursor.execute("SET LOCAL work_mem = '128MB'")


# Books of this many ledger entries or more are audited on two connections at once: the
# document passes on a second one (``_Lane``), so that both of a small server's CPUs work.
# Below, a second connection costs more than it saves.
SECOND_CONNECTION_FROM = 100_000


class _Lane(threading.Thread):
    """
    Passes run on a connection of their own, reading the snapshot that the audit's
    transaction exported, so that they see the books exactly as the other passes do. Their
    findings wait in a bounded queue (memory stays bounded however many there are) until
    ``findings()`` hands them on, in order, after the other passes'.
    """

    _DONE = object()
    QUEUE_SIZE = 1000

    def __init__(self, passes, snapshot):
        super().__init__(name="audit-documents", daemon=True)
        if not re.fullmatch(r"[0-9A-F-]+", snapshot):  # SET takes no parameters
            raise ValueError(f"not a snapshot id: {snapshot!r}")
        self.passes, self.snapshot = passes, snapshot
        self.language = translation.get_language()
        self.database = None  # the thread's psycopg connection, once it has one
        self.queue = queue.Queue(maxsize=self.QUEUE_SIZE)
        self.stopped = threading.Event()

    def run(self):
        try:
            with translation.override(self.language), transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    cursor.execute(f"SET TRANSACTION SNAPSHOT '{self.snapshot}'")
                    _plan_for_the_audit(cursor)
                self.database = connection.connection
                for make in self.passes:
                    if self.stopped.is_set():
                        return
                    for finding in make():
                        if not self._put(finding):
                            return
            self._put(self._DONE)
        except BaseException as error:  # handed to the reader, who raises it
            self._put(error)
        finally:
            connection.close()

    def _put(self, item):
        """Queue ``item``; False once the reader has stopped listening."""
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def findings(self):
        while (item := self.queue.get()) is not self._DONE:
            if isinstance(item, BaseException):
                raise item
            yield item

    def stop(self):
        """
        End the thread and wait for it. A reader that stopped early (an error, Ctrl-C) does
        not wait for a pass to finish: its query is cancelled, again until the thread ends
        (a cancel that arrives between two queries cancels nothing).
        """
        self.stopped.set()
        while self.is_alive():
            if self.database is not None:
                self.database.cancel_safe()
            self.join(timeout=1)


# A query that keeps only the rows that are findings: the planner cannot know how few (it
# expects most rows of a hash comparison to pass), so moving a row out of a parallel worker
# is priced as next to nothing. The ordered window passes keep the default price, which
# keeps them in one process, where they are fastest.
_FILTER = {"parallel_tuple_cost": "0.001"}
# Counting repeats of a column that an index keeps sorted: reading the index in order beats
# hashing every value.
_SORTED_GROUPS = {"enable_hashagg": "off"}

# Planner settings a query may ask for (``_stream``); the others keep their defaults.
_PLANNER_SETTINGS = ("parallel_tuple_cost", "enable_hashagg")


def _stream(sql, params, **planner):
    """
    Rows of ``sql`` one at a time, never the whole result in memory. On PostgreSQL through
    psycopg's streaming mode rather than a server-side cursor, which would rule out parallel
    plans, in chunks of rows where libpq can (a result per row costs more than the row);
    inside ``_reading``, planned under ``planner`` settings (``SET LOCAL``).
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if connection.in_atomic_block:
                for name in _PLANNER_SETTINGS:
                    cursor.execute(f"SET LOCAL {name} = {planner.get(name, 'DEFAULT')}")
            yield from cursor.cursor.stream(sql, params, size=_stream_chunk())
            return
        _register_sqlite_sha256()
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(2000):
            yield from rows


def _stream_chunk():
    """Rows per chunk of a streamed result: libpq 17 and later can send them in chunks."""
    from psycopg import pq  # PostgreSQL only

    return 2000 if pq.version() >= 170000 else 1


def _register_sqlite_sha256():
    connection.ensure_connection()
    connection.connection.create_function(
        chain.SQLITE_SHA256, 1, chain.sqlite_sha256, deterministic=True)


def _as_date(value):
    return date.fromisoformat(value) if isinstance(value, str) else value


def _as_money(value):
    """A total as both databases return it (SQLite gives a float)."""
    return Decimal(str(value)).quantize(Decimal("0.01")) if value is not None else None


def _series_findings(scope, summaries):
    """One pass over the ledger, in series order: gaps, repeats, dates, chain links."""
    where, params = scope.where("l")
    sql = f"""
        SELECT company_id, series, period, value, number, kind, document_id, issue_date,
               previous_hash, prev_value, prev_number, prev_date, prev_hash
        FROM (
            SELECT l.company_id, l.series, l.period, l.value, l.number, l.kind, l.document_id,
                   l.issue_date, l.previous_hash,
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
           OR previous_hash <> COALESCE(prev_hash, '')
        ORDER BY company_id, series, period, value
    """
    jumps = {(s.company_id, s.series, s.period): s.explained_jumps for s in summaries}
    for row in _stream(sql, params):
        (company_id, series, period, value, number, kind, document_id, issue_date,
         previous_hash, prev_value, prev_number, prev_date, prev_hash) = row
        issue_date, prev_date = _as_date(issue_date), _as_date(prev_date)
        key = (company_id, series, period)
        where_ = dict(company_id=company_id, series=series, period=period, date=issue_date)
        document = f"{kind} #{document_id}"
        missing_from = (prev_value or 0) + 1
        if value > missing_from:
            yield from _gap(key, missing_from, value - 1, jumps, where_,
                            [n for n in (prev_number, number) if n])
        if value == prev_value:
            yield Finding(DUPLICATE, message=_("value %(value)s issued twice (%(first)s and "
                                                "%(second)s)") % {
                              "value": value, "first": prev_number, "second": number},
                          values=[value],
                          numbers=[prev_number, number], documents=[document], **where_)
        if prev_date is not None and prev_date > issue_date:
            yield Finding(CHRONOLOGY, message=_(
                "%(number)s is dated %(date)s but the lower %(lower)s is dated %(lower_date)s")
                % {"number": number, "date": issue_date, "lower": prev_number,
                   "lower_date": prev_date}, values=[prev_value, value],
                          numbers=[prev_number, number], documents=[document], **where_)
        if previous_hash != (prev_hash or chain.GENESIS):
            yield Finding(TAMPERED, message=_(
                "the hash chain breaks before %(number)s: the entry it was chained to is "
                "missing or altered") % {"number": number}, values=[value],
                          numbers=[number], documents=[document], **where_)
    # Values handed out by a sequence after its last ledger entry; a sequence behind its
    # ledger (the next issue in it would collide with a number already issued).
    for s in summaries:
        top = s.last_value or 0
        if s.sequence_last < top:
            yield Finding(SEQUENCE_BEHIND, company_id=s.company_id, series=s.series,
                          period=s.period, date=s.last_issue_date,
                          values=[s.sequence_last, top],
                          message=_("the sequence's last value is %(last)s but its ledger has "
                                    "issued up to %(top)s") % {
                              "last": s.sequence_last, "top": top})
        if s.sequence_last > top:
            yield from _gap((s.company_id, s.series, s.period), top + 1, s.sequence_last, jumps,
                            dict(company_id=s.company_id, series=s.series, period=s.period,
                                 date=s.last_issue_date), [])


def _client_counter_findings(scope):
    """
    Each client's own counter ({client_counter}) in each series and period: 1..n in the
    ledger, no value twice, and ending where the client's sequence says.
    """
    where, params = scope.where("l")
    sql = f"""
        SELECT company_id, client_id, series, period, client_value, number, kind, document_id,
               issue_date, prev_value, prev_number
        FROM (
            SELECT l.company_id, l.client_id, l.series, l.period, l.client_value, l.number,
                   l.kind, l.document_id, l.issue_date,
                   LAG(l.client_value) OVER w AS prev_value, LAG(l.number) OVER w AS prev_number
            FROM {LEDGER} l
            WHERE {where} AND l.client_value IS NOT NULL
            WINDOW w AS (PARTITION BY l.company_id, l.client_id, l.series, l.period
                         ORDER BY l.client_value, l.id)
        ) t
        WHERE (prev_value IS NULL AND client_value > 1)
           OR client_value - prev_value > 1
           OR client_value = prev_value
        ORDER BY company_id, client_id, series, period, client_value
    """
    names = _ClientNames()
    # Only findings come back; read them all before naming their clients, which queries
    # the database (a streaming result holds the connection until it is read to the end).
    for row in list(_stream(sql, params)):
        (company_id, client_id, series, period, value, number, kind, document_id, issue_date,
         prev_value, prev_number) = row
        about = dict(company_id=company_id, client_id=client_id, series=series, period=period,
                     date=_as_date(issue_date), documents=[f"{kind} #{document_id}"])
        client = names[client_id]
        if value == prev_value:
            yield Finding(DUPLICATE, values=[value], numbers=[prev_number, number], message=_(
                "client %(client)s: its counter's value %(value)s issued twice (%(first)s and "
                "%(second)s)") % {"client": client, "value": value, "first": prev_number,
                                  "second": number}, **about)
            continue
        first, last = (prev_value or 0) + 1, value - 1
        values = f"{first}" if first == last else f"{first}..{last}"
        yield Finding(GAP, values=list(range(first, last + 1)) if last - first < 100
                      else [first, last],
                      numbers=[n for n in (prev_number, number) if n], message=_(
                          "client %(client)s: its counter's value %(values)s missing (before "
                          "%(number)s)") % {"client": client, "values": values,
                                            "number": number}, **about)
    where_s, params_s = scope.where("s")
    where_l, params_l = scope.where("l")
    sql = f"""
        SELECT COALESCE(s.company_id, m.company_id), COALESCE(s.client_id, m.client_id),
               COALESCE(s.series, m.series), COALESCE(s.period, m.period),
               COALESCE(s.last, 0), COALESCE(m.top, 0), m.last_date
        FROM (SELECT * FROM {CLIENT_SEQUENCES} s WHERE {where_s}) s
        FULL JOIN (
            SELECT l.company_id, l.client_id, l.series, l.period, MAX(l.client_value) AS top,
                   MAX(l.issue_date) AS last_date
            FROM {LEDGER} l WHERE {where_l} AND l.client_value IS NOT NULL
            GROUP BY l.company_id, l.client_id, l.series, l.period
        ) m ON m.company_id = s.company_id AND m.client_id = s.client_id
               AND m.series = s.series AND m.period = s.period
        WHERE COALESCE(s.last, 0) <> COALESCE(m.top, 0)
    """
    for company_id, client_id, series, period, last, top, day in list(_stream(
            sql, params_s + params_l)):
        about = dict(company_id=company_id, client_id=client_id, series=series, period=period,
                     date=_as_date(day))
        client = names[client_id]
        if last < top:
            yield Finding(SEQUENCE_BEHIND, values=[last, top], message=_(
                "client %(client)s: its counter's last value is %(last)s but its ledger has "
                "issued up to %(top)s") % {"client": client, "last": last, "top": top}, **about)
        else:
            first = top + 1
            values = f"{first}" if first == last else f"{first}..{last}"
            yield Finding(GAP, values=list(range(first, last + 1)) if last - first < 100
                          else [first, last], message=_(
                              "client %(client)s: its counter's value %(values)s missing "
                              "(after the last entry)") % {"client": client, "values": values},
                          **about)


class _ClientNames(dict):
    """Client ids to what findings call them: the client's name and id, looked up once."""

    def __missing__(self, client_id):
        label = f"#{client_id}"
        model_label = getattr(settings, "COUNTERS_CLIENT_MODEL", None)
        if model_label:
            client = apps.get_model(model_label).objects.filter(pk=client_id).first()
            if client is not None:
                label = f"{client} (#{client_id})"
        self[client_id] = label
        return label


def _gap(key, first, last, jumps, where, neighbours):
    """A finding for each part of first..last that no explained jump covers."""
    for start, end in _subtract((first, last), [(j["first_value"], j["last_value"])
                                                for j in jumps.get(key, [])]):
        values = f"{start}" if start == end else f"{start}..{end}"
        if len(neighbours) == 2:
            message = _("value %(values)s missing (between %(first)s and %(second)s)") % {
                "values": values, "first": neighbours[0], "second": neighbours[1]}
        elif neighbours:
            message = _("value %(values)s missing (before %(number)s)") % {
                "values": values, "number": neighbours[0]}
        else:
            message = _("value %(values)s missing (after the last entry)") % {"values": values}
        yield Finding(GAP, message=message,
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


def _hash_findings(scope):
    """
    Ledger entries whose content no longer matches their hash. Without a ledger key, a
    parallel scan in the database; with one, the rows stream through Python (the key never
    goes to the database).
    """
    key = chain.ledger_key()
    rows = _keyed_hash_mismatches(scope, key) if key else _sql_hash_mismatches(scope)
    for company_id, series, period, value, number, kind, document_id, issue_date in rows:
        yield Finding(TAMPERED, company_id=company_id, series=series, period=period,
                      values=[value], numbers=[number], documents=[f"{kind} #{document_id}"],
                      date=_as_date(issue_date),
                      message=_("ledger entry %(number)s was altered after it was issued (its "
                                "hash no longer matches its content)") % {"number": number})


_IDENTITY = "l.company_id, l.series, l.period, l.value, l.number, l.kind, l.document_id, " \
            "l.issue_date"


def _sql_hash_mismatches(scope):
    where, params = scope.where("l")
    sql = (f"SELECT {_IDENTITY} FROM {LEDGER} l "
           f"WHERE {where} AND {chain.hash_sql('l', connection.vendor)} <> l.entry_hash "
           f"ORDER BY l.company_id, l.series, l.period, l.value")
    yield from _stream(sql, params, **_FILTER)


def _keyed_hash_mismatches(scope, key):
    """
    The database writes each entry's content (the very expression ``hash_sql`` hashes),
    Python hashes it under the key (``key`` b"": unkeyed, for the test that both paths
    agree). Only the ids of mismatches are kept (8 bytes each) while the rows stream; their
    details are read afterwards, in series order (within each thousand).
    """
    where, params = scope.where("l")
    sql = (f"SELECT l.id, {chain.content_sql('l', connection.vendor)}, l.entry_hash "
           f"FROM {LEDGER} l WHERE {where}")  # unordered: a plain sequential scan
    digest = chain.digester(key)
    mismatches = array("q")
    for entry_id, content, entry_hash in _stream(sql, params):
        if digest(content) != entry_hash:
            mismatches.append(entry_id)
    for start in range(0, len(mismatches), 1000):
        ids = list(mismatches[start:start + 1000])
        marks = ", ".join(["%s"] * len(ids))
        yield from _stream(
            f"SELECT {_IDENTITY} FROM {LEDGER} l WHERE l.id IN ({marks}) "
            f"ORDER BY l.company_id, l.series, l.period, l.value", ids)


# --- Anchors: the head of each series, and a checkpoint's heads checked against the ledger ---


def ledger_heads():
    """
    The head of every series as the ledger has it: {"company_id", "series", "period", "last"
    (value), "number", "hash"}, in series order.
    """
    sql = f"""
        SELECT l.company_id, l.series, l.period, l.value, l.number, l.entry_hash
        FROM {LEDGER} l JOIN (
            SELECT company_id, series, period, MAX(value) AS value FROM {LEDGER}
            GROUP BY company_id, series, period
        ) m ON l.company_id = m.company_id AND l.series = m.series AND l.period = m.period
               AND l.value = m.value
        ORDER BY l.company_id, l.series, l.period, l.id
    """
    heads = {}
    for company_id, series, period, value, number, entry_hash in _stream(sql, []):
        heads.setdefault((company_id, series, period), dict(
            company_id=company_id, series=series, period=period, last=value, number=number,
            hash=entry_hash))
    return list(heads.values())


def truncated_findings(heads, scope, written_at):
    """
    ``truncated`` for each checkpointed series ``head`` in ``scope`` that the ledger no longer
    reaches: it ends before the head, or its entry at the head's value has another hash.
    """
    heads = [h for h in heads if scope.company_id in (None, h["company_id"])
             and scope.series in (None, h["series"]) and scope.period in (None, h["period"])]
    if not heads:
        return
    now = {(h["company_id"], h["series"], h["period"]): h for h in ledger_heads()}
    for head in heads:
        key = (head["company_id"], head["series"], head["period"])
        current = now.get(key)
        where = dict(company_id=head["company_id"], series=head["series"],
                     period=head["period"], numbers=[head["number"]])
        if current is None or current["last"] < head["last"]:
            message = (_("the series ends at %(end)s but the checkpoint of %(at)s has it up "
                         "to %(head)s") if current else
                       _("the series has no entries but the checkpoint of %(at)s has it up to "
                         "%(head)s")) % {"end": current and current["number"], "at": written_at,
                                         "head": head["number"]}
            yield Finding(TRUNCATED, values=[current["last"] if current else 0, head["last"]],
                          message=message, **where)
            continue
        if current["last"] == head["last"]:
            found = current["hash"]
        else:
            found = IssuedNumber.objects.filter(
                company_id=head["company_id"], series=head["series"], period=head["period"],
                value=head["last"]).values_list("entry_hash", flat=True).first()
        if found is None:
            yield Finding(TRUNCATED, values=[head["last"]], message=_(
                "%(number)s, the series' head at the checkpoint of %(at)s, is gone") % {
                    "number": head["number"], "at": written_at}, **where)
        elif found != head["hash"]:
            yield Finding(TRUNCATED, values=[head["last"]], message=_(
                "%(number)s has another hash than at the checkpoint of %(at)s: the chain up to "
                "it was rewritten") % {"number": head["number"], "at": written_at}, **where)


def history_heads():
    """The last event of every company's history: {"company_id", "last" (seq), "hash"}."""
    sql = f"""
        SELECT e.company_id, e.seq, e.event_hash FROM {EVENTS} e JOIN (
            SELECT company_id, MAX(seq) AS seq FROM {EVENTS} GROUP BY company_id
        ) m ON e.company_id = m.company_id AND e.seq = m.seq
        ORDER BY e.company_id
    """
    return [dict(company_id=company_id, last=seq, hash=event_hash)
            for company_id, seq, event_hash in _stream(sql, [])]


def truncated_history_findings(heads, scope, written_at):
    """``truncated`` for each checkpointed history that no longer reaches its head."""
    now = {head["company_id"]: head for head in history_heads()}
    for head in heads:
        if scope.company_id not in (None, head["company_id"]):
            continue
        current = now.get(head["company_id"])
        found = current["hash"] if current and current["last"] == head["last"] else (
            StateEvent.objects.filter(company_id=head["company_id"], seq=head["last"])
            .values_list("event_hash", flat=True).first())
        if found is None:
            yield Finding(TRUNCATED, company_id=head["company_id"], values=[head["last"]],
                          message=_("the history ends before event %(last)s, but the "
                                    "checkpoint of %(at)s has it up to event %(last)s") % {
                              "last": head["last"], "at": written_at})
        elif found != head["hash"]:
            yield Finding(TRUNCATED, company_id=head["company_id"], values=[head["last"]],
                          message=_("the history's event %(last)s has another hash than at the "
                                    "checkpoint of %(at)s: it was rewritten") % {
                              "last": head["last"], "at": written_at})


def _duplicate_numbers(scope):
    """
    Numbers recorded twice in the ledger (only possible once its unique constraint has been
    dropped) or carried by two documents (invoices and credit notes live in two tables).
    """
    where, params = scope.where("l")
    sql = (f"SELECT l.company_id, l.number, COUNT(*) FROM {LEDGER} l WHERE {where} "
           f"GROUP BY l.company_id, l.number HAVING COUNT(*) > 1")
    for company_id, number, count in _stream(sql, params, **_SORTED_GROUPS):
        yield Finding(DUPLICATE, company_id=company_id, numbers=[number],
                      message=_("number %(number)s recorded %(count)s times in the ledger") % {
                          "number": number, "count": count})
    where, params = scope.where("d", series_columns=False)
    documents = " UNION ALL ".join(f"SELECT company_id, number FROM {kind.table}"
                                   for kind in registry.registered())
    sql = (f"SELECT d.company_id, d.number, COUNT(*) FROM ({documents}) d "
           f"WHERE {where} AND d.number <> '' GROUP BY d.company_id, d.number "
           f"HAVING COUNT(*) > 1")
    for company_id, number, count in _stream(sql, params, **_SORTED_GROUPS):
        yield Finding(DUPLICATE, company_id=company_id, numbers=[number],
                      message=_("%(count)s documents carry the number %(number)s") % {
                          "count": count, "number": number})


def _document_findings(scope):
    """
    The ledger joined with every document, one kind at a time: numbered drafts, issued
    documents without a number or without a ledger entry, entries whose document is gone,
    and documents that no longer say what the ledger recorded when they were issued.
    """
    kinds = registry.registered()
    for kind in kinds:
        yield from _kind_document_findings(scope, kind)
    # Entries of a kind no registered model has (their documents are gone with it).
    in_series, params = scope.where("l")
    if kinds:
        marks = ", ".join(["%s"] * len(kinds))
        in_series += f" AND l.kind NOT IN ({marks})"
        params += [kind.kind for kind in kinds]
    for row in _stream(f"SELECT {_IDENTITY} FROM {LEDGER} l WHERE {in_series}", params):
        yield _document_gone(*row)


def _document_gone(company_id, series, period, value, number, kind, document_id, issue_date):
    return Finding(LEDGER_MISMATCH, company_id=company_id, series=series, period=period,
                   values=[value], numbers=[number], documents=[f"{kind} #{document_id}"],
                   date=_as_date(issue_date),
                   message=_("%(number)s is in the ledger but its %(document)s is gone") % {
                       "number": number, "document": f"{kind} #{document_id}"})


def _kind_document_findings(scope, kind):
    where_d, params_d = scope.where("d", series_columns=False)
    where_l, params_l = scope.where("l", series_columns=False)
    in_series, params_s = scope.where("l")
    content_digest = chain.sha256_sql("d.snapshot", connection.vendor)
    sql = f"""
        SELECT {_IDENTITY}, l.total, l.currency,
               d.company_id, d.id, d.number, d.issue_date, d.total, d.currency,
               d.state = %s, l.snapshot_digest <> '' AND {content_digest} <> l.snapshot_digest
        FROM (SELECT * FROM {LEDGER} l WHERE l.kind = %s AND {where_l}) l
        FULL JOIN (SELECT * FROM {kind.table} d WHERE {where_d}) d ON d.id = l.document_id
        WHERE (l.id IS NULL AND (d.state <> %s OR d.number <> ''))
           OR (d.id IS NULL AND {in_series})
           OR (l.id IS NOT NULL AND d.id IS NOT NULL AND {in_series} AND (
                d.state = %s OR d.number <> l.number OR d.issue_date IS NULL
                OR d.issue_date <> l.issue_date OR d.total <> l.total
                OR d.currency <> l.currency OR d.company_id <> l.company_id
                OR (l.snapshot_digest <> '' AND {content_digest} <> l.snapshot_digest)))
    """
    draft = kind.draft_state
    params = [draft, kind.kind, *params_l, *params_d, draft, *params_s, *params_s, draft]
    for row in _stream(sql, params):
        (company_id, series, period, value, l_number, l_kind, l_doc_id, l_date, l_total,
         l_currency, d_company, d_id, d_number, d_date, d_total, d_currency,
         is_draft, content_changed) = row
        if d_id is None:
            yield _document_gone(company_id, series, period, value, l_number, l_kind, l_doc_id,
                                 l_date)
            continue
        document = f"{kind.kind} #{d_id}"
        about_document = dict(company_id=d_company, documents=[document],
                              document_kind=kind.kind, date=_as_date(d_date))
        if is_draft and d_number:
            yield Finding(NUMBERED_DRAFT, numbers=[d_number],
                          message=_("draft %(document)s carries the number %(number)s") % {
                              "document": document, "number": d_number},
                          **about_document)
        elif not is_draft and not d_number:
            yield Finding(UNNUMBERED_ISSUED,
                          message=_("issued %(document)s has no number") % {"document": document},
                          **about_document)
        if company_id is None:
            if not is_draft:
                yield Finding(LEDGER_MISMATCH, numbers=[d_number] if d_number else [],
                              message=_("issued %(document)s (%(number)s) has no ledger entry")
                              % {"document": document, "number": d_number or _("no number")},
                              **about_document)
            continue
        in_ledger = dict(company_id=company_id, series=series, period=period, values=[value],
                         documents=[document], date=_as_date(l_date))
        if d_number and d_number != l_number:
            yield Finding(LEDGER_MISMATCH, numbers=[l_number, d_number],
                          message=_("%(document)s carries %(number)s but the ledger issued it "
                                    "%(issued)s") % {"document": document, "number": d_number,
                                                     "issued": l_number}, **in_ledger)
        changed = [
            f"{name} {was} -> {now}" for name, was, now in (
                (_("issue date"), _as_date(l_date), _as_date(d_date)),
                (_("total"), _as_money(l_total), _as_money(d_total)),
                (_("currency"), l_currency, d_currency), (_("company"), company_id, d_company))
            if was != now
        ]
        if content_changed:
            changed.append(_("its content (parties, lines or totals as issued)"))
        if changed:
            yield Finding(TAMPERED, numbers=[l_number],
                          message=_("%(number)s was changed after it was issued: %(changes)s")
                          % {"number": l_number, "changes": ", ".join(changed)}, **in_ledger)


def _state_findings(scope):
    """
    Documents whose state is not the one their history ends with (drafts: no history), one
    kind at a time.
    """
    where_d, params_d = scope.where("d", series_columns=False)
    where_e, params_e = scope.where("e", series_columns=False)
    for kind in registry.registered():
        sql = f"""
            SELECT d.company_id, d.id, d.number, d.state, d.issue_date, last.to_state
            FROM {kind.table} d
            LEFT JOIN (
                SELECT e.document_id, e.to_state,
                       ROW_NUMBER() OVER (PARTITION BY e.document_id ORDER BY e.seq DESC)
                       AS latest
                FROM {EVENTS} e WHERE e.kind = %s AND {where_e}
            ) last ON last.document_id = d.id AND last.latest = 1
            WHERE {where_d} AND COALESCE(last.to_state, %s) <> d.state
        """
        params = [kind.kind, *params_e, *params_d, kind.draft_state]
        for company_id, pk, number, state, issue_date, recorded in _stream(sql, params):
            document = f"{kind.kind} #{pk}"
            yield Finding(
                STATE_MISMATCH, company_id=company_id, numbers=[number] if number else [],
                documents=[document], document_kind=kind.kind, date=_as_date(issue_date),
                message=(_("%(document)s is %(state)s but its history ends with %(recorded)s")
                         if recorded else
                         _("%(document)s is %(state)s but its history is empty"))
                % {"document": number or document, "state": repr(state),
                   "recorded": repr(recorded)})


def _keyed_event_mismatches(where, params, key):
    """Events whose content, written by the database, no longer hashes to their hash."""
    sql = (f"SELECT e.id, {chain.content_sql('e', connection.vendor, StateEvent)}, "
           f"e.event_hash FROM {EVENTS} e WHERE {where}")
    digest = chain.digester(key)
    mismatches = array("q")
    for event_id, content, event_hash in _stream(sql, params):
        if digest(content) != event_hash:
            mismatches.append(event_id)
    for start in range(0, len(mismatches), 1000):
        ids = list(mismatches[start:start + 1000])
        yield from _stream(
            f"SELECT e.company_id, e.seq, e.kind, e.document_id FROM {EVENTS} e "
            f"WHERE e.id IN ({', '.join(['%s'] * len(ids))}) ORDER BY e.company_id, e.seq", ids)


def _history_findings(scope):
    """
    Each company's history: numbered 1..n, each event chained to the one before and still
    matching its hash, and ending where its chain's head says.
    """
    where, params = scope.where("e", series_columns=False)
    links = f"""
        SELECT company_id, seq, kind, document_id FROM (
            SELECT e.company_id, e.seq, e.kind, e.document_id, e.previous_hash,
                   LAG(e.seq) OVER w AS prev_seq, LAG(e.event_hash) OVER w AS prev_hash
            FROM {EVENTS} e WHERE {where}
            WINDOW w AS (PARTITION BY e.company_id ORDER BY e.seq)
        ) t
        WHERE seq <> COALESCE(prev_seq, 0) + 1 OR previous_hash <> COALESCE(prev_hash, '')
        ORDER BY company_id, seq
    """
    key = chain.ledger_key()
    altered = _keyed_event_mismatches(where, params, key) if key else _stream(
        # In a query of its own, which PostgreSQL can scan in parallel.
        f"SELECT e.company_id, e.seq, e.kind, e.document_id FROM {EVENTS} e "
        f"WHERE {where} AND {chain.hash_sql('e', connection.vendor, StateEvent)} "
        f"<> e.event_hash ORDER BY e.company_id, e.seq", params, **_FILTER)
    for rows in (_stream(links, params), altered):
        for company_id, seq, kind, document_id in rows:
            yield Finding(TAMPERED, company_id=company_id,
                          documents=[f"{kind} #{document_id}"],
                          message=_("the history breaks at event %(seq)s: an event before it "
                                    "is missing, or it was altered") % {"seq": seq})
    where, params = scope.where("e", series_columns=False)
    sql = (f"SELECT DISTINCT e.company_id FROM {EVENTS} e WHERE {where} AND NOT EXISTS "
           f"(SELECT 1 FROM {EventChain._meta.db_table} h WHERE h.company_id = e.company_id)")
    for (company_id,) in _stream(sql, params):
        yield Finding(TAMPERED, company_id=company_id,
                      message=_("the history has lost its head: its last event is unknown"))
    where, params = scope.where("h", series_columns=False)
    sql = f"""
        SELECT h.company_id, h.last FROM {EventChain._meta.db_table} h
        LEFT JOIN {EVENTS} e ON e.company_id = h.company_id AND e.seq = h.last
        WHERE {where} AND h.last > 0
          AND (e.id IS NULL OR e.event_hash <> h.last_hash
               OR h.last < (SELECT MAX(x.seq) FROM {EVENTS} x
                            WHERE x.company_id = h.company_id))
    """
    for company_id, last in _stream(sql, params):
        yield Finding(TAMPERED, company_id=company_id,
                      message=_("the history does not end at its head, event %(last)s: its last "
                                "events are missing, altered or added past it") % {"last": last})


def company_names(ids):
    model = apps.get_model(settings.COUNTERS_COMPANY_MODEL)
    return {company.pk: str(company) for company in model.objects.filter(pk__in=set(ids))}
