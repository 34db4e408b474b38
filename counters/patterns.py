"""
Number patterns: pure functions to parse, validate and format them.

A pattern is literal text with tokens in braces, e.g. ``INV-{YYYY}-{counter}``:

========== ==========================================
``{YYYY}`` the issue date's year, four digits
``{YY}``   the issue date's year, last two digits
``{MM}``   the issue date's month, two digits
``{FY}``   the fiscal year holding the issue date: ``2026-27`` for a year from April 2026
           to March 2027, plain ``2026`` when fiscal years are calendar years
``{counter}`` the sequence value, zero-padded to ``padding``
``{client_counter}`` the client's own counter in the series (a second gapless counter per
           client, series and period), zero-padded to ``client_padding``
``{client_ref}`` the client's short code (e.g. ``ACME``)
========== ==========================================

``{client_counter}`` may stand beside ``{counter}`` or, with ``{client_ref}`` to tell the
clients apart, instead of it.

A fiscal year is named by the calendar year it starts in (``fiscal_start`` is its first
month, 1-12); yearly periods follow it.

Nothing here touches the database.
"""

import re
from datetime import date

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

TOKEN_RE = re.compile(r"\{([^{}]*)\}")
COUNTER = "counter"
CLIENT_COUNTER = "client_counter"
CLIENT_REF = "client_ref"
DATE_TOKENS = {
    "YYYY": lambda d: f"{d.year:04d}",
    "YY": lambda d: f"{d.year % 100:02d}",
    "MM": lambda d: f"{d.month:02d}",
}
FISCAL_YEAR = "FY"
YEAR_TOKENS = {"YYYY", "YY"}
KNOWN_TOKENS = {COUNTER, CLIENT_COUNTER, CLIENT_REF, FISCAL_YEAR, *DATE_TOKENS}

NEVER, YEARLY, MONTHLY = "never", "yearly", "monthly"
# The widest a counter is ever zero-padded: a larger padding (an unsaved form's, say) is read
# as this, so that formatting never allocates in proportion to what someone typed.
MAX_PADDING = 12


def tokens(pattern):
    """The token names in ``pattern``, in order."""
    return TOKEN_RE.findall(pattern)


def uses_client_counter(pattern) -> bool:
    return CLIENT_COUNTER in tokens(pattern)


def uses_client_ref(pattern) -> bool:
    return CLIENT_REF in tokens(pattern)


def fiscal_year(issue_date: date, fiscal_start: int = 1) -> int:
    """The calendar year in which the fiscal year holding ``issue_date`` starts."""
    return issue_date.year if issue_date.month >= fiscal_start else issue_date.year - 1


def fiscal_year_label(issue_date: date, fiscal_start: int = 1) -> str:
    """What ``{FY}`` prints: ``2026-27``, or ``2026`` when fiscal years are calendar years."""
    first = fiscal_year(issue_date, fiscal_start)
    if fiscal_start == 1:
        return f"{first:04d}"
    return f"{first:04d}-{(first + 1) % 100:02d}"


def validate_pattern(pattern, *, reset_period=NEVER, fiscal_start=1):
    """
    Raise ValidationError unless ``pattern`` numbers a series whose values restart every
    ``reset_period`` (years starting in month ``fiscal_start``) without ever repeating a
    number.
    """
    if not pattern or not pattern.strip():
        raise ValidationError(_("A pattern cannot be empty."), code="empty")
    names = tokens(pattern)
    unknown = [name for name in names if name not in KNOWN_TOKENS]
    if unknown:
        raise ValidationError(
            _("Unknown token {%(token)s}. Use {YYYY}, {YY}, {MM}, {FY}, {counter}, "
              "{client_counter} and {client_ref}."),
            code="unknown_token",
            params={"token": unknown[0]},
        )
    if "{" in TOKEN_RE.sub("", pattern) or "}" in TOKEN_RE.sub("", pattern):
        raise ValidationError(_("A brace in the pattern is not closed."), code="unbalanced")
    if names.count(COUNTER) > 1 or names.count(CLIENT_COUNTER) > 1 or names.count(CLIENT_REF) > 1:
        raise ValidationError(
            _("{counter}, {client_counter} and {client_ref} can each appear only once."),
            code="counter",
        )
    if COUNTER not in names and CLIENT_COUNTER not in names:
        raise ValidationError(
            _("A pattern must contain {counter} (or {client_counter} with {client_ref})."),
            code="counter",
        )
    # Without {counter}, only the client's code tells two clients' numbers apart.
    if COUNTER not in names and CLIENT_REF not in names:
        raise ValidationError(
            _("With {client_counter} but no {counter}, two clients would get the same "
              "numbers: add {client_ref} (or {counter})."),
            code="client_collision",
        )
    # A client code ends where literal text begins: ACME{client_counter} could be client
    # ACME's 1001st number or client ACME1's first.
    if re.search(r"\{client_ref\}\{|\}\{client_ref\}", pattern):
        raise ValidationError(
            _("Put some text (e.g. a hyphen) between {client_ref} and the tokens beside it: "
              "otherwise two clients' numbers could be the same."),
            code="client_ref_adjacent",
        )
    has_year = bool(YEAR_TOKENS.intersection(names))
    if reset_period == YEARLY and fiscal_start == 1 and not (has_year or FISCAL_YEAR in names):
        raise ValidationError(
            _("Numbers restart every year, so the pattern needs {YYYY}, {YY} or {FY}; "
              "without it a number would repeat."),
            code="reset_token",
        )
    # A fiscal year straddles two calendar years: the calendar year alone does not tell
    # January's numbers of one fiscal year from those of the next; with the month it does.
    if (reset_period == YEARLY and fiscal_start != 1 and FISCAL_YEAR not in names
            and not (has_year and "MM" in names)):
        raise ValidationError(
            _("Numbers restart every fiscal year, so the pattern needs {FY} (or a year "
              "with {MM}); without it a number would repeat."),
            code="reset_token",
        )
    if reset_period == MONTHLY and not ("MM" in names and (has_year or FISCAL_YEAR in names)):
        raise ValidationError(
            _("Numbers restart every month, so the pattern needs {MM} and a year "
              "({YYYY}, {YY} or {FY}); without them a number would repeat."),
            code="reset_token",
        )


def format_number(pattern, issue_date: date, value: int, padding: int = 0,
                  fiscal_start: int = 1, *, client_value: int | None = None,
                  client_padding: int = 0, client_ref: str = "") -> str:
    """
    The number that ``value`` takes in ``pattern`` for a document issued on ``issue_date``,
    fiscal years starting in month ``fiscal_start``; ``client_value`` and ``client_ref`` are
    the client's counter value and code (``{client_counter}``, ``{client_ref}``).
    """
    padding = min(max(int(padding or 0), 0), MAX_PADDING)
    client_padding = min(max(int(client_padding or 0), 0), MAX_PADDING)

    def replace(match):
        name = match.group(1)
        if name == COUNTER:
            return f"{value:0{padding}d}"
        if name == CLIENT_COUNTER:
            return f"{client_value or 0:0{client_padding}d}"
        if name == CLIENT_REF:
            return client_ref
        if name == FISCAL_YEAR:
            return fiscal_year_label(issue_date, fiscal_start)
        return DATE_TOKENS[name](issue_date)

    return TOKEN_RE.sub(replace, pattern)


def period_key(reset_period, issue_date: date, fiscal_start: int = 1) -> str:
    """
    The period a value belongs to: values restart at 1 in each period. ``2026`` (a calendar
    year), ``2026/04`` (the fiscal year starting in April 2026), ``2026-03`` (a month) or
    ``""`` (all time).
    """
    if reset_period == YEARLY:
        if fiscal_start == 1:
            return f"{issue_date.year:04d}"
        return f"{fiscal_year(issue_date, fiscal_start):04d}/{fiscal_start:02d}"
    if reset_period == MONTHLY:
        return f"{issue_date.year:04d}-{issue_date.month:02d}"
    return ""


PERIOD_RE = re.compile(r"^(?P<year>\d{4})(?:(?P<sep>[-/])(?P<month>0[1-9]|1[0-2]))?$")


def is_period(key) -> bool:
    """Whether ``key`` is a period key (see ``period_key``); ``""`` is one."""
    return key == "" or bool(PERIOD_RE.match(key))


def period_span(key) -> tuple[date, date] | None:
    """The days of a period key as ``(first, after the last)``; None for all time."""
    if not key:
        return None
    match = PERIOD_RE.match(key)
    if match is None:
        raise ValueError(f"not a period key: {key!r}")
    year, sep, month = int(match["year"]), match["sep"], int(match["month"] or 1)
    first = date(year, month, 1)
    if sep == "-":
        return first, date(year + month // 12, month % 12 + 1, 1)
    return first, date(year + 1, month, 1)


def period_contains(key, day: date) -> bool:
    span = period_span(key)
    return span is None or span[0] <= day < span[1]


def periods_overlap(a: str, b: str) -> bool:
    """Whether two period keys share a day ("" is all time, "2026" holds "2026-03")."""
    span_a, span_b = period_span(a), period_span(b)
    if span_a is None or span_b is None:
        return True
    return span_a[0] < span_b[1] and span_b[0] < span_a[1]


def shape(pattern, fiscal_start: int = 1) -> str:
    """
    The pattern's shape: every run of digits it can produce becomes ``#``.

    Every token produces one or more digits (``{FY}`` two runs around a hyphen when fiscal
    years straddle calendar years), so a number formatted from a pattern always has the
    pattern's shape. Two patterns of different shapes can never produce the same number; two
    of the same shape can (``{YYYY}{counter}`` and ``{YY}{MM}{counter}`` both give 2026001).
    """
    fiscal = "0" if fiscal_start == 1 else "0-0"
    digits = TOKEN_RE.sub(lambda m: fiscal if m.group(1) == FISCAL_YEAR else "0", pattern)
    return re.sub(r"\d+", "#", digits)


def number_regex(pattern, fiscal_start: int = 1) -> str:
    """
    A regular expression (Python's and PostgreSQL's alike) matching every number
    ``pattern`` can produce, and some more: each token is any run of digits (``{FY}`` two
    when fiscal years straddle calendar years), ``{client_ref}`` any text.
    """
    parts, position = ["^"], 0
    for match in TOKEN_RE.finditer(pattern):
        parts.append(re.escape(pattern[position:match.start()]))
        token = match.group(1)
        if token == CLIENT_REF:
            parts.append(".+")
        elif token == FISCAL_YEAR and fiscal_start != 1:
            parts.append("[0-9]+-[0-9]+")
        else:
            parts.append("[0-9]+")
        position = match.end()
    parts.append(re.escape(pattern[position:]) + "$")
    return "".join(parts)


def patterns_may_collide(first, second, fiscal_start: int = 1,
                         second_fiscal_start: int | None = None) -> bool:
    """
    Whether two series' patterns could produce the same number. Without ``{client_ref}``:
    when their shapes are the same. A client code can be any text, so with it the patterns
    are compared by their shapes up to it: they stay apart only where those differ (INV-
    and CN-, or 26… and CN…), before either reaches a client's code. ``second_fiscal_start``
    is the second pattern's fiscal year, when it is not the first's.
    """
    heads = []
    starts = (fiscal_start, fiscal_start if second_fiscal_start is None else second_fiscal_start)
    for pattern, start in zip((first, second), starts, strict=True):
        head, ref, _tail = pattern.partition("{" + CLIENT_REF + "}")
        heads.append((shape(head, start), bool(ref)))
    (a, a_open), (b, b_open) = heads
    common = min(len(a), len(b))
    if a[:common] != b[:common]:
        return False
    if len(a) == len(b):
        return True
    # The shorter one ends there: a client's code could go on like the longer one.
    return a_open if len(a) < len(b) else b_open
