from decimal import Decimal

from django import template
from django.utils.formats import number_format
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from billing.models import is_overdue

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


def badge_html(state, label, overdue):
    """The state as a badge, and an "Overdue" badge beside it when ``overdue``."""
    badge = f'<span class="badge badge-{escape(state)}">{escape(label)}</span>'
    if overdue:
        badge += f' <span class="badge badge-overdue">{escape(gettext("Overdue"))}</span>'
    return mark_safe(badge)


@register.simple_tag
def state_badge(document, today=None):
    """A document's state badge; "Overdue" beside it when it is overdue on ``today``."""
    overdue = today is not None and is_overdue(document.state, document.due_date, today)
    return badge_html(document.state, document.get_state_display(), overdue)
