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
========== ==========================================

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
DATE_TOKENS = {
    "YYYY": lambda d: f"{d.year:04d}",
    "YY": lambda d: f"{d.year % 100:02d}",
    "MM": lambda d: f"{d.month:02d}",
}
FISCAL_YEAR = "FY"
YEAR_TOKENS = {"YYYY", "YY"}
KNOWN_TOKENS = {COUNTER, FISCAL_YEAR, *DATE_TOKENS}

NEVER, YEARLY, MONTHLY = "never", "yearly", "monthly"
# The widest a counter is ever zero-padded: a larger padding (an unsaved form's, say) is read
# as this, so that formatting never allocates in proportion to what someone typed.
MAX_PADDING = 12


def tokens(pattern):
    """The token names in ``pattern``, in order."""
    return TOKEN_RE.findall(pattern)


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
            _("Unknown token {%(token)s}. Use {YYYY}, {YY}, {MM}, {FY} and {counter}."),
            code="unknown_token",
            params={"token": unknown[0]},
        )
    if "{" in TOKEN_RE.sub("", pattern) or "}" in TOKEN_RE.sub("", pattern):
        raise ValidationError(_("A brace in the pattern is not closed."), code="unbalanced")
    if names.count(COUNTER) != 1:
        raise ValidationError(
            _("A pattern must contain {counter} exactly once."), code="counter"
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
                  fiscal_start: int = 1) -> str:
    """
    The number that ``value`` takes in ``pattern`` for a document issued on ``issue_date``,
    fiscal years starting in month ``fiscal_start``.
    """
    padding = min(max(int(padding or 0), 0), MAX_PADDING)

    def replace(match):
        name = match.group(1)
        if name == COUNTER:
            return f"{value:0{padding}d}"
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


def patterns_may_collide(first, second, fiscal_start: int = 1) -> bool:
    return shape(first, fiscal_start) == shape(second, fiscal_start)
