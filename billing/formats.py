"""
How Folio writes amounts, dates and times: one format per language, the active one. Pages,
messages, PDFs and e-mails all go through these (templates through the ``folio`` filters).
"""

from datetime import datetime
from decimal import Decimal

from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext_lazy as _


def money(amount, currency=""):
    """``1234.5, "EUR"`` -> "1,234.50 EUR" in English, "1.234,50 EUR" in German."""
    if amount in (None, ""):
        return ""
    formatted = number_format(amount, 2, use_l10n=True, force_grouping=True)
    return f"{formatted}\u00a0{currency}" if currency else formatted


def quantity(value):
    """A quantity or a rate without trailing zeros: 2.000 -> 2, 1.500 -> 1.5 (1,5 in French)."""
    if value in (None, ""):
        return ""
    normal = Decimal(value).normalize()
    places = max(0, -normal.as_tuple().exponent)
    return number_format(normal, places, use_l10n=True)


def day(value):
    """A date, the one way the active language writes it: "Jan. 5, 2026", "5 janvier 2026"."""
    if value in (None, ""):
        return ""
    return date_format(value, "DATE_FORMAT")


def moment(value):
    """
    A point in time (a datetime or its ISO text) in the local time zone, written the active
    language's way: "Jan. 5, 2026, 2:30 p.m.", "5 janvier 2026 14:30".
    """
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return date_format(value, "DATETIME_FORMAT")


def yes_no(value):
    return _("yes") if value else _("no")
