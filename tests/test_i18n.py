"""
Languages: every string shown on a document is translated into each of the app's languages,
and a client gets their PDFs and e-mails in their own language (texts, dates, amounts).
"""

import ast
import gettext
import io
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import template as i18n_template
from pypdf import PdfReader

from billing import services
from billing.models import Invoice, Membership, UserPreferences
from billing.pdf import document_pdf

from .factories import (
    ClientFactory,
    CompanyFactory,
    InvoiceFactory,
    MembershipFactory,
    QuoteFactory,
)

TRANSLATED = ["fr", "de", "es", "it", "nl"]  # every language of the app but English
DOCUMENT_TEMPLATES = ["document_pdf.html", "email_subject.txt", "email_body.txt",
                      "reminder_subject.txt", "reminder_body.txt"]
BILLING_LOCALE = Path(settings.BASE_DIR) / "billing" / "locale"


def test_every_language_of_the_app_but_english_has_a_catalog():
    assert sorted(TRANSLATED) == sorted(
        code for code, _name in settings.LANGUAGES if not code.startswith("en"))


def msgids_of(template_name):
    """The strings ``template_name`` shows, as ``makemessages`` extracts them."""
    source = (Path(settings.BASE_DIR) / "templates" / "billing" / template_name).read_text()
    code = i18n_template.templatize(source)
    return [ast.literal_eval(literal) for literal in
            re.findall(r"\bgettext\(u?('(?:[^'\\]|\\.)*')", code)]


def catalog(language):
    return gettext.translation("django", BILLING_LOCALE, [language])


def test_the_document_templates_strings_are_found():
    strings = {s for name in DOCUMENT_TEMPLATES for s in msgids_of(name)}
    assert {"Invoice", "Credit note", "Due date", "Total due", "Kind regards,",
            "Please find attached our invoice %(number)s for %(total)s.",
            "Invoice %(number)s from %(company)s", "Quote", "Valid until",
            "Quote %(number)s from %(company)s",
            "Please find attached our quote %(number)s for %(total)s."} <= strings
    assert len(strings) >= 25


@pytest.mark.parametrize("language", TRANSLATED)
@pytest.mark.parametrize("template_name", DOCUMENT_TEMPLATES)
def test_every_string_of_the_documents_is_translated(language, template_name):
    messages = catalog(language)._catalog  # the compiled, committed .mo: no empty msgstr
    missing = [s for s in msgids_of(template_name) if not messages.get(s)]
    assert missing == []


# --- A client's documents, in the client's language ------------------------------------------

def english_fragments(language):
    """
    The English text of every document string, cut at its placeholders: none may be left on
    a document in ``language`` (unless the translation itself says the same, "PDF" say).
    """
    messages = catalog(language)
    fragments = set()
    for name in DOCUMENT_TEMPLATES:
        for msgid in msgids_of(name):
            translated = messages.gettext(msgid)
            for part in re.split(r"%\(\w+\)s", msgid.replace("%%", "%")):
                part = part.strip(" ,.:%")
                if re.search(r"[A-Za-z]{2}", part) and part.lower() not in translated.lower():
                    fragments.add(part)
    return fragments


def english_left(text, language):
    """The English fragments in ``text``, whatever their case (the PDF capitalises labels)."""
    return sorted(f for f in english_fragments(language)
                  if re.search(rf"(?<!\w){re.escape(f)}(?!\w)", text, re.IGNORECASE))


def pdf_text(pdf: bytes) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(
        io.BytesIO(pdf)).pages)


LINES = [{"description": "Conseil / Beratung / Advies", "quantity": Decimal("2"),
          "unit_price": Decimal("617.25"), "tax_rate": Decimal("20")}]
# Per language: the title, a label, the issue date (5 March 2026), the total (1,481.40), the
# e-mail's subject and first words.
EXPECTED = {
    "fr": ("Facture", "Net à payer", "5 mars 2026", "1 481,40 EUR", "Facture {} de Northwind",
           "Bonjour Client,"),
    "de": ("Rechnung", "Zu zahlender Betrag", "5. März 2026", "1.481,40 EUR",
           "Rechnung {} von Northwind", "Guten Tag Client,"),
    "nl": ("Factuur", "Te betalen", "5 maart 2026", "1.481,40 EUR", "Factuur {} van Northwind",
           "Beste Client,"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("language", sorted(EXPECTED))
def test_a_client_gets_pdf_and_email_in_their_language(
        language, issue_on, run_jobs, mailoutbox):
    title, label, issued, total, subject, hello = EXPECTED[language]
    company = CompanyFactory(name="Northwind", locale="en")  # the company writes English
    client = ClientFactory(company=company, name="Client", language=language)
    issue_on(date(2026, 3, 5))
    invoice = services.send_document(InvoiceFactory(client=client, lines=LINES), email=True)
    run_jobs()

    text = pdf_text(document_pdf(invoice))
    assert f"{title} {invoice.number}" in text and label in text
    assert issued in text and total in text  # pdf_text reads any space as a space
    assert english_left(text, language) == []

    [message] = mailoutbox
    assert message.subject == subject.format(invoice.number)
    assert message.body.startswith(hello) and total in " ".join(message.body.split())
    assert english_left(message.subject + "\n" + message.body, language) == []
    attached = pdf_text(message.attachments[0][1])
    assert english_left(attached, language) == [] and title in attached


# Per language: the quote's title, its valid-until label and the e-mail's subject.
QUOTE_EXPECTED = {
    "fr": ("Devis", "Valable jusqu'au", "Devis {} de Northwind"),
    "de": ("Angebot", "Gültig bis", "Angebot {} von Northwind"),
    "es": ("Presupuesto", "Válido hasta", "Presupuesto {} de Northwind"),
    "it": ("Preventivo", "Valido fino al", "Preventivo {} da Northwind"),
    "nl": ("Offerte", "Geldig tot", "Offerte {} van Northwind"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("language", sorted(QUOTE_EXPECTED))
def test_a_client_gets_a_quote_in_their_language(language, issue_on, run_jobs, mailoutbox):
    title, label, subject = QUOTE_EXPECTED[language]
    company = CompanyFactory(name="Northwind", locale="en")
    client = ClientFactory(company=company, name="Client", language=language)
    issue_on(date(2026, 3, 5))
    quote = services.send_document(QuoteFactory(client=client, lines=LINES), email=True)
    run_jobs()
    text = pdf_text(document_pdf(quote))
    assert f"{title} {quote.number}" in text and label.upper() in text.upper()
    assert english_left(text, language) == []
    [message] = mailoutbox
    assert message.subject == subject.format(quote.number)
    assert english_left(message.subject + "\n" + message.body, language) == []


@pytest.mark.django_db
def test_without_a_language_the_client_gets_the_companys(issue_on):
    client = ClientFactory(company=CompanyFactory(locale="de"))
    issue_on(date(2026, 3, 5))
    text = pdf_text(document_pdf(services.send_document(InvoiceFactory(client=client))))
    assert "Rechnung" in text and "5. März 2026" in text and english_left(text, "de") == []


@pytest.mark.django_db
def test_an_english_client_of_a_french_company_gets_english(issue_on):
    client = ClientFactory(company=CompanyFactory(locale="fr"), language="en")
    issue_on(date(2026, 3, 5))
    text = pdf_text(document_pdf(services.send_document(InvoiceFactory(client=client))))
    assert "Invoice" in text and "Total due" in text and "March 5, 2026" in text


def test_the_english_check_finds_english():
    """The check above would see an untranslated document."""
    assert english_left("Invoice INV-1 DUE DATE 5 mars 2026 Total due", "fr") == [
        "Due date", "Invoice", "Total due"]


# --- The app in the user's language ------------------------------------------------------------

@pytest.fixture
def member():
    return MembershipFactory(company=CompanyFactory(locale="fr"), role=Membership.Role.OWNER)


def heading_of(response):
    html = response.content.decode()
    return html.split("<html lang=")[1][:4], html.split("<h1>")[1].split("</h1>")[0].strip()


@pytest.mark.django_db
def test_without_a_preference_the_pages_follow_the_browser_then_the_company(client, member):
    client.force_login(member.user)
    url = reverse("invoice_list")
    assert heading_of(client.get(url, HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.5")) == (
        '"de"', "Rechnungen")
    assert heading_of(client.get(url, HTTP_ACCEPT_LANGUAGE="ja, nl;q=0.8")) == (
        '"nl"', "Facturen")  # the first language the app speaks
    assert heading_of(client.get(url)) == ('"fr"', "Factures")  # no header: the company's
    assert heading_of(client.get(url, HTTP_ACCEPT_LANGUAGE="ja")) == ('"fr"', "Factures")


@pytest.mark.django_db
def test_the_login_page_follows_the_browser(client):
    assert "Bei Folio anmelden" in client.get(
        reverse("login"), HTTP_ACCEPT_LANGUAGE="de").content.decode()


@pytest.mark.django_db
def test_a_user_chooses_the_language_of_the_app(client, member):
    client.force_login(member.user)
    page = client.get(reverse("preferences"), HTTP_ACCEPT_LANGUAGE="en")
    assert heading_of(page) == ('"en"', "Your preferences")
    assert '<option value="" selected>Your browser&#x27;s language</option>' in \
        page.content.decode()

    response = client.post(reverse("preferences"), {"language": "nl"},
                           HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert heading_of(response) == ('"nl"', "Uw voorkeuren")
    assert "Voorkeuren opgeslagen." in response.content.decode()  # said in the new language
    assert UserPreferences.objects.get(user=member.user).language == "nl"
    # Whatever the browser or the company says, on every page, in every later session.
    assert heading_of(client.get(reverse("invoice_list"), HTTP_ACCEPT_LANGUAGE="de")) == (
        '"nl"', "Facturen")
    other_device = Client()
    other_device.force_login(member.user)
    assert heading_of(other_device.get(reverse("client_list"), HTTP_ACCEPT_LANGUAGE="de")) == (
        '"nl"', "Klanten")

    client.post(reverse("preferences"), {"language": ""})  # back to the browser's
    assert heading_of(client.get(reverse("invoice_list"), HTTP_ACCEPT_LANGUAGE="de")) == (
        '"de"', "Rechnungen")


@pytest.mark.django_db
def test_a_preference_is_one_of_the_apps_languages(client, member):
    client.force_login(member.user)
    response = client.post(reverse("preferences"), {"language": "xx"})
    assert response.status_code == 200 and not UserPreferences.objects.exists()


@pytest.mark.django_db
def test_the_language_costs_no_query_once_the_session_knows_it(client, member):
    UserPreferences.objects.create(user=member.user, language="it")
    client.force_login(member.user)  # reads the preference once, at log-in
    with CaptureQueriesContext(connection) as queries:
        assert heading_of(client.get(reverse("invoice_list")))[0] == '"it"'
    assert queries.captured_queries and not any(
        UserPreferences._meta.db_table in q["sql"] for q in queries.captured_queries)


# --- One format per language --------------------------------------------------------------------

@pytest.mark.django_db
def test_a_date_is_written_one_way_on_every_page(client, member, issue_on):
    """The list, the document, the client's page and the message all say "5 mars 2026"."""
    client.force_login(member.user)
    buyer = ClientFactory(company=member.company)
    issue_on(date(2026, 3, 5))
    draft = InvoiceFactory(client=buyer)
    response = client.post(reverse("invoice_send", args=[draft.pk]), follow=True)
    detail = response.content.decode()
    assert f"{Invoice.objects.get(pk=draft.pk).number} émis le 5 mars 2026." in detail
    assert "<dd>5 mars 2026</dd>" in detail and "<dd>4 avril 2026</dd>" in detail
    for url in (reverse("invoice_list"), reverse("client_detail", args=[buyer.pk]),
                reverse("home")):
        page = client.get(url).content.decode()
        assert "5 mars 2026" in page or url == reverse("home"), url
        assert not re.search(r"\b05/03/2026\b|\b2026-03-05\b|\bMarch\b", page), url


@pytest.mark.django_db
def test_audit_page_shows_human_labels_and_local_times(client, member, issue_on):
    from counters.dbguards import guards_lifted
    from counters.services import set_next_number

    member.user.is_staff = True
    member.user.save()
    client.force_login(member.user)
    issue_on(date(2026, 3, 5))
    services.send_document(InvoiceFactory(client=ClientFactory(company=member.company)))
    jump = set_next_number(company_id=member.company_id, series="invoice", period="2026",
                           next_value=5, reason="Papier", user=None)
    with guards_lifted(connection), connection.cursor() as cursor:
        cursor.execute("UPDATE billing_invoice SET total = 1, subtotal = 1, tax_total = 0")
    page = client.get(reverse("audit")).content.decode()

    local = timezone.localtime(jump.created_at)  # Europe/Paris, not UTC
    with translation.override("fr"):
        written = date_format(local, "DATETIME_FORMAT")
    assert f"2–4: Papier <span class=\"muted\">(le système, {written})</span>" in page
    assert jump.created_at.isoformat(timespec="seconds") not in page
    assert "<td>Facture</td><td>2026</td>" in page  # the series, not "invoice"
    assert '<span class="badge badge-cancelled">Modifié après émission</span>' in page
    assert "tampered" not in page and ">invoice<" not in page


# --- The catalogs cover the whole app ---------------------------------------------------------

ROOT = Path(settings.BASE_DIR)
GETTEXT_NAMES = {"_", "gettext", "gettext_lazy", "ngettext", "ngettext_lazy"}


def python_msgids():
    """Every literal passed to a gettext function in the apps' code, as makemessages sees it."""
    for path in [*ROOT.glob("billing/**/*.py"), *ROOT.glob("counters/**/*.py")]:
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and node.args
                    and getattr(node.func, "id", getattr(node.func, "attr", None))
                    in GETTEXT_NAMES
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                yield path.relative_to(ROOT), node.args[0].value


def template_msgids():
    for path in sorted(ROOT.glob("templates/**/*")):
        if path.suffix in (".html", ".txt"):
            source = path.read_text()
            code = i18n_template.templatize(source)
            for literal in re.findall(r"\bgettext\(u?('(?:[^'\\]|\\.)*')", code):
                yield path.relative_to(ROOT), ast.literal_eval(literal)


def app_catalog(language):
    merged = {}
    for app in ("counters", "billing"):
        merged.update(gettext.translation(
            "django", ROOT / app / "locale", [language])._catalog)
    return merged


def test_the_extractors_see_the_app():
    assert len(list(python_msgids())) > 150 and len(list(template_msgids())) > 200


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_string_of_the_app_is_translated(language):
    messages = app_catalog(language)
    missing = sorted({(str(where), s) for where, s in [*python_msgids(), *template_msgids()]
                      if not messages.get(s) and not messages.get((s, 0))})
    assert missing == []


@pytest.mark.parametrize("language", TRANSLATED)
@pytest.mark.parametrize("app", ["billing", "counters"])
def test_the_committed_catalogs_are_complete_and_compiled(app, language):
    """No empty or fuzzy entry in the .po, and the committed .mo says what the .po says."""
    po = (ROOT / app / "locale" / language / "LC_MESSAGES" / "django.po").read_text()
    assert "#, fuzzy" not in po
    assert not re.search(r'^msgstr(\[\d\])? ""\n\n', po[po.index("\n\n"):] + "\n", re.M)
    compiled = gettext.translation("django", ROOT / app / "locale", [language])._catalog
    for msgid, msgstr in re.findall(r'^msgid "(.+)"\nmsgstr "(.+)"$', po, re.M):
        unquoted = ast.literal_eval(f'"{msgid}"')
        assert compiled.get(unquoted) == ast.literal_eval(f'"{msgstr}"'), unquoted


@pytest.mark.django_db
def test_a_clients_language_is_chosen_on_their_form(client, member):
    client.force_login(member.user)
    response = client.post(reverse("client_create"), {"name": "Müller GmbH", "language": "de"},
                           HTTP_ACCEPT_LANGUAGE="en", follow=True)
    buyer = member.company.clients.get()
    assert buyer.language == "de" and buyer.document_language == "de"
    assert '<dd data-language>Deutsch</dd>' in response.content.decode()
    client.post(reverse("client_edit", args=[buyer.pk]), {"name": "Müller GmbH", "language": ""})
    buyer.refresh_from_db()
    assert buyer.language == "" and buyer.document_language == "fr"  # the company's
    page = client.get(reverse("client_detail", args=[buyer.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert "<dd data-language>Français (the company's)</dd>" in page.content.decode()


CREDIT_EXPECTED = {
    "fr": ("Avoir", "Rectifie la facture", "du 5 mars 2026", "Total de l'avoir",
           "Avoir {} de Northwind"),
    "de": ("Gutschrift", "Korrigiert Rechnung", "vom 5. März 2026", "Gutschriftsbetrag",
           "Gutschrift {} von Northwind"),
    "nl": ("Creditnota", "Corrigeert factuur", "van 5 maart 2026", "Totaal gecrediteerd",
           "Creditnota {} van Northwind"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("language", sorted(CREDIT_EXPECTED))
def test_a_client_gets_a_credit_note_in_their_language(
        language, issue_on, run_jobs, mailoutbox):
    title, corrects, of_date, total_label, subject = CREDIT_EXPECTED[language]
    company = CompanyFactory(name="Northwind", locale="en")
    client = ClientFactory(company=company, name="Client", language=language)
    issue_on(date(2026, 3, 5))
    invoice = services.send_document(InvoiceFactory(client=client, lines=LINES))
    draft = services.draft_credit_note(invoice, reason="")
    credit_note = services.send_document(draft, email=True)
    run_jobs()

    text = pdf_text(document_pdf(credit_note))
    assert f"{title} {credit_note.number}" in text and total_label in text
    assert f"{invoice.number} {of_date}" in text and corrects.upper() in text
    assert english_left(text, language) == []
    [message] = mailoutbox
    assert message.subject == subject.format(credit_note.number)
    assert english_left(message.subject + "\n" + message.body, language) == []


@pytest.mark.django_db
def test_what_folio_writes_on_a_clients_credit_note_is_in_their_language(issue_on):
    client = ClientFactory(company=CompanyFactory(locale="en"), language="de")
    issue_on(date(2026, 3, 5))
    invoice = services.send_document(InvoiceFactory(client=client, lines=LINES))
    credit_note = services.cancel_invoice(invoice)
    assert credit_note.reason == f"Stornierung von {invoice.number}"

    partly = services.send_document(InvoiceFactory(client=client, lines=LINES))
    services.send_document(services.draft_credit_note(partly, amount_lines=[
        ("Rabatt", Decimal("1"), Decimal("34.50"), Decimal("20"))]))
    balance = services.draft_credit_note(partly)  # what is left, one line per rate
    assert [line.description for line in balance.lines.all()] == [
        f"Restbetrag von {partly.number} zu 20 %"]


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["fr", "de"])
def test_numbers_are_typed_and_shown_with_the_languages_decimal_comma(client, member,
                                                                       language):
    """A number input would drop a comma it does not expect, without a word ("10,50" became
    1050): quantities and amounts are text, read and shown in the user's language."""
    from billing.services import send_document

    from .factories import ClientFactory
    from .test_bad_input import lines

    buyer = ClientFactory(company=member.company)
    client.force_login(member.user)
    response = client.post(reverse("invoice_create"), {
        "client": buyer.pk, "currency": "EUR",
        **lines(("Work", "1,5", "10,50", "5,5"), ("More", "2.5", "1.10", "20"))},
        HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 302, response.context["formset"].errors
    draft = Invoice.objects.get(company=member.company)
    assert [(line.quantity, line.unit_price, line.tax_rate) for line in draft.lines.all()] == [
        (Decimal("1.5"), Decimal("10.50"), Decimal("5.5")),
        (Decimal("2.5"), Decimal("1.10"), Decimal("20"))]
    form = client.get(reverse("invoice_edit", args=[draft.pk]),
                      HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert 'value="10,50"' in form and 'inputmode="decimal"' in form

    invoice = send_document(draft)
    page = client.get(reverse("invoice_credit", args=[invoice.pk]),
                      HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert 'value="1,500"' in page  # the quantity to credit, filled in
    first = invoice.lines.order_by("position", "id").first()
    client.post(reverse("invoice_credit", args=[invoice.pk]), {
        "what": "lines", "line": [str(first.pk)], f"quantity_{first.pk}": "0,5"},
        HTTP_ACCEPT_LANGUAGE=language)
    assert invoice.credit_notes.get().lines.get().quantity == Decimal("0.5")


@pytest.mark.django_db
def test_in_english_a_comma_in_a_number_is_refused_not_misread(client, member):
    client.force_login(member.user)
    from .factories import ClientFactory
    from .test_bad_input import lines

    response = client.post(reverse("invoice_create"), {
        "client": ClientFactory(company=member.company).pk, "currency": "EUR",
        **lines(("Work", "1", "10,50", "20"))}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert "unit_price" in response.context["formset"].forms[0].errors
    assert not Invoice.objects.exists()


def line_data(quantity, unit_price="1000.00"):
    return {"lines-TOTAL_FORMS": "1", "lines-INITIAL_FORMS": "0", "lines-0-description": "W",
            "lines-0-quantity": quantity, "lines-0-unit_price": unit_price,
            "lines-0-tax_rate": "20"}


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "fr", "de", "nl", "it", "es"])
def test_a_point_is_never_read_as_a_thousands_separator(language):
    """With Django's thousands grouping on, German would read "1.5" as 15: grouping stays
    off, and a number typed with a point and no group of three means the same in every
    language."""
    from billing.forms import InvoiceLineFormSet

    with translation.override(language):
        formset = InvoiceLineFormSet(line_data("1.5"), prefix="lines")
        assert formset.is_valid(), formset.errors
    assert formset.forms[0].cleaned_data["quantity"] == Decimal("1.5")
    assert formset.forms[0].cleaned_data["unit_price"] == Decimal("1000")


@pytest.mark.django_db
@pytest.mark.parametrize("language, reads", [("en", Decimal("1")), ("fr", None), ("de", None),
                                             ("nl", None), ("it", None), ("es", None)])
def test_a_point_before_three_digits_is_refused_where_decimals_take_a_comma(language, reads):
    """In German 1.000 is a thousand as often as it is one: refused, with a message, where a
    comma marks decimals; in English it is one."""
    from billing.forms import InvoiceLineFormSet

    with translation.override(language):
        formset = InvoiceLineFormSet(line_data("1.000"), prefix="lines")
        valid = formset.is_valid()
    if reads is None:
        assert not valid
        assert formset.forms[0].errors.as_data()["quantity"][0].code == "ambiguous_point"
    else:
        assert valid and formset.forms[0].cleaned_data["quantity"] == reads


@pytest.mark.django_db
@pytest.mark.parametrize("typed, reads", [
    ("1.234,50", Decimal("1234.50")), ("1 234,50", Decimal("1234.50")),
    ("1\u202f234,50", Decimal("1234.50")), ("12.500.000", Decimal("12500000")),
    ("0.250", Decimal("0.25")), ("1.5", Decimal("1.5"))])
def test_numbers_are_read_as_the_page_writes_them_in_german(typed, reads):
    from billing.forms import InvoiceLineFormSet

    with translation.override("de"):
        formset = InvoiceLineFormSet(line_data(typed), prefix="lines")
        assert formset.is_valid(), formset.errors
    assert formset.forms[0].cleaned_data["quantity"] == reads


@pytest.mark.django_db
def test_a_limit_in_a_message_is_written_the_languages_way(client, member):
    """"kleiner oder gleich 1.500" reads as fifteen hundred in German: 1,5 is meant."""
    from billing.services import send_document

    from .factories import ClientFactory, InvoiceFactory

    invoice = send_document(InvoiceFactory(
        company=member.company, client=ClientFactory(company=member.company),
        lines=[{"description": "W", "quantity": Decimal("1.5"), "unit_price": Decimal("10"),
                "tax_rate": Decimal("20")}]))
    line = invoice.lines.get()
    client.force_login(member.user)
    response = client.post(reverse("invoice_credit", args=[invoice.pk]), {
        "what": "lines", "line": [str(line.pk)], f"quantity_{line.pk}": "2"},
        HTTP_ACCEPT_LANGUAGE="de")
    message = str(response.context["form"].errors[f"quantity_{line.pk}"])
    assert "1,500" in message and "1.500" not in message
    response = client.post(reverse("invoice_credit", args=[invoice.pk]), {
        "what": "amount", "amount": "abc", "rate": "20.00"}, HTTP_ACCEPT_LANGUAGE="de")
    form = response.context["form"]
    assert list(form.errors) == ["amount"]  # the field's own message, nothing more


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["invoice_totals", "quote_totals", "recurring_invoice_totals"])
def test_the_live_totals_read_a_decimal_comma(client, member, name):
    from .test_bad_input import lines

    client.force_login(member.user)
    html = client.post(reverse(name), lines(("Pain", "1,5", "10,50", "5,5")),
                       HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "16,62" in html  # 15,75 + TVA 5,5 % 0,87


@pytest.mark.django_db
def test_a_payment_is_typed_with_a_decimal_comma(client, member):
    from billing.services import send_document

    from .factories import ClientFactory, InvoiceFactory

    invoice = send_document(InvoiceFactory(company=member.company,
                                           client=ClientFactory(company=member.company)))
    client.force_login(member.user)
    client.post(reverse("invoice_payment", args=[invoice.pk]), {
        "date": timezone.localdate().isoformat(), "amount": "12,34",
        "method": "bank_transfer"}, HTTP_ACCEPT_LANGUAGE="fr")
    assert invoice.payments.get().amount == Decimal("12.34")


@pytest.mark.django_db
def test_a_schedules_mode_keeps_its_capitals_in_german(client, member):
    """German capitalises nouns: "Entwürfe erstellen", never "entwürfe erstellen"."""
    from .factories import ClientFactory
    from .test_recurring import schedule_of

    schedule = schedule_of(ClientFactory(company=member.company))
    client.force_login(member.user)
    html = client.get(reverse("recurring_invoice_detail", args=[schedule.pk]),
                      HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Entwürfe erstellen" in html and "entwürfe erstellen" not in html
