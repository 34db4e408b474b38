"""PDFs of documents, rendered by WeasyPrint from an HTML template."""

import threading

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation


def document_pdf(document) -> bytes:
    """
    The PDF of ``document``, from what it says (``Document.content``: its snapshot once
    issued), in the language of its client (texts, dates and amounts): a draft's is marked
    DRAFT and carries no number.

    When its company makes e-invoices, an issued invoice or credit note (never a quote)
    whose content makes a valid one gets a Factur-X PDF: PDF/A-3b with its CII XML embedded
    (``billing.einvoice.facturx``), which a person reads and a program books. This is the
    PDF that is downloaded and e-mailed.
    """
    from .einvoice.checks import problems
    from .einvoice.exports import export

    content = document.content  # as issued, once issued
    if (document.is_issued and document.is_einvoice_kind and document.company.einvoicing
            and not problems(content)):
        return export(document, "facturx").data
    return render_pdf(document, content)


def render_pdf(document, content, variant=None) -> bytes:
    """The PDF of ``document`` saying ``content``, as WeasyPrint writes it."""
    from weasyprint import HTML  # imported here: loading Pango costs ~0.3 s

    with translation.override(content.locale):
        html = render_to_string("billing/document_pdf.html", {
            "document": document, "content": content, "language": content.locale,
            "lines": content.lines, "taxes": content.breakdown, "company": content.seller,
        })
    return HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf(
        pdf_variant=variant, font_config=_font_config())


_fonts = threading.local()


def _font_config():
    """
    One WeasyPrint font configuration per thread, kept: a fresh one for each PDF (WeasyPrint's
    default) leaves memory behind every time, so a worker e-mailing thousands of PDFs grew
    without bound. Pango's font map is not shared between threads.
    """
    from weasyprint.text.fonts import FontConfiguration

    if not hasattr(_fonts, "config"):
        _fonts.config = FontConfiguration()
    return _fonts.config


def pdf_filename(document) -> str:
    name = document.number or f"draft-{document.kind}-{document.pk}"
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name) + ".pdf"
