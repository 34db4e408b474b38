"""
Factur-X (ZUGFeRD 2): a PDF/A-3b that carries the document's CII XML as ``factur-x.xml``,
with the Factur-X XMP metadata, so that a person reads it and a program books it. WeasyPrint
writes the PDF/A-3b; the ``factur-x`` package embeds the XML and checks it against the
Factur-X schema of its level (EN 16931).
"""

import io

import facturx
import pypdf
from django.utils import translation
from django.utils.translation import gettext as _

from .cii import cii


def facturx_pdf(number: str, content, pdf: bytes) -> bytes:
    """``pdf`` (a PDF/A-3b of the document numbered ``number`` saying ``content``), with
    its CII embedded."""
    with translation.override(content.locale):
        title = (_("Invoice %(number)s") if content.kind == "invoice"
                 else _("Credit note %(number)s")) % {"number": number}
    embedded = facturx.generate_from_binary(
        pdf, cii(number, content), flavor="factur-x", level="en16931", check_xsd=True,
        lang=content.locale,
        pdf_metadata={"author": content.seller.name, "title": f"{content.seller.name}: {title}",
                      "subject": title})
    return _info_as_xmp(embedded)


def _info_as_xmp(pdf: bytes) -> bytes:
    """
    ``pdf`` with its document information saying what its XMP metadata says, as PDF/A
    requires: factur-x writes the XMP (producer "pypdf", no keywords) but leaves
    WeasyPrint's producer, and an empty keywords entry, in the information dictionary.
    """
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(pdf)))
    info = {name: value for name, value in writer.metadata.items() if name != "/Keywords"}
    writer.metadata = {**info, "/Producer": "pypdf"}
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
