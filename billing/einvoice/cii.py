"""
UN/CEFACT Cross Industry Invoice D16B, EN 16931 profile: the XML Factur-X embeds, written
from what an issued document says (its snapshot). Type code 380 for an invoice, 381 for a
credit note. Elements come in the order the CII schema requires.
"""

from lxml import etree
from lxml.builder import ElementMaker

from .codes import TaxCategory
from .terms import XML_TEXT, document_notes, payment_terms
from .ubl import _present, _quantity, _scheme

EN16931 = "urn:cen.eu:en16931:2017"
RSM_NS = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM_NS = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT_NS = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT_NS = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NSMAP = {"rsm": RSM_NS, "ram": RAM_NS, "udt": UDT_NS, "qdt": QDT_NS}
CREDIT_TRANSFER = "30"

# The namespaces are declared once, on the root; elements made without a map of their own
# take the root's prefixes when they join it (and are made twice as fast).
rsm = ElementMaker(namespace=RSM_NS, nsmap=NSMAP, typemap=XML_TEXT)  # the root's
ram = ElementMaker(namespace=RAM_NS, typemap=XML_TEXT)
udt = ElementMaker(namespace=UDT_NS, typemap=XML_TEXT)
qdt = ElementMaker(namespace=QDT_NS, typemap=XML_TEXT)


def cii(number: str, content) -> bytes:
    """The CII of the document numbered ``number`` that says ``content`` (a snapshot)."""
    is_invoice = content.kind == "invoice"
    not_subject = {line.tax_category for line in content.lines} == {TaxCategory.NOT_SUBJECT}

    def amount(tag, value, **attributes):
        return ram(tag, f"{value:.2f}", **attributes)

    lines = [
        ram.IncludedSupplyChainTradeLineItem(
            ram.AssociatedDocumentLineDocument(ram.LineID(str(index))),
            ram.SpecifiedTradeProduct(ram.Name(line.description)),
            ram.SpecifiedLineTradeAgreement(ram.NetPriceProductTradePrice(
                amount("ChargeAmount", line.unit_price))),
            ram.SpecifiedLineTradeDelivery(
                ram.BilledQuantity(_quantity(line.quantity), unitCode=line.unit_code)),
            ram.SpecifiedLineTradeSettlement(
                ram.ApplicableTradeTax(*_present(
                    ram.TypeCode("VAT"),
                    ram.CategoryCode(line.tax_category),
                    line.tax_category != TaxCategory.NOT_SUBJECT
                    and ram.RateApplicablePercent(_quantity(line.tax_rate)))),
                ram.SpecifiedTradeSettlementLineMonetarySummation(
                    amount("LineTotalAmount", line.net_amount))))
        for index, line in enumerate(content.lines, start=1)
    ]
    agreement = ram.ApplicableHeaderTradeAgreement(
        ram.BuyerReference(content.buyer_reference or number),
        _party("SellerTradeParty", content.seller, not_subject),
        _party("BuyerTradeParty", content.buyer, not_subject))
    delivery = ram.ApplicableHeaderTradeDelivery()
    if any(line.tax_category == TaxCategory.INTRA_COMMUNITY for line in content.lines):
        # An intra-community supply states when and where the goods went (BR-IC-11, -12).
        delivery.extend([
            ram.ShipToTradeParty(ram.PostalTradeAddress(ram.CountryID(content.buyer.country))),
            ram.ActualDeliverySupplyChainEvent(ram.OccurrenceDateTime(
                udt.DateTimeString(_day(content.issue_date), format="102")))])
    settlement = ram.ApplicableHeaderTradeSettlement(*_present(
        is_invoice and ram.PaymentReference(number),
        ram.InvoiceCurrencyCode(content.currency),
        is_invoice and content.seller.iban and ram.SpecifiedTradeSettlementPaymentMeans(
            *_present(
                ram.TypeCode(CREDIT_TRANSFER),
                ram.PayeePartyCreditorFinancialAccount(ram.IBANID(content.seller.iban)),
                content.seller.bic and ram.PayeeSpecifiedCreditorFinancialInstitution(
                    ram.BICID(content.seller.bic)))),
        *[ram.ApplicableTradeTax(*_present(
            amount("CalculatedAmount", group.tax),
            ram.TypeCode("VAT"),
            group.exemption_reason and ram.ExemptionReason(group.exemption_reason),
            amount("BasisAmount", group.taxable),
            ram.CategoryCode(group.category),
            group.exemption_code and ram.ExemptionReasonCode(group.exemption_code),
            group.category != TaxCategory.NOT_SUBJECT
            and ram.RateApplicablePercent(_quantity(group.rate))))
          for group in content.breakdown],
        ram.SpecifiedTradePaymentTerms(*_present(
            ram.Description(payment_terms(content)),
            is_invoice and content.due_date and ram.DueDateDateTime(
                udt.DateTimeString(_day(content.due_date), format="102")))),
        ram.SpecifiedTradeSettlementHeaderMonetarySummation(
            amount("LineTotalAmount", content.subtotal),
            amount("TaxBasisTotalAmount", content.subtotal),
            amount("TaxTotalAmount", content.tax, currencyID=content.currency),
            amount("GrandTotalAmount", content.total),
            amount("DuePayableAmount", content.total)),
        content.corrects and content.corrects.number and ram.InvoiceReferencedDocument(
            *_present(
                ram.IssuerAssignedID(content.corrects.number),
                content.corrects.issue_date and ram.FormattedIssueDateTime(
                    qdt.DateTimeString(_day(content.corrects.issue_date), format="102")))),
    ))
    document = rsm.CrossIndustryInvoice(
        rsm.ExchangedDocumentContext(
            ram.GuidelineSpecifiedDocumentContextParameter(ram.ID(EN16931))),
        rsm.ExchangedDocument(
            ram.ID(number),
            ram.TypeCode("380" if is_invoice else "381"),
            ram.IssueDateTime(udt.DateTimeString(_day(content.issue_date), format="102")),
            *[ram.IncludedNote(ram.Content(note)) for note in document_notes(content)]),
        rsm.SupplyChainTradeTransaction(*lines, agreement, delivery, settlement),
    )
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _party(tag, party, not_subject):
    # A document not subject to VAT names no VAT number (BR-O-2 to BR-O-4).
    vat_id = "" if not_subject else party.vat_id
    registration_id = getattr(party, "registration_id", "")
    return ram(tag, *_present(
        ram.Name(party.name),
        registration_id and ram.SpecifiedLegalOrganization(
            ram.ID(registration_id, **_scheme(party))),
        party.email and ram.DefinedTradeContact(
            ram.EmailURIUniversalCommunication(ram.URIID(party.email))),
        ram.PostalTradeAddress(*_present(
            party.postal_code and ram.PostcodeCode(party.postal_code),
            party.street and ram.LineOne(party.street),
            party.city and ram.CityName(party.city),
            ram.CountryID(party.country))),
        party.endpoint_id and ram.URIUniversalCommunication(
            ram.URIID(party.endpoint_id, schemeID=party.endpoint_scheme)),
        vat_id and ram.SpecifiedTaxRegistration(ram.ID(vat_id, schemeID="VA")),
    ))


def _day(value) -> str:
    return value.strftime("%Y%m%d")
