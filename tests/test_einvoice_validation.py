"""
The validation helper runs the official rules: the official examples pass, and a copy with
one figure or one required element changed fails with the rule that says so.
"""

from pathlib import Path

import pytest

from billing.einvoice.validation import validator

EXAMPLES = Path(__file__).resolve().parent / "data" / "einvoice"


@pytest.mark.parametrize("name", ["base-example.xml", "base-creditnote-correction.xml",
                                  "CII_example1.xml"])
def test_the_official_examples_pass(name):
    report = validator().validate((EXAMPLES / name).read_bytes())
    assert report.ok, str(report)


def test_a_ubl_invoice_whose_total_does_not_add_up_fails_br_co_15():
    xml = (EXAMPLES / "base-example.xml").read_bytes()
    assert b"<cbc:TaxInclusiveAmount currencyID=\"EUR\">1656.25</cbc:TaxInclusiveAmount>" in xml
    broken = xml.replace(b"<cbc:TaxInclusiveAmount currencyID=\"EUR\">1656.25",
                         b"<cbc:TaxInclusiveAmount currencyID=\"EUR\">1656.26")
    report = validator().validate(broken)
    assert "BR-CO-15" in {finding.rule for finding in report.fatal}, str(report)


def test_a_peppol_invoice_without_a_buyer_electronic_address_fails_peppol_and_en16931():
    xml = (EXAMPLES / "base-example.xml").read_bytes()
    start = xml.index(b"<cac:AccountingCustomerParty>")
    endpoint = xml.index(b"<cbc:EndpointID", start)
    end = xml.index(b"</cbc:EndpointID>", endpoint) + len(b"</cbc:EndpointID>")
    report = validator().validate(xml[:endpoint] + xml[end:])
    assert "PEPPOL-EN16931-R010" in {finding.rule for finding in report.fatal}, str(report)


def test_what_is_not_xml_or_not_an_invoice_is_a_finding_not_an_error():
    assert validator().validate(b"<not closed").fatal[0].rule == "XML"
    assert validator().validate(b"<order/>").fatal[0].rule == "ROOT"


def test_a_schema_error_is_reported():
    xml = (EXAMPLES / "CII_example1.xml").read_bytes()
    broken = xml.replace(b"<rsm:ExchangedDocument>", b"<rsm:ExchangedDocument><rsm:Bogus/>", 1)
    assert "XSD" in {finding.rule for finding in validator().validate(broken).fatal}
