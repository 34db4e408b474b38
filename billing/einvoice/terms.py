"""The texts an e-invoice carries, in the language of the document (its client's)."""

from django.utils import translation
from django.utils.translation import gettext as _


def document_notes(content) -> list[str]:
    """The document's notes (BT-22): a credit note's reason first, then its notes."""
    return [note for note in (content.reason, content.notes) if note]


def payment_terms(content) -> str:
    """
    The payment terms (BT-20). Every e-invoice carries them: with a due date they say when,
    and a credit note, which has no due date, says how it is settled.
    """
    with translation.override(content.locale):
        if content.kind != "invoice":
            if content.corrects and content.corrects.number:
                return _("Deducted from invoice %(number)s, or refunded if it is paid.") % {
                    "number": content.corrects.number}
            return _("Refunded, or deducted from the next invoice.")
        return _("Payment within %(days)s days.") % {"days": content.payment_terms_days}
