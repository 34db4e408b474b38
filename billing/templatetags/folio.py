from django import template
from django.core.exceptions import FieldDoesNotExist
from django.db.models import BooleanField
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from billing import formats
from billing.models import DocumentState, QuoteState, is_overdue
from counters import audit
from counters.models import NumberingSettings
from counters.models import series_label as models_series_label

register = template.Library()


@register.filter
def money(amount, currency=""):
    """``1234.5|money:"EUR"`` -> "1,234.50 EUR", grouped in the active locale."""
    return formats.money(amount, currency)


@register.filter
def quantity(value):
    """A quantity without trailing zeros: 2.000 -> 2, 1.500 -> 1.5."""
    return formats.quantity(value)


@register.filter
def day(value):
    """A date, the active language's one way: ``{{ invoice.issue_date|day }}``."""
    return formats.day(value)


@register.filter
def moment(value):
    """A datetime (or its ISO text) in local time, the active language's one way."""
    return formats.moment(value)


@register.inclusion_tag("billing/_state_badge.html")
def state_badge(document, today=None):
    """
    A document's state badge; "Overdue" beside it when it is overdue on ``today``, "Expired"
    beside a sent quote past its valid-until date.
    """
    return {
        "state": document.state,
        "label": document.get_state_display(),
        "overdue": today is not None and is_overdue(document.state, document.due_date, today),
        "expired": today is not None and hasattr(document, "is_expired_on")
        and document.is_expired_on(today),
    }


@register.simple_tag
def document_url(document, action="detail"):
    """The URL of ``document``'s page, or of ``action`` ("send", "pdf", ...) on it."""
    return reverse(f"{document.kind}_{action}", args=[document.pk])


@register.simple_tag
def kind_url(kind, action):
    """The URL of a page of a kind of document: ``{% kind_url "quote" "create" %}``."""
    return reverse(f"{kind}_{action}")


@register.filter
def state_label(state):
    """A document state's label; a state the app does not know is shown as it is."""
    return {**dict(DocumentState.choices), **dict(QuoteState.choices)}.get(state, state)


@register.filter
def series_label(series):
    """A counter's key as people call it: "credit_note" -> "Credit note", "SHOP/invoice" ->
    "SHOP · Invoice"."""
    return models_series_label(series)


FINDING_LABELS = {
    audit.GAP: _("Gap"),
    audit.DUPLICATE: _("Duplicate number"),
    audit.NUMBERED_DRAFT: _("Draft with a number"),
    audit.UNNUMBERED_ISSUED: _("Issued without a number"),
    audit.LEDGER_MISMATCH: _("Differs from the ledger"),
    audit.CHRONOLOGY: _("Dates out of order"),
    audit.TAMPERED: _("Altered after issue"),
    audit.STATE_MISMATCH: _("State differs from its history"),
    audit.SEQUENCE_BEHIND: _("Counter behind its ledger"),
    audit.TRUNCATED: _("Cut short since a checkpoint"),
}


@register.filter
def finding_label(kind):
    """An audit finding's kind as people call it: "chronology_break" -> "Dates out of order"."""
    return FINDING_LABELS.get(kind, kind)


# What a numbering change records beside the settings' own fields.
CHANGE_LABELS = {"default_series": _("default series")}


@register.simple_tag
def settings_changes(change):
    """
    What a numbering settings change changed, as ``(label, before, after)`` rows with the
    fields' labels and values as the settings page shows them (before is "" on creation).
    """
    rows = []
    for name, after in change.new.items():
        before = change.old.get(name, "") if change.old else ""
        if change.old and before == after:
            continue
        try:
            field = NumberingSettings._meta.get_field(name)
        except FieldDoesNotExist:
            label, shown = CHANGE_LABELS.get(name, name), str
        else:
            label, shown = field.verbose_name, _shown_as(field)
        rows.append((label, shown(before) if change.old else "", shown(after)))
    return rows


def _shown_as(field):
    if field.choices:
        choices = dict(field.flatchoices)
        return lambda value: choices.get(value, value)
    if isinstance(field, BooleanField):
        return formats.yes_no
    return str


@register.filter
def credit_quantity(form, line):
    """The credit form's quantity field of ``line``."""
    return form.quantity_field(line)
