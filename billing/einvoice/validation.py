"""
Validation of electronic invoices against the official rules, offline: the XML schema (UBL 2.1
or UN/CEFACT CII D16B), then the EN 16931 business rules (CEN's schematron, compiled to
XSLT 2, run with Saxon), then, for UBL that names Peppol BIS Billing 3.0, the Peppol rules.

``Validator`` compiles what it needs once; keep one (``validator()``) and call ``validate``.
The rules live in ``rules/`` beside this module (see its PROVENANCE.md).
"""

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from lxml import etree

RULES = Path(__file__).resolve().parent / "rules"
PEPPOL_BIS3 = "urn:fdc:peppol.eu:2017:poacc:billing:3.0"
SVRL = "{http://purl.oclc.org/dsdl/svrl}"
CBC = "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}"

# The root element of each syntax: (schema, business rules).
SYNTAXES = {
    "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice":
        ("xsd/ubl-2.1/maindoc/UBL-Invoice-2.1.xsd", "en16931/ubl/EN16931-UBL-validation.xslt"),
    "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}CreditNote":
        ("xsd/ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd",
         "en16931/ubl/EN16931-UBL-validation.xslt"),
    "{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}CrossIndustryInvoice":
        ("xsd/cii-d16b/CrossIndustryInvoice_100pD16B.xsd",
         "en16931/cii/EN16931-CII-validation.xslt"),
}
PEPPOL_RULES = "peppol/PEPPOL-EN16931-UBL.xslt"


@dataclass(frozen=True)
class Finding:
    rule: str  # e.g. "BR-CO-15", "PEPPOL-EN16931-R003", or "XSD"
    flag: str  # "fatal", "warning", …
    location: str
    text: str

    @property
    def fatal(self):
        return self.flag not in ("warning", "information", "info")


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    @property
    def fatal(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.fatal]

    @property
    def ok(self) -> bool:
        return not self.fatal

    def __str__(self):
        return "\n".join(f"{f.flag} {f.rule} at {f.location}: {f.text}" for f in self.findings)


class Validator:
    """The official rules, each compiled on first use."""

    def __init__(self):
        from saxonche import PySaxonProcessor

        self._saxon = PySaxonProcessor(license=False)
        self._compiler = self._saxon.new_xslt30_processor()

    @cache  # noqa: B019 - one Validator per process (validator()), kept for its lifetime
    def _schema(self, path):
        return etree.XMLSchema(etree.parse(str(RULES / path)))

    @cache  # noqa: B019
    def _rules(self, path):
        return self._compiler.compile_stylesheet(stylesheet_file=str(RULES / path))

    def validate(self, xml: bytes) -> Report:
        """The findings of every layer that applies to ``xml`` (an invoice or credit note)."""
        try:
            document = etree.fromstring(xml)
        except etree.XMLSyntaxError as error:
            return Report([Finding("XML", "fatal", "", str(error))])
        if document.tag not in SYNTAXES:
            return Report([Finding("ROOT", "fatal", "/", f"not an invoice: {document.tag}")])
        schema, rules = SYNTAXES[document.tag]
        report = Report()
        xsd = self._schema(schema)
        if not xsd.validate(document):
            report.findings += [Finding("XSD", "fatal", f"line {error.line}", error.message)
                                for error in xsd.error_log]
        layers = [rules]
        if PEPPOL_BIS3 in (document.findtext(f"{CBC}CustomizationID") or ""):
            layers.append(PEPPOL_RULES)
        for layer in layers:
            report.findings += self._run(layer, xml)
        return report

    def _run(self, rules, xml: bytes) -> list[Finding]:
        node = self._saxon.parse_xml(xml_text=xml.decode("utf-8"))
        stylesheet = self._rules(rules)
        stylesheet.set_global_context_item(xdm_item=node)  # the rules' global variables
        svrl = etree.fromstring(stylesheet.transform_to_string(xdm_node=node).encode("utf-8"))
        return [
            Finding(rule=element.get("id") or "?", flag=(element.get("flag") or "fatal").lower(),
                    location=element.get("location") or "",
                    text=" ".join("".join(element.find(f"{SVRL}text").itertext()).split()))
            for element in svrl.iter(f"{SVRL}failed-assert", f"{SVRL}successful-report")
        ]


@cache
def validator() -> Validator:
    """This process's validator (compiling the rules takes about a second)."""
    return Validator()
