"""
The code lists of EN 16931 that Folio's data uses: tax categories (UNCL 5305), units of
measure (UN/ECE Recommendation 20), electronic address schemes (EAS) and the VAT exemption
reasons (VATEX) that go with each category.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class TaxCategory(models.TextChoices):
    """A line's VAT category (BT-151), as EN 16931 restricts UNCL 5305."""

    STANDARD = "S", _("Standard rate")
    ZERO = "Z", _("Zero rated")
    EXEMPT = "E", _("Exempt from VAT")
    REVERSE_CHARGE = "AE", _("Reverse charge")
    INTRA_COMMUNITY = "K", _("Intra-community supply (EU)")
    EXPORT = "G", _("Export outside the EU")
    NOT_SUBJECT = "O", _("Not subject to VAT")


# Categories whose rate is zero (every one but the standard rate).
ZERO_RATE_CATEGORIES = frozenset(TaxCategory.values) - {TaxCategory.STANDARD}
# Categories that need an exemption reason (BR-E-10, BR-AE-10, BR-IC-10, BR-G-10, BR-O-10).
EXEMPTION_CATEGORIES = frozenset({"E", "AE", "K", "G", "O"})
# The exemption code a category implies (its reason is the category's name, in the client's
# language). The exempt category has none: which exemption applies is the seller's to say.
DEFAULT_EXEMPTION_CODES = {"AE": "VATEX-EU-AE", "K": "VATEX-EU-IC", "G": "VATEX-EU-G",
                           "O": "VATEX-EU-O"}
# The VAT exemption reason codes EN 16931 accepts (the VATEX list, BR-CL-22).
VATEX_CODES = frozenset("""
    VATEX-EU-79-C VATEX-EU-132 VATEX-EU-132-1A VATEX-EU-132-1B VATEX-EU-132-1C
    VATEX-EU-132-1D VATEX-EU-132-1E VATEX-EU-132-1F VATEX-EU-132-1G VATEX-EU-132-1H
    VATEX-EU-132-1I VATEX-EU-132-1J VATEX-EU-132-1K VATEX-EU-132-1L VATEX-EU-132-1M
    VATEX-EU-132-1N VATEX-EU-132-1O VATEX-EU-132-1P VATEX-EU-132-1Q VATEX-EU-135-1
    VATEX-EU-143 VATEX-EU-143-1A VATEX-EU-143-1B VATEX-EU-143-1C VATEX-EU-143-1D
    VATEX-EU-143-1E VATEX-EU-143-1F VATEX-EU-143-1FA VATEX-EU-143-1G VATEX-EU-143-1H
    VATEX-EU-143-1I VATEX-EU-143-1J VATEX-EU-143-1K VATEX-EU-143-1L VATEX-EU-144
    VATEX-EU-146-1E VATEX-EU-159 VATEX-EU-309 VATEX-EU-148 VATEX-EU-148-A VATEX-EU-148-B
    VATEX-EU-148-C VATEX-EU-148-D VATEX-EU-148-E VATEX-EU-148-F VATEX-EU-148-G VATEX-EU-151
    VATEX-EU-151-1A VATEX-EU-151-1AA VATEX-EU-151-1B VATEX-EU-151-1C VATEX-EU-151-1D
    VATEX-EU-151-1E VATEX-EU-G VATEX-EU-O VATEX-EU-IC VATEX-EU-AE VATEX-EU-D VATEX-EU-F
    VATEX-EU-I VATEX-EU-J VATEX-FR-FRANCHISE VATEX-FR-CNWVAT VATEX-EU-153 VATEX-FR-CGI261-1
    VATEX-FR-CGI261-2 VATEX-FR-CGI261-3 VATEX-FR-CGI261-4 VATEX-FR-CGI261-5
    VATEX-FR-CGI261-7 VATEX-FR-CGI261-8 VATEX-FR-CGI261A VATEX-FR-CGI261B
    VATEX-FR-CGI261C-1 VATEX-FR-CGI261C-2 VATEX-FR-CGI261C-3 VATEX-FR-CGI261D-1
    VATEX-FR-CGI261D-1BIS VATEX-FR-CGI261D-2 VATEX-FR-CGI261D-3 VATEX-FR-CGI261D-4
    VATEX-FR-CGI261E-1 VATEX-FR-CGI261E-2 VATEX-FR-CGI277A VATEX-FR-CGI275
    VATEX-FR-298SEXDECIESA VATEX-FR-CGI295 VATEX-FR-AE
""".split())  # noqa: SIM905 - a code list, as published
# Codes that only one category may carry (Peppol's PEPPOL-EN16931-P0104 to P0111).
VATEX_CATEGORY = {"VATEX-EU-G": "G", "VATEX-EU-O": "O", "VATEX-EU-IC": "K",
                  "VATEX-EU-AE": "AE", "VATEX-FR-AE": "AE", "VATEX-EU-D": "E",
                  "VATEX-EU-F": "E", "VATEX-EU-I": "E", "VATEX-EU-J": "E"}
# The scheme of a seller's registration number (BT-30-1) in the countries whose Peppol rules
# ask for it: the Dutch KvK, the Danish CVR, the Swedish, Norwegian and Icelandic numbers.
REGISTRATION_SCHEMES = {"NL": "0106", "DK": "0184", "SE": "0007", "NO": "0192", "IS": "0196"}
# Categories whose buyer must have a VAT number (BR-AE-2, BR-IC-2).
BUYER_VAT_CATEGORIES = frozenset({"AE", "K"})


class UnitCode(models.TextChoices):
    """The units most invoices use, from UN/ECE Recommendation 20 (BT-130)."""

    UNIT = "C62", _("unit")
    PIECE = "H87", _("piece")
    HOUR = "HUR", _("hour")
    DAY = "DAY", _("day")
    WEEK = "WEE", _("week")
    MONTH = "MON", _("month")
    YEAR = "ANN", _("year")
    KILOGRAM = "KGM", _("kilogram")
    METRE = "MTR", _("metre")
    SQUARE_METRE = "MTK", _("square metre")
    LITRE = "LTR", _("litre")
    KILOMETRE = "KMT", _("kilometre")
    SET = "SET", _("set")
    LUMP_SUM = "LS", _("lump sum")


# Electronic address schemes (BT-34-1, BT-49-1), the Peppol EAS code list. The common ones
# are named; every code of the list is accepted.
NAMED_SCHEMES = {
    "0002": "FR SIRENE",
    "0007": "SE organisation number",
    "0009": "FR SIRET",
    "0060": "DUNS",
    "0088": "GLN",
    "0096": "DK P-number",
    "0106": "NL KvK",
    "0184": "DK CVR",
    "0190": "NL OIN",
    "0192": "NO organisation number",
    "0204": "DE Leitweg-ID",
    "0208": "BE enterprise number",
    "0209": "GS1 identification keys",
    "0210": "IT tax code",
    "0211": "IT VAT number",
    "0225": "FR SIREN (Chorus Pro)",
    "9914": "AT VAT number",
    "9915": "AT government",
    "9920": "ES VAT number",
    "9925": "BE VAT number",
    "9930": "DE VAT number",
    "9938": "LU VAT number",
    "9944": "NL VAT number",
    "9945": "PL VAT number",
    "9946": "PT VAT number",
    "9957": "FR VAT number",
}
ENDPOINT_SCHEMES = sorted({
    *NAMED_SCHEMES,
    *"""
    0002 0007 0009 0037 0060 0088 0096 0097 0106 0130 0135 0142 0147 0151 0154 0158 0170
    0177 0183 0184 0188 0190 0191 0192 0193 0194 0195 0196 0198 0199 0200 0201 0202 0203
    0204 0205 0208 0209 0210 0211 0212 0213 0215 0216 0217 0218 0221 0225 0230 0235 0240
    9910 9913 9914 9915 9918 9919 9920 9922 9923 9924 9925 9926 9927 9928 9929 9930 9931
    9932 9933 9934 9935 9936 9937 9938 9939 9940 9941 9942 9943 9944 9945 9946 9947 9948
    9949 9950 9951 9952 9953 9957 9959
""".split(),  # noqa: SIM905 - a code list, as published
})
ENDPOINT_SCHEME_CHOICES = [
    (code, f"{code} — {NAMED_SCHEMES[code]}" if code in NAMED_SCHEMES else code)
    for code in ENDPOINT_SCHEMES
]

# The currencies EN 16931 accepts (ISO 4217 alpha-3, BR-CL-03 and BR-CL-04).
CURRENCIES = frozenset("""
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BOV BRL BSD BTN
    BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNH CNY COP COU CRC CUP CVE CZK DJF DKK DOP
    DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS
    INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL
    LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR
    NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP
    SLE SOS SRD SSP STD SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN
    UYI UYU UYW UZS VES VED VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD
    XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG
""".split())  # noqa: SIM905 - a code list, as published
