from decimal import Decimal

from django import template
from django.utils.formats import number_format
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

register = template.Library()


@register.filter
def money(amount, currency=""):
    """``1234.5|money:"EUR"`` -> "1,234.50 EUR", grouped in the active locale."""
    if amount in (None, ""):
        return ""
    formatted = number_format(Decimal(amount), 2, use_l10n=True, force_grouping=True)
    return f"{formatted}\u00a0{currency}" if currency else formatted


@register.filter
def quantity(value):
    """A quantity without trailing zeros: 2.000 -> 2, 1.500 -> 1.5."""
    if value in (None, ""):
        return ""
    normal = Decimal(value).normalize()
    places = max(0, -normal.as_tuple().exponent)
    return number_format(normal, places, use_l10n=True)


@register.simple_tag
def state_badge(document, today=None):
    """The state as a badge, and "Overdue" beside a sent document past its due date.

    Built here rather than in an included template: lists show one per row."""
    badge = (f'<span class="badge badge-{escape(document.state)}">'
             f"{escape(document.get_state_display())}</span>")
    if document.state == "sent" and document.due_date and today and document.due_date < today:
        badge += f' <span class="badge badge-overdue">{escape(gettext("Overdue"))}</span>'
    return mark_safe(badge)
