"""
Electronic invoices: every issued invoice and credit note exports as Peppol BIS 3.0 UBL, as
CII and as a Factur-X PDF, written from its snapshot, and the official rules (XML schema,
EN 16931, Peppol) find nothing fatal in any of them. Folio refuses, before a number is
taken and in its own words, to issue a document whose e-invoice would be invalid.
"""

import io
from dataclasses import replace
from datetime import date
from decimal import Decimal

import facturx
import pypdf
import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import services, snapshot
from billing.einvoice.checks import problems
from billing.einvoice.cii import cii
from billing.einvoice.exports import NotExportable, export
from billing.einvoice.ubl import ubl
from billing.einvoice.validation import validator
from billing.models import Client, Company, CreditNote, Invoice, InvoiceLine
from billing.pdf import document_pdf
from counters.services import preview_number

from .factories import ClientFactory, CompanyFactory, InvoiceFactory, MembershipFactory
from .jobs import deliver

pytestmark = pytest.mark.django_db

GERMAN_BUYER = dict(street="Hafenstraße 3", postal_code="20457", city="Hamburg",
                    country="DE", vat_id="DE136695976", endpoint_scheme="9930",
                    endpoint_id="DE136695976")
AMERICAN_BUYER = dict(street="1 Main Street", postal_code="10001", city="New York",
                      country="US", vat_id="", endpoint_scheme="0060",
                      endpoint_id="123456789")


def line(description="Consulting", quantity="1", price="100.00", rate="20", category="S",
         **extra):
    return {"description": description, "quantity": Decimal(quantity),
            "unit_price": Decimal(price), "tax_rate": Decimal(rate), "tax_category": category,
            **extra}


def issue(lines, buyer=None, currency="EUR", **company):
    client = ClientFactory(company=CompanyFactory(**company), **(buyer or {}))
    invoice = InvoiceFactory(client=client, currency=currency, lines=lines)
    return services.send_document(invoice)


def assert_valid(xml):
    report = validator().validate(xml)
    assert report.ok, f"{report}\n{xml.decode()}"


# One invoice per situation the norm treats apart: (lines, buyer, currency, company).
SCENARIOS = {
    "one rate": ([line()], None, "EUR", {}),
    "several rates, fractional quantities and prices": ([
        line("Design", "1.5", "840.00", "20"),
        line("Hosting", "0.333", "96.35", "5.5", unit_code="MON"),
        line("Books", "3", "0.07", "2.1", unit_code="H87"),
        line("Support", "7.125", "13.33", "20", unit_code="HUR"),
    ], None, "EUR", {}),
    "zero rated": ([line(rate="0", category="Z"), line("Other")], None, "EUR", {}),
    "exempt": ([line(rate="0", category="E",
                     tax_exemption_reason="Exempt under article 132 of the VAT Directive",
                     tax_exemption_code="VATEX-EU-132")], None, "EUR", {}),
    "reverse charge, buyer in another EU country": (
        [line(rate="0", category="AE", tax_exemption_reason="Reverse charge",
              tax_exemption_code="VATEX-EU-AE")], GERMAN_BUYER, "EUR", {}),
    "intra-community supply": (
        [line(rate="0", category="K", tax_exemption_reason="Intra-Community supply",
              tax_exemption_code="VATEX-EU-IC")], GERMAN_BUYER, "EUR", {}),
    "zero-rated export outside the EU, in dollars": (
        [line(rate="0", category="G", tax_exemption_reason="Export outside the EU",
              tax_exemption_code="VATEX-EU-G")], AMERICAN_BUYER, "USD", {}),
    "not subject to VAT": (
        [line(rate="0", category="O", tax_exemption_reason="Not subject to VAT",
              tax_exemption_code="VATEX-EU-O")], None, "EUR", {}),
    "another currency": ([line(price="1234.56"), line(rate="10")], None, "CHF", {}),
    "a seller without bank details": ([line()], None, "EUR", {"iban": "", "bic": ""}),
    "a Dutch seller": ([line(rate="21")], None, "EUR", {
        "street": "Damrak 1", "postal_code": "1012 LG", "city": "Amsterdam", "country": "NL",
        "vat_id": "NL004495445B01", "registration_id": "12345678", "endpoint_scheme": "0106",
        "endpoint_id": "12345678", "iban": "NL91ABNA0417164300", "bic": "ABNANL2A"}),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_situation_exports_valid_ubl_and_cii(scenario):
    lines, buyer, currency, company = SCENARIOS[scenario]
    invoice = issue(lines, buyer, currency, **company)
    assert_valid(export(invoice, "ubl").data)
    assert_valid(export(invoice, "cii").data)


def test_a_credit_note_names_its_invoice_and_exports_valid():
    invoice = issue([line("Design", "2", "150.00"), line("Travel", "1", "80.00", "10")])
    credit = services.send_document(services.draft_credit_note(
        invoice, reason="Travel not taken",
        amount_lines=[services.CreditLine.of(invoice.lines.get(description="Travel"))]))
    xml = export(credit, "ubl").data
    assert b"<CreditNote " in xml and b"<cbc:CreditNoteTypeCode>381<" in xml
    assert f"<cbc:ID>{invoice.number}</cbc:ID>".encode() in xml
    assert f"<cbc:IssueDate>{invoice.issue_date:%Y-%m-%d}</cbc:IssueDate>".encode() in xml
    assert_valid(xml)
    cii_xml = export(credit, "cii").data
    assert b"<ram:TypeCode>381</ram:TypeCode>" in cii_xml
    assert f"<ram:IssuerAssignedID>{invoice.number}<".encode() in cii_xml
    assert_valid(cii_xml)


def test_a_credit_note_from_a_cancellation_exports_valid():
    invoice = issue([line(), line("Exempt course", rate="0", category="E",
                                  tax_exemption_reason="Education",
                                  tax_exemption_code="VATEX-EU-132-1I")])
    credit = services.cancel_invoice(invoice, reason="Ordered twice")
    assert credit.lines.filter(tax_category="E").exists()  # the exemption is credited too
    assert_valid(export(credit, "ubl").data)
    assert_valid(export(credit, "cii").data)


def test_an_invoice_is_380_with_its_due_date_and_payment_terms():
    invoice = issue([line()])
    xml = export(invoice, "ubl").data
    assert b"<cbc:InvoiceTypeCode>380<" in xml
    assert f"<cbc:DueDate>{invoice.due_date:%Y-%m-%d}</cbc:DueDate>".encode() in xml
    assert b"<cac:PaymentTerms>" in xml


def test_the_buyer_reference_is_the_documents_else_the_clients_else_the_number():
    mine = issue([line()])
    assert f"<cbc:BuyerReference>{mine.number}<".encode() in export(mine, "ubl").data
    referenced = InvoiceFactory(client=ClientFactory(reference="PO-77"))
    referenced = services.send_document(referenced)
    assert b"<cbc:BuyerReference>PO-77<" in export(referenced, "ubl").data
    own = InvoiceFactory(buyer_reference="Leitweg 991-1")
    own = services.send_document(own)
    assert b"<cbc:BuyerReference>Leitweg 991-1<" in export(own, "ubl").data


def test_an_issued_documents_e_invoice_never_changes():
    invoice = issue([line()])
    before = {syntax: export(invoice, syntax).data for syntax in ("ubl", "cii")}
    Client.objects.filter(pk=invoice.client_id).update(
        name="Renamed", country="BE", vat_id="BE0403019261", street="Elsewhere 1")
    Company.objects.filter(pk=invoice.company_id).update(name="New name", iban="")
    invoice = Invoice.objects.get(pk=invoice.pk)
    assert {syntax: export(invoice, syntax).data for syntax in ("ubl", "cii")} == before


# --- Factur-X ---------------------------------------------------------------------------------


def test_the_pdf_of_an_issued_invoice_is_factur_x_with_its_valid_cii():
    invoice = issue([line("Design", "1.5", "840.00"), line("Hosting", "1", "96", "5.5")])
    pdf = document_pdf(invoice)
    name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    assert name == "factur-x.xml"
    assert xml == cii(invoice.number, invoice.content)
    assert_valid(xml)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    metadata = reader.xmp_metadata.rdf_root.toxml()
    assert "<pdfaid:part>3</pdfaid:part>" in metadata
    assert "<pdfaid:conformance>B</pdfaid:conformance>" in metadata
    assert "EN 16931" in metadata and "factur-x.xml" in metadata
    assert "/AF" in reader.trailer["/Root"]  # the XML is an associated file (PDF/A-3)
    # PDF/A: the information dictionary says what the XMP says.
    assert f"<pdf:Producer>{reader.metadata['/Producer']}</pdf:Producer>" in metadata
    assert "/Keywords" not in reader.metadata
    assert "Design" in reader.pages[0].extract_text()


def test_a_draft_and_a_document_without_a_valid_e_invoice_get_a_plain_pdf():
    draft = InvoiceFactory()
    assert pypdf.PdfReader(io.BytesIO(document_pdf(draft))).attachments == {}
    legacy = issue([line()], einvoicing=False, country="")  # no country: no e-invoice
    assert problems(legacy.content) == ["Add your company's country (on the Company page)."]
    assert pypdf.PdfReader(io.BytesIO(document_pdf(legacy))).attachments == {}


def test_the_e_mail_carries_the_factur_x_pdf_and_the_ubl_when_the_client_wants_it():
    invoice = issue([line()])
    mail.outbox.clear()
    deliver(invoice)
    (pdf_name, pdf, _type), = mail.outbox[0].attachments
    assert facturx.get_xml_from_pdf(pdf, check_xsd=False)[0] == "factur-x.xml"
    Client.objects.filter(pk=invoice.client_id).update(attach_ubl=True)
    mail.outbox.clear()
    deliver(Invoice.objects.get(pk=invoice.pk))
    names = [attachment[0] for attachment in mail.outbox[0].attachments]
    assert names == [pdf_name, f"{invoice.number}-ubl.xml"]
    assert mail.outbox[0].attachments[1][1] == export(invoice, "ubl").data


# --- Checked before issue, in Folio's words ---------------------------------------------------


@pytest.mark.parametrize("change, message", [
    (lambda c, b: setattr(b, "country", ""), "Add the client's country."),
    (lambda c, b: setattr(c, "vat_id", ""),
     "Add your company's VAT number (on the Company page)."),
    (lambda c, b: setattr(c, "vat_id", "44732829320"),
     "Your company's VAT number must begin with its country's code, such as FR (on the "
     "Company page)."),
    (lambda c, b: setattr(c, "postal_code", ""),
     "Add your company's street, postal code and city (on the Company page)."),
])
def test_a_draft_whose_e_invoice_would_be_invalid_is_refused_before_its_number(change,
                                                                               message):
    draft = InvoiceFactory()
    change(draft.company, draft.client)
    draft.company.save()
    draft.client.save()
    expected = preview_number(draft)
    with pytest.raises(services.ValidationError) as refused:
        services.send_document(draft)
    assert message in refused.value.messages
    draft.refresh_from_db()
    assert draft.is_draft and draft.number == "" and preview_number(draft) == expected


@pytest.mark.parametrize("lines, buyer, message, rule", [
    ([line(rate="0", category="E")], None,
     "Line 1: An exempt line needs a reason (for example \"Exempt under article 132 of the "
     "VAT Directive\") or a VATEX code.", "BR-E-10"),
    ([line(rate="0", category="AE", tax_exemption_reason="Reverse charge")],
     {**GERMAN_BUYER, "vat_id": ""},
     "A reverse-charge or intra-community line needs the client's VAT number.", "BR-AE-02"),
    ([line(rate="0")], None,
     "Line 1: A standard-rate line needs a rate above 0 %; for no tax, choose the category "
     "that says why (zero rated, exempt, reverse charge…).", "BR-S-05"),
    ([line(), line(rate="0", category="O", tax_exemption_reason="Outside scope")], None,
     "A line not subject to VAT cannot share a document with lines that are: put them on "
     "separate documents.", "BR-O-11"),
    ([line()], {"country": ""}, "Add the client's country.", "BR-11"),
])
def test_each_refusal_is_one_the_official_rules_would_report(lines, buyer, message, rule):
    client = ClientFactory(**(buyer or {}))
    draft = Invoice(company=client.company, client=client, currency="EUR")
    items = [InvoiceLine(**spec) for spec in lines]
    content = replace(snapshot.read(snapshot.build(draft, items)), issue_date=date.today(),
                      due_date=date.today())
    assert message in problems(content)
    rules = {finding.rule for finding in validator().validate(ubl("X-1", content)).fatal}
    assert rule in rules, rules


def test_the_line_form_says_what_a_tax_category_needs(client):
    member = MembershipFactory()
    client.force_login(member.user)
    buyer = ClientFactory(company=member.company)
    data = {"client": buyer.pk, "currency": "EUR", "lines-TOTAL_FORMS": "1",
            "lines-INITIAL_FORMS": "0", "lines-0-description": "Course",
            "lines-0-quantity": "1", "lines-0-unit_code": "C62", "lines-0-unit_price": "10",
            "lines-0-tax_category": "E", "lines-0-tax_rate": "0", "lines-0-ORDER": "1"}
    response = client.post(reverse("invoice_create"), data)
    assert "An exempt line needs a reason" in response.content.decode()
    assert not Invoice.objects.exists()
    reverse_charge = {**data, "lines-0-tax_category": "AE", "lines-0-tax_rate": "20"}
    response = client.post(reverse("invoice_create"), reverse_charge)
    assert ("A line in the category “Reverse charge” has a tax rate of 0 %."
            in response.content.decode())
    saved = client.post(reverse("invoice_create"), {**reverse_charge, "lines-0-tax_rate": "0"})
    assert saved.status_code == 302
    saved_line = Invoice.objects.get().lines.get()
    # The category's exemption is filled in for the user.
    assert (saved_line.tax_exemption_code, saved_line.tax_exemption_reason) == (
        "VATEX-EU-AE", "Reverse charge")


def test_a_company_without_e_invoicing_sends_as_before():
    invoice = issue([line()], einvoicing=False, country="", endpoint_id="",
                    endpoint_scheme="")
    assert invoice.number


# --- Where users find them --------------------------------------------------------------------


def test_the_page_of_an_issued_document_offers_its_e_invoices(client):
    invoice = issue([line()])
    client.force_login(MembershipFactory(company=invoice.company).user)
    page = client.get(reverse("invoice_detail", args=[invoice.pk])).content.decode()
    ubl_url = reverse("invoice_ubl", args=[invoice.pk])
    assert ubl_url in page and reverse("invoice_cii", args=[invoice.pk]) in page
    assert "PDF (Factur-X)" in page
    download = client.get(ubl_url)
    assert download["Content-Type"] == "application/xml"
    assert f'filename="{invoice.number}-ubl.xml"' in download["Content-Disposition"]
    assert download.content == export(invoice, "ubl").data


def test_a_draft_page_says_what_its_e_invoice_lacks(client):
    draft = InvoiceFactory(client=ClientFactory(country=""))
    client.force_login(MembershipFactory(company=draft.company).user)
    page = client.get(reverse("invoice_detail", args=[draft.pk])).content.decode()
    assert "Add the client&#x27;s country." in page
    assert reverse("invoice_ubl", args=[draft.pk]) not in page
    refused = client.get(reverse("invoice_ubl", args=[draft.pk]), follow=True)
    assert "A draft has no e-invoice" in refused.content.decode()


def test_export_einvoice_writes_the_document_and_refuses_with_exit_2(tmp_path, capsys):
    invoice = issue([line()])
    call_command("export_einvoice", "invoice", str(invoice.pk), "--syntax", "ubl")
    assert capsys.readouterr().out.strip().encode() == export(invoice, "ubl").data.strip()
    target = tmp_path / "invoice.pdf"
    call_command("export_einvoice", "invoice", str(invoice.pk), "--syntax", "facturx",
                 "-o", str(target))
    assert facturx.get_xml_from_pdf(target.read_bytes(), check_xsd=False)[1] == cii(
        invoice.number, invoice.content)
    draft = InvoiceFactory()
    for args, message in [
        (["invoice", str(draft.pk), "--syntax", "ubl"], "A draft has no e-invoice"),
        (["credit_note", "999999", "--syntax", "cii"], "There is no credit note with id"),
    ]:
        with pytest.raises(CommandError, match=message) as refused:
            call_command("export_einvoice", *args)
        assert refused.value.returncode == 2
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("export_einvoice", "invoice", str(invoice.pk), "--syntax", "pdf")


# --- Random valid documents always export valid -----------------------------------------------

CATEGORY_LINES = {
    "S": st.sampled_from(["20", "10", "5.5", "2.1", "7.7", "19", "21"]),
    "Z": st.just("0"), "E": st.just("0"),
}


@st.composite
def documents(draw):
    lines = []
    for _ in range(draw(st.integers(1, 5))):
        category = draw(st.sampled_from(["S", "S", "Z", "E"]))
        lines.append(line(
            "Item", str(draw(st.decimals("0.001", "999", places=3))),
            str(draw(st.decimals("0", "99999", places=2))), draw(CATEGORY_LINES[category]),
            category, unit_code=draw(st.sampled_from(["C62", "HUR", "KGM", "DAY"])),
            tax_exemption_reason="Exempt under article 132" if category == "E" else ""))
    return lines, draw(st.sampled_from(["EUR", "USD", "GBP", "JPY"])), draw(st.booleans())


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(documents())
def test_random_valid_documents_always_export_valid(company_and_client, document):
    lines, currency, credit = document
    client = company_and_client
    model = CreditNote if credit else Invoice
    draft = model(company=client.company, client=client, currency=currency)
    items = [InvoiceLine(**spec) for spec in lines]
    content = replace(snapshot.read(snapshot.build(draft, items)), issue_date=date.today(),
                      due_date=None if credit else date.today())
    assert problems(content) == []
    assert_valid(ubl("R-1", content))
    assert_valid(cii("R-1", content))


@pytest.fixture
def company_and_client():
    return ClientFactory()


def test_every_document_the_demo_issues_exports_valid():
    call_command("load_demo", stdout=io.StringIO())
    issued = [*Invoice.objects.exclude(state="draft"), *CreditNote.objects.exclude(
        state="draft")]
    assert len(issued) >= 4
    for document in issued:
        assert_valid(export(document, "ubl").data)
        assert_valid(export(document, "cii").data)


# --- The migration that structured the addresses ----------------------------------------------


@pytest.mark.parametrize("text, parts", [
    ("3 place des Arts, Paris", ("3 place des Arts", "", "Paris", "")),
    ("12 rue du Four\n69001 Lyon\nFrance", ("12 rue du Four", "69001", "Lyon", "FR")),
    ("Hafenstraße 3, D-20457 Hamburg, Germany", ("Hafenstraße 3", "D-20457", "Hamburg", "DE")),
    ("10 Downing St\nLondon SW1A 2AA\nUnited Kingdom",
     ("10 Downing St", "SW1A 2AA", "London", "GB")),
    ("Rue X 1, 1000 Bruxelles, BE", ("Rue X 1", "1000", "Bruxelles", "BE")),
    ("Hafenstraße 3\n20457 Hamburg\nDeutschland", ("Hafenstraße 3", "20457", "Hamburg", "DE")),
    ("Damrak 1\n1012 LG Amsterdam\nNetherlands", ("Damrak 1", "1012 LG", "Amsterdam", "NL")),
    ("10 Downing St, London SW1A 2AA, UK", ("10 Downing St", "SW1A 2AA", "London", "GB")),
    ("Somewhere", ("Somewhere", "", "", "")),
    ("", ("", "", "", "")),
])
def test_free_text_addresses_are_moved_into_their_fields(text, parts):
    from importlib import import_module

    migration = import_module("billing.migrations.0014_einvoice_data")
    assert migration.split_address(text, migration.country_names()) == parts


# --- What the review of the first version found -----------------------------------------------


def test_a_client_outside_peppol_is_invoiced_with_cii_and_factur_x_but_no_ubl(client):
    invoice = issue([line()], {"endpoint_scheme": "", "endpoint_id": ""})
    assert invoice.number  # Peppol's electronic address does not stop a send
    with pytest.raises(NotExportable, match="Add the client's electronic address"):
        export(invoice, "ubl")
    assert_valid(export(invoice, "cii").data)
    assert facturx.get_xml_from_pdf(document_pdf(invoice), check_xsd=False)[1]
    client.force_login(MembershipFactory(company=invoice.company).user)
    page = client.get(reverse("invoice_detail", args=[invoice.pk])).content.decode()
    assert reverse("invoice_ubl", args=[invoice.pk]) not in page
    assert reverse("invoice_cii", args=[invoice.pk]) in page
    assert "No Peppol UBL for this document" in page


def test_characters_xml_cannot_carry_are_left_out_of_the_e_invoice():
    invoice = issue([line("Pasted\x0cfrom a word processor\x0b")])
    xml = export(invoice, "ubl").data
    assert b"<cbc:Name>Pastedfrom a word processor</cbc:Name>" in xml
    assert_valid(xml)
    assert facturx.get_xml_from_pdf(document_pdf(invoice), check_xsd=False)[0]


def test_an_invoice_issued_without_e_invoicing_can_be_cancelled_once_it_is_on():
    invoice = issue([line(rate="0")], einvoicing=False)  # a standard-rate line at 0 %
    Company.objects.filter(pk=invoice.company_id).update(einvoicing=True)
    credit = services.cancel_invoice(Invoice.objects.get(pk=invoice.pk), reason="Duplicate")
    assert credit.number and Invoice.objects.get(pk=invoice.pk).state == "cancelled"


def test_a_credit_note_keeps_its_invoices_buyer_reference():
    invoice = services.send_document(InvoiceFactory(buyer_reference="PO-4711"))
    credit = services.send_document(services.draft_credit_note(invoice, reason="Returned"))
    assert b"<cbc:BuyerReference>PO-4711<" in export(credit, "ubl").data


def test_the_payment_terms_name_the_invoices_own_due_date():
    draft = InvoiceFactory(due_date=date(2031, 5, 14))
    invoice = services.send_document(draft)
    assert b"Payment due by May 14, 2031." in export(invoice, "ubl").data


@pytest.mark.parametrize("category, code, message", [
    ("E", "VATEX-EU-999", "This is not a VATEX code"),
    ("G", "VATEX-EU-D", "VATEX-EU-D is for lines in the category “Exempt from VAT”"),
    ("Z", "", None),
])
def test_a_vatex_code_must_exist_and_suit_its_category(category, code, message):
    draft = InvoiceFactory()
    item = InvoiceLine(document=draft, description="x", quantity=1, unit_price=1,
                       tax_rate=0, tax_category=category, tax_exemption_code=code,
                       tax_exemption_reason="Why" if category == "E" else "")
    if message is None:
        item.full_clean()
    else:
        with pytest.raises(services.ValidationError, match=message):
            item.full_clean()


def test_a_changed_category_takes_its_own_exemption_in_the_clients_language():
    draft = InvoiceFactory(client=ClientFactory(language="fr"))
    item = InvoiceLine(document=draft, description="x", quantity=1, unit_price=1, tax_rate=0,
                       tax_category="AE")
    item.full_clean()
    assert (item.tax_exemption_code, item.tax_exemption_reason) == ("VATEX-EU-AE",
                                                                    "Autoliquidation")
    item.tax_category = "G"
    item.full_clean()
    assert item.tax_exemption_code == "VATEX-EU-G"


def test_the_forms_refuse_a_vat_number_without_its_country_and_a_bad_electronic_address():
    party = ClientFactory.build(company=CompanyFactory(), vat_id="03552081317",
                                endpoint_scheme="0009", endpoint_id="5520 8131 7000 19")
    with pytest.raises(services.ValidationError) as refused:
        party.full_clean()
    assert set(refused.value.message_dict) == {"vat_id", "endpoint_id"}
    party.vat_id, party.endpoint_id = "fr 03552081317", "552 081 317 00018"
    party.full_clean()
    assert (party.vat_id, party.endpoint_id) == ("FR03552081317", "55208131700018")
