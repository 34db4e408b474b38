from decimal import Decimal

from django import template
from django.urls import reverse
from django.utils.formats import number_format

from billing.models import DocumentState, is_overdue

register = template.Library()


@register.filter
def money(amount, currency=""):
    """``1234.5|money:"EUR"`` -> "1,234.50 EUR", grouped in the active locale."""
    if amount in (None, ""):
        return ""
    formatted = number_format(amount, 2, use_l10n=True, force_grouping=True)
    return f"{formatted}\u00a0{currency}" if currency else formatted


@register.filter
def quantity(value):
    """A quantity without trailing zeros: 2.000 -> 2, 1.500 -> 1.5."""
    if value in (None, ""):
        return ""
    normal = Decimal(value).normalize()
    places = max(0, -normal.as_tuple().exponent)
    return number_format(normal, places, use_l10n=True)


@register.inclusion_tag("billing/_state_badge.html")
def state_badge(document, today=None):
    """A document's state badge; "Overdue" beside it when it is overdue on ``today``."""
    return {
        "state": document.state,
        "label": document.get_state_display(),
        "overdue": today is not None and is_overdue(document.state, document.due_date, today),
    }


@register.simple_tag
def document_url(document, action="detail"):
    """The URL of ``document``'s page, or of ``action`` ("send", "pdf", ...) on it."""
    return reverse(f"{document.kind}_{action}", args=[document.pk])


@register.filter
def state_label(state):
    """A document state's label; a state the app does not know is shown as it is."""
    return dict(DocumentState.choices).get(state, state)
