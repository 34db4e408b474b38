"""
Number patterns: pure functions to parse, validate and format them.

A pattern is literal text with tokens in braces, e.g. ``INV-{YYYY}-{counter}``:

========== ==========================================
``{YYYY}`` the issue date's year, four digits
``{YY}``   the issue date's year, last two digits
``{MM}``   the issue date's month, two digits
``{counter}`` the sequence value, zero-padded to ``padding``
========== ==========================================

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
KNOWN_TOKENS = {COUNTER, *DATE_TOKENS}

NEVER, YEARLY, MONTHLY = "never", "yearly", "monthly"
# The widest a counter is ever zero-padded: a larger padding (an unsaved form's, say) is read
# as this, so that formatting never allocates in proportion to what someone typed.
MAX_PADDING = 12


def tokens(pattern):
    """The token names in ``pattern``, in order."""
    return TOKEN_RE.findall(pattern)


def validate_pattern(pattern, *, reset_period=NEVER):
    """
    Raise ValidationError unless ``pattern`` numbers a series whose values restart every
    ``reset_period`` without ever repeating a number.
    """
    if not pattern or not pattern.strip():
        raise ValidationError(_("A pattern cannot be empty."), code="empty")
    names = tokens(pattern)
    unknown = [name for name in names if name not in KNOWN_TOKENS]
    if unknown:
        raise ValidationError(
            _("Unknown token {%(token)s}. Use {YYYY}, {YY}, {MM} and {counter}."),
            code="unknown_token",
            params={"token": unknown[0]},
        )
    if "{" in TOKEN_RE.sub("", pattern) or "}" in TOKEN_RE.sub("", pattern):
        raise ValidationError(_("A brace in the pattern is not closed."), code="unbalanced")
    if names.count(COUNTER) != 1:
        raise ValidationError(
            _("A pattern must contain {counter} exactly once."), code="counter"
        )
    has_year = "YYYY" in names or "YY" in names
    if reset_period in (YEARLY, MONTHLY) and not has_year:
        raise ValidationError(
            _("Numbers restart every year, so the pattern needs {YYYY} or {YY}; "
              "without it a number would repeat."),
            code="reset_token",
        )
    if reset_period == MONTHLY and "MM" not in names:
        raise ValidationError(
            _("Numbers restart every month, so the pattern needs {MM}; "
              "without it a number would repeat."),
            code="reset_token",
        )


def format_number(pattern, issue_date: date, value: int, padding: int = 0) -> str:
    """The number that ``value`` takes in ``pattern`` for a document issued on ``issue_date``."""
    padding = min(max(int(padding or 0), 0), MAX_PADDING)

    def replace(match):
        name = match.group(1)
        if name == COUNTER:
            return f"{value:0{padding}d}"
        return DATE_TOKENS[name](issue_date)

    return TOKEN_RE.sub(replace, pattern)


def period_key(reset_period, issue_date: date) -> str:
    """The period a value belongs to: values restart at 1 in each period."""
    if reset_period == YEARLY:
        return f"{issue_date.year:04d}"
    if reset_period == MONTHLY:
        return f"{issue_date.year:04d}-{issue_date.month:02d}"
    return ""


def periods_overlap(a: str, b: str) -> bool:
    """Whether two period keys share a day ("" is all time, "2026" contains "2026-03")."""
    return a.startswith(b) or b.startswith(a)


def shape(pattern) -> str:
    """
    The pattern's shape: every run of digits it can produce becomes ``#``.

    Every token produces one or more digits, so a number formatted from a pattern always has
    the pattern's shape. Two patterns of different shapes can never produce the same number;
    two of the same shape can (``{YYYY}{counter}`` and ``{YY}{MM}{counter}`` both give 2026001).
    """
    digits = TOKEN_RE.sub("0", pattern)
    return re.sub(r"\d+", "#", digits)


def patterns_may_collide(first, second) -> bool:
    return shape(first) == shape(second)
