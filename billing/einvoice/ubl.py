"""
UBL 2.1 as Peppol BIS Billing 3.0: an ``Invoice`` (type code 380) or a ``CreditNote`` (381)
written from what an issued document says (its snapshot), so that its XML never changes.

Elements come in the order the UBL schema requires; empty values are left out (Peppol
refuses empty elements).
"""

from lxml import etree
from lxml.builder import ElementMaker

from .codes import REGISTRATION_SCHEMES, TaxCategory
from .terms import XML_TEXT, document_notes, payment_terms

CUSTOMIZATION = ("urn:cen.eu:en16931:2017#compliant#"
                 "urn:fdc:peppol.eu:2017:poacc:billing:3.0")
PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
CAC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
ROOT_NS = {"invoice": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
           "credit_note": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"}
CREDIT_TRANSFER = "30"

# The namespaces are declared once, on the root; elements made without a map of their own
# take the root's prefixes when they join it (and are made twice as fast).
cac = ElementMaker(namespace=CAC_NS, typemap=XML_TEXT)
cbc = ElementMaker(namespace=CBC_NS, typemap=XML_TEXT)


def ubl(number: str, content) -> bytes:
    """The UBL of the document numbered ``number`` that says ``content`` (a snapshot)."""
    is_invoice = content.kind == "invoice"
    currency = content.currency
    not_subject = {line.tax_category for line in content.lines} == {TaxCategory.NOT_SUBJECT}

    def amount(tag, value):
        return cbc(tag, f"{value:.2f}", currencyID=currency)

    root = ElementMaker(namespace=ROOT_NS[content.kind], typemap=XML_TEXT,
                        nsmap={None: ROOT_NS[content.kind], "cac": CAC_NS, "cbc": CBC_NS})
    children = [
        cbc.CustomizationID(CUSTOMIZATION),
        cbc.ProfileID(PROFILE),
        cbc.ID(number),
        cbc.IssueDate(content.issue_date.isoformat()),
    ]
    if is_invoice and content.due_date:
        children.append(cbc.DueDate(content.due_date.isoformat()))
    children.append(cbc.InvoiceTypeCode("380") if is_invoice else cbc.CreditNoteTypeCode("381"))
    children += [cbc.Note(note) for note in document_notes(content)]
    children += [cbc.DocumentCurrencyCode(currency),
                 cbc.BuyerReference(content.buyer_reference or number)]
    if content.corrects and content.corrects.number:
        children.append(cac.BillingReference(cac.InvoiceDocumentReference(*_present(
            cbc.ID(content.corrects.number),
            content.corrects.issue_date and cbc.IssueDate(
                content.corrects.issue_date.isoformat())))))
    children += [
        cac.AccountingSupplierParty(_party(content.seller, not_subject, seller=True)),
        cac.AccountingCustomerParty(_party(content.buyer, not_subject, seller=False)),
    ]
    if any(line.tax_category == TaxCategory.INTRA_COMMUNITY for line in content.lines):
        # An intra-community supply states when and where the goods went (BR-IC-11, -12).
        children.append(cac.Delivery(
            cbc.ActualDeliveryDate(content.issue_date.isoformat()),
            cac.DeliveryLocation(cac.Address(cac.Country(
                cbc.IdentificationCode(content.buyer.country))))))
    if is_invoice and content.seller.iban:
        children.append(cac.PaymentMeans(
            cbc.PaymentMeansCode(CREDIT_TRANSFER),
            cbc.PaymentID(number),
            cac.PayeeFinancialAccount(*_present(
                cbc.ID(content.seller.iban),
                content.seller.bic and cac.FinancialInstitutionBranch(
                    cbc.ID(content.seller.bic))))))
    children.append(cac.PaymentTerms(cbc.Note(payment_terms(content))))
    children.append(cac.TaxTotal(
        amount("TaxAmount", content.tax),
        *[cac.TaxSubtotal(
            amount("TaxableAmount", group.taxable),
            amount("TaxAmount", group.tax),
            _tax_category("TaxCategory", group.category, group.rate,
                          group.exemption_code, group.exemption_reason))
          for group in content.breakdown]))
    children.append(cac.LegalMonetaryTotal(
        amount("LineExtensionAmount", content.subtotal),
        amount("TaxExclusiveAmount", content.subtotal),
        amount("TaxInclusiveAmount", content.total),
        amount("PayableAmount", content.total)))
    line_tag, quantity_tag = (("InvoiceLine", "InvoicedQuantity") if is_invoice
                              else ("CreditNoteLine", "CreditedQuantity"))
    for index, line in enumerate(content.lines, start=1):
        children.append(cac(
            line_tag,
            cbc.ID(str(index)),
            cbc(quantity_tag, _quantity(line.quantity), unitCode=line.unit_code),
            amount("LineExtensionAmount", line.net_amount),
            cac.Item(cbc.Name(line.description),
                     _tax_category("ClassifiedTaxCategory", line.tax_category,
                                   line.tax_rate)),
            cac.Price(amount("PriceAmount", line.unit_price))))
    document = (root.Invoice if is_invoice else root.CreditNote)(*children)
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _party(party, not_subject, *, seller):
    """A seller's or a buyer's ``cac:Party``."""
    # A document not subject to VAT names no VAT number (BR-O-2 to BR-O-4).
    vat_id = "" if not_subject else party.vat_id
    registration_id = getattr(party, "registration_id", "")
    return cac.Party(*_present(
        party.endpoint_id and cbc.EndpointID(party.endpoint_id,
                                             schemeID=party.endpoint_scheme),
        cac.PostalAddress(*_present(
            party.street and cbc.StreetName(party.street),
            party.city and cbc.CityName(party.city),
            party.postal_code and cbc.PostalZone(party.postal_code),
            cac.Country(cbc.IdentificationCode(party.country)))),
        vat_id and cac.PartyTaxScheme(cbc.CompanyID(vat_id), cac.TaxScheme(cbc.ID("VAT"))),
        cac.PartyLegalEntity(*_present(
            cbc.RegistrationName(party.name),
            registration_id and cbc.CompanyID(registration_id, **_scheme(party)))),
        party.email and cac.Contact(cbc.ElectronicMail(party.email)),
    ))


def _scheme(party) -> dict:
    """The scheme of a seller's registration number, where its country's rules ask for it."""
    scheme = REGISTRATION_SCHEMES.get(party.country)
    return {"schemeID": scheme} if scheme else {}


def _tax_category(tag, category, rate, exemption_code="", exemption_reason=""):
    return cac(tag, *_present(
        cbc.ID(category),
        # Not subject to VAT has no rate at all (BR-O-5, BR-O-9).
        category != TaxCategory.NOT_SUBJECT and cbc.Percent(_quantity(rate)),
        exemption_code and cbc.TaxExemptionReasonCode(exemption_code),
        exemption_reason and cbc.TaxExemptionReason(exemption_reason),
        cac.TaxScheme(cbc.ID("VAT"))))


def _quantity(value) -> str:
    """A quantity or a rate as written: no exponent, no trailing zeros."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _present(*elements):
    """The elements given, without the empty values that stand for absent ones."""
    return [element for element in elements if element is not None and element is not False
            and not isinstance(element, str)]
