"""
What an e-invoice needs, checked before a document is issued and said in Folio's words.

An issued document cannot be corrected, so a company with e-invoicing on refuses to send a
document whose e-invoice would break the official rules of EN 16931 (``problems``): each
problem names the data to add or change ("Add the client's country"), never a rule code.
What only the Peppol network needs, the electronic addresses of both parties
(``peppol_problems``), does not stop a send: without it the document has its CII and its
Factur-X PDF, but no Peppol UBL.

The tests prove that a document these checks accept exports valid UBL and CII, and that each
problem they name is one the official rules would report.
"""

from django.utils.translation import gettext as _
from django_countries import countries
from stdnum import ean
from stdnum.au import abn
from stdnum.be import vat as be_vat
from stdnum.dk import cvr
from stdnum.eu import vat as eu_vat
from stdnum.fr import siren, siret
from stdnum.no import orgnr as no_orgnr
from stdnum.se import orgnr as se_orgnr

from .codes import (
    BUYER_VAT_CATEGORIES,
    CURRENCIES,
    ENDPOINT_SCHEMES,
    EXEMPTION_CATEGORIES,
    VATEX_CATEGORY,
    VATEX_CODES,
    TaxCategory,
)

# Electronic address schemes whose identifiers have a check digit or a fixed form that the
# Peppol rules verify: (validator, compact form as the rules want it written).
ENDPOINT_FORMS = {
    "0002": (siren.is_valid, siren.compact),
    "0007": (se_orgnr.is_valid, se_orgnr.compact),
    "0009": (siret.is_valid, siret.compact),
    "0088": (lambda value: len(value) == 13 and ean.is_valid(value), ean.compact),
    "0151": (abn.is_valid, abn.compact),
    "0184": (cvr.is_valid, cvr.compact),
    "0192": (no_orgnr.is_valid, no_orgnr.compact),
    "0208": (lambda value: value.isdigit() and len(value) == 10 and be_vat.is_valid(value),
             lambda value: be_vat.compact(value).removeprefix("BE")),
    **{scheme: (eu_vat.is_valid, eu_vat.compact) for scheme in (
        "9914", "9920", "9925", "9930", "9938", "9944", "9945", "9946", "9957")},
}


def compact_endpoint(scheme, value) -> str:
    """``value`` written as the Peppol rules want it for ``scheme`` (no spaces, no dashes)."""
    value = value.strip()
    if scheme in ENDPOINT_FORMS:
        try:
            return ENDPOINT_FORMS[scheme][1](value)
        except Exception:  # noqa: BLE001 - a value it cannot read stays as typed
            return value
    return value


def endpoint_is_valid(scheme, value) -> bool:
    return scheme in ENDPOINT_SCHEMES and ENDPOINT_FORMS.get(scheme, (bool,))[0](value)


def vat_id_problem(vat_id) -> str:
    """Why ``vat_id`` is not a VAT number an e-invoice accepts (BR-CO-09), or ""."""
    if vat_id and not (vat_id[:2] in countries or vat_id[:2] == "EL"):
        return _("A VAT number begins with its country's code, such as FR or DE.")
    return ""


def line_problems(tax_category, tax_rate, tax_exemption_reason, tax_exemption_code, *,
                  einvoicing=True) -> dict:
    """
    What is wrong with a line's tax: {field name: message}. Used by the line's validation
    (forms and the admin) and by ``problems``. A standard-rate line at 0 % is an error only
    in an e-invoice (``einvoicing``); the rest is wrong on any invoice.
    """
    category = TaxCategory(tax_category).label if tax_category in TaxCategory.values else ""
    if (einvoicing and tax_category == TaxCategory.STANDARD and tax_rate is not None
            and tax_rate <= 0):
        return {"tax_rate": _("A standard-rate line needs a rate above 0 %; for no tax, "
                              "choose the category that says why (zero rated, exempt, "
                              "reverse charge…).")}
    if tax_category != TaxCategory.STANDARD and tax_rate:
        return {"tax_rate": _("A line in the category “%(category)s” has a tax rate of "
                              "0 %%.") % {"category": category}}
    if tax_category == TaxCategory.EXEMPT and not (tax_exemption_reason or tax_exemption_code):
        return {"tax_exemption_reason": _("An exempt line needs a reason (for example "
                                          "\"Exempt under article 132 of the VAT "
                                          "Directive\") or a VATEX code.")}
    if tax_exemption_code and tax_exemption_code.upper() not in VATEX_CODES:
        return {"tax_exemption_code": _("This is not a VATEX code; they read like "
                                        "VATEX-EU-132 or VATEX-EU-AE.")}
    required = VATEX_CATEGORY.get(tax_exemption_code.upper(), tax_category)
    if required != tax_category:
        return {"tax_exemption_code": _("%(code)s is for lines in the category "
                                        "“%(category)s”.") % {
            "code": tax_exemption_code, "category": TaxCategory(required).label}}
    if tax_category not in EXEMPTION_CATEGORIES and (tax_exemption_reason
                                                     or tax_exemption_code):
        return {"tax_exemption_reason": _("A line in the category “%(category)s” has no "
                                          "exemption reason.") % {"category": category}}
    return {}


def problems(content) -> list[str]:
    """
    Why ``content`` (a ``billing.snapshot.Content``) would not make a valid e-invoice under
    EN 16931, in words a user acts on; empty when it would.
    """
    seller, buyer = content.seller, content.buyer
    categories = {line.tax_category for line in content.lines}
    found = []
    if not seller.country:
        found.append(_("Add your company's country (on the Company page)."))
    if not (seller.street and seller.postal_code and seller.city):
        found.append(_("Add your company's street, postal code and city (on the Company "
                       "page)."))
    if not buyer.country:
        found.append(_("Add the client's country."))
    if not (buyer.street and buyer.city):
        found.append(_("Add the client's street and city."))
    if TaxCategory.NOT_SUBJECT in categories:
        if categories != {TaxCategory.NOT_SUBJECT}:
            found.append(_("A line not subject to VAT cannot share a document with lines "
                           "that are: put them on separate documents."))
        if not seller.registration_id:
            found.append(_("Add your company's registration number: a document not subject "
                           "to VAT names the seller by it (on the Company page)."))
    else:
        if not seller.vat_id:
            found.append(_("Add your company's VAT number (on the Company page)."))
        if vat_id_problem(seller.vat_id):
            found.append(_("Your company's VAT number must begin with its country's code, "
                           "such as FR (on the Company page)."))
        if vat_id_problem(buyer.vat_id):
            found.append(_("The client's VAT number must begin with its country's code, "
                           "such as DE."))
    if categories & BUYER_VAT_CATEGORIES and not buyer.vat_id:
        found.append(_("A reverse-charge or intra-community line needs the client's VAT "
                       "number."))
    if content.currency not in CURRENCIES:
        found.append(_("%(currency)s is not a currency code: use one such as EUR or USD.")
                     % {"currency": content.currency})
    reasons = {}
    for number, line in enumerate(content.lines, start=1):
        for message in line_problems(line.tax_category, line.tax_rate,
                                     line.tax_exemption_reason,
                                     line.tax_exemption_code).values():
            found.append(_("Line %(number)s: %(problem)s") % {"number": number,
                                                              "problem": message})
        if line.tax_category in EXEMPTION_CATEGORIES:
            reasons.setdefault(line.tax_category, set()).add(
                (line.tax_exemption_reason, line.tax_exemption_code.upper()))
    for category, given in reasons.items():
        if len(given) > 1:
            found.append(_("The lines in the category “%(category)s” give different "
                           "exemption reasons: an e-invoice has one per category.") % {
                "category": TaxCategory(category).label})
    return found


def peppol_problems(content) -> list[str]:
    """What the Peppol network needs beyond EN 16931: both parties' electronic addresses."""
    found = []
    for party, missing, invalid in (
        (content.seller,
         _("Add your company's electronic address for e-invoices (on the Company page)."),
         _("Your company's electronic address is not a valid %(scheme)s identifier.")),
        (content.buyer,
         _("Add the client's electronic address for e-invoices (its Peppol ID)."),
         _("The client's electronic address is not a valid %(scheme)s identifier.")),
    ):
        if not (party.endpoint_scheme and party.endpoint_id):
            found.append(missing)
        elif not endpoint_is_valid(party.endpoint_scheme, party.endpoint_id):
            found.append(invalid % {"scheme": party.endpoint_scheme})
    return found
