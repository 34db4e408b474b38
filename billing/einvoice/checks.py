"""
What an e-invoice needs, checked before a document is issued and said in Folio's words.

An issued document cannot be corrected, so a company with e-invoicing on refuses to send a
document whose e-invoice would break the official rules (EN 16931 and Peppol BIS 3.0): each
problem names the data to add or change ("Add the client's country"), never a rule code.
The tests prove that a document these checks accept exports valid UBL and CII, and that each
problem they name is one the official rules would report.
"""

from django.utils.translation import gettext as _
from stdnum import ean
from stdnum.be import vat as be_vat
from stdnum.eu import vat as eu_vat
from stdnum.fr import siren, siret
from stdnum.no import orgnr as no_orgnr
from stdnum.se import orgnr as se_orgnr

from .codes import (
    BUYER_VAT_CATEGORIES,
    CURRENCIES,
    DEFAULT_EXEMPTIONS,
    ENDPOINT_SCHEMES,
    EXEMPTION_CATEGORIES,
    TaxCategory,
)

# Electronic address schemes whose identifiers have a check digit or a fixed form that the
# Peppol rules verify, with the validator of each.
ENDPOINT_VALIDATORS = {
    "0002": siren.is_valid,
    "0007": se_orgnr.is_valid,
    "0009": siret.is_valid,
    "0088": lambda value: len(value) == 13 and ean.is_valid(value),
    "0192": no_orgnr.is_valid,
    "0208": lambda value: value.isdigit() and len(value) == 10 and be_vat.is_valid(value),
    **{scheme: eu_vat.is_valid for scheme in (
        "9914", "9920", "9925", "9930", "9938", "9944", "9945", "9946", "9957")},
}


def line_problems(tax_category, tax_rate, tax_exemption_reason, tax_exemption_code, *,
                  einvoicing=True) -> dict:
    """
    What is wrong with a line's tax: {field name: message}. Used by the line's validation
    (forms and the admin) and by ``problems``. A standard-rate line at 0 % is an error only
    in an e-invoice (``einvoicing``); the rest is wrong on any invoice.
    """
    if (einvoicing and tax_category == TaxCategory.STANDARD and tax_rate is not None
            and tax_rate <= 0):
        return {"tax_rate": _("A standard-rate line needs a rate above 0 %; for no tax, "
                              "choose the category that says why (zero rated, exempt, "
                              "reverse charge…).")}
    if tax_category != TaxCategory.STANDARD and tax_rate:
        return {"tax_rate": _("A line that is %(category)s has a tax rate of 0 %%.") % {
            "category": TaxCategory(tax_category).label.lower()}}
    if tax_category == TaxCategory.EXEMPT and not (tax_exemption_reason or tax_exemption_code):
        return {"tax_exemption_reason": _("An exempt line needs a reason (for example "
                                          "\"Exempt under article 132 of the VAT "
                                          "Directive\") or a VATEX code.")}
    if tax_exemption_code and not tax_exemption_code.upper().startswith("VATEX-"):
        return {"tax_exemption_code": _("A VATEX code begins with VATEX-, for example "
                                        "VATEX-EU-132.")}
    if tax_category not in EXEMPTION_CATEGORIES and (tax_exemption_reason
                                                     or tax_exemption_code):
        return {"tax_exemption_reason": _("Only a line without VAT has an exemption "
                                          "reason.")}
    return {}


def default_exemption(tax_category) -> tuple[str, str]:
    """(VATEX code, reason) that a line of ``tax_category`` carries when it gives none."""
    return DEFAULT_EXEMPTIONS.get(tax_category, ("", ""))


def problems(content) -> list[str]:
    """
    Why ``content`` (a ``billing.snapshot.Content``) would not make a valid e-invoice, in
    words a user acts on; empty when it would.
    """
    seller, buyer = content.seller, content.buyer
    categories = {line.tax_category for line in content.lines}
    found = []
    found += _party_problems(seller, {
        "country": _("Add your company's country (on the Company page)."),
        "address": _("Add your company's street and city (on the Company page)."),
        "endpoint": _("Add your company's electronic address for e-invoices (on the "
                      "Company page)."),
        "endpoint_invalid": _("Your company's electronic address is not a valid "
                              "%(scheme)s identifier."),
    })
    found += _party_problems(buyer, {
        "country": _("Add the client's country."),
        "address": _("Add the client's street and city."),
        "endpoint": _("Add the client's electronic address for e-invoices (its Peppol "
                      "ID)."),
        "endpoint_invalid": _("The client's electronic address is not a valid %(scheme)s "
                              "identifier."),
    })
    if TaxCategory.NOT_SUBJECT in categories:
        if categories != {TaxCategory.NOT_SUBJECT}:
            found.append(_("A line not subject to VAT cannot share a document with lines "
                           "that are: put them on separate documents."))
        if not seller.registration_id:
            found.append(_("Add your company's registration number: a document not subject "
                           "to VAT names the seller by it (on the Company page)."))
    elif not seller.vat_id:
        found.append(_("Add your company's VAT number (on the Company page)."))
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
            found.append(_("The lines that are %(category)s give different exemption "
                           "reasons: an e-invoice has one per category.") % {
                "category": TaxCategory(category).label.lower()})
    return found


def _party_problems(party, messages) -> list[str]:
    found = []
    if not party.country:
        found.append(messages["country"])
    if not (party.street and party.city):
        found.append(messages["address"])
    if not (party.endpoint_scheme and party.endpoint_id):
        found.append(messages["endpoint"])
    elif party.endpoint_scheme not in ENDPOINT_SCHEMES or not ENDPOINT_VALIDATORS.get(
            party.endpoint_scheme, bool)(party.endpoint_id):
        found.append(messages["endpoint_invalid"] % {"scheme": party.endpoint_scheme})
    return found
