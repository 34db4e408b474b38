"""
An issued document as an electronic invoice, in the syntax asked for: Peppol BIS 3.0 UBL,
CII (EN 16931) or a Factur-X PDF. Every export is written from the document's snapshot, so
the same document always exports the same content.
"""

from dataclasses import dataclass

from django.utils.translation import gettext as _

from .checks import peppol_problems, problems
from .cii import cii
from .ubl import ubl

SYNTAXES = ("ubl", "cii", "facturx")


class NotExportable(ValueError):
    """The document has no e-invoice: a draft, or content an e-invoice cannot carry."""


@dataclass(frozen=True)
class Export:
    data: bytes
    filename: str
    content_type: str


def export(document, syntax: str) -> Export:
    """``document`` (issued) as an e-invoice in ``syntax`` (one of ``SYNTAXES``)."""
    from ..pdf import pdf_filename, render_pdf
    from .facturx import facturx_pdf

    if syntax not in SYNTAXES:
        raise NotExportable(_("Unknown e-invoice syntax %(syntax)s: use one of %(syntaxes)s.")
                            % {"syntax": syntax, "syntaxes": ", ".join(SYNTAXES)})
    if not document.is_einvoice_kind:
        raise NotExportable(_("A quote is not an invoice: it has no e-invoice, only its PDF."))
    if document.is_draft:
        raise NotExportable(_("A draft has no e-invoice: it gets one when it is sent."))
    content = document.content
    found = problems(content) + (peppol_problems(content) if syntax == "ubl" else [])
    if found:
        raise NotExportable(_("This document cannot make a valid e-invoice: %(problems)s")
                            % {"problems": " ".join(found)})
    stem = pdf_filename(document).removesuffix(".pdf")
    if syntax == "ubl":
        return Export(ubl(document.number, content), f"{stem}-ubl.xml", "application/xml")
    if syntax == "cii":
        return Export(cii(document.number, content), f"{stem}-cii.xml", "application/xml")
    pdf = facturx_pdf(document.number, content, render_pdf(document, content,
                                                           variant="pdf/a-3b"))
    return Export(pdf, f"{stem}.pdf", "application/pdf")


def einvoice_problems(content) -> list[str]:
    """Why a document saying ``content`` has no valid e-invoice (empty when it has one)."""
    return problems(content)


def ubl_problems(content) -> list[str]:
    """Why a document saying ``content`` has no valid Peppol UBL (empty when it has one)."""
    return problems(content) + peppol_problems(content)
