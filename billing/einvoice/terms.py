"""The texts an e-invoice carries, in the language of the document (its client's)."""

import re

from django.utils import translation
from django.utils.translation import gettext as _

from .. import formats


def document_notes(content) -> list[str]:
    """The document's notes (BT-22): a credit note's reason first, then its notes."""
    return [note for note in (content.reason, content.notes) if note]


def payment_terms(content) -> str:
    """
    The payment terms (BT-20). Every e-invoice carries them: an invoice says when it is due,
    and a credit note, which has no due date, says how it is settled.
    """
    with translation.override(content.locale):
        if content.kind != "invoice":
            if content.corrects and content.corrects.number:
                return _("Deducted from invoice %(number)s, or refunded if it is paid.") % {
                    "number": content.corrects.number}
            return _("Refunded, or deducted from the next invoice.")
        if content.due_date:
            return _("Payment due by %(date)s.") % {"date": formats.day(content.due_date)}
        return _("Payment within %(days)s days.") % {"days": content.payment_terms_days}


# Characters XML 1.0 cannot carry (controls but tab and line breaks, as pasted from a word
# processor), which a text field may still hold: an e-invoice leaves them out.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _add_text(element, text):
    """lxml's way of adding ``text`` to ``element``, for ElementMaker's type map."""
    text = NOT_XML.sub("", text)
    if len(element):
        element[-1].tail = (element[-1].tail or "") + text
    else:
        element.text = (element.text or "") + text


# The type map of Folio's XML builders: texts lose what XML cannot carry.
XML_TEXT = {str: _add_text}
