"""
The whole cycle in a real browser: Debian's chromium, driven by Playwright, against the live
server. Screenshots of every step land in the test's temporary folder (pytest prints it on
failure) so that a failure can be looked at.
"""

import io
import os
import re
from pathlib import Path

import pytest
from django.core import mail
from playwright.sync_api import expect, sync_playwright
from pypdf import PdfReader

from billing.models import CreditNote, Invoice, Membership
from counters.models import IssuedNumber

from .factories import MembershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def chromium():
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between browser steps are still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_server, tmp_path):
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1280,
                                                                       "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    shots = iter(range(1, 1000))
    page.shot = lambda name: page.screenshot(
        path=tmp_path / f"{next(shots):02d}-{name}.png", full_page=True)
    yield page
    context.close()


@pytest.fixture
def owner():
    return MembershipFactory(role=Membership.Role.OWNER, company__name="Atelier Test",
                             user__username="owner")


def log_in(page, username="owner"):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Atelier Test")


def test_invoice_send_credit_note_cycle(page, owner):
    log_in(page)
    page.shot("dashboard")

    # A client.
    page.get_by_role("link", name="Clients", exact=True).click()
    page.get_by_role("link", name="New client").click()
    page.get_by_label("Name").fill("Boulangerie Martin")
    page.get_by_label("E-mail", exact=True).fill("compta@martin.example")
    # What its e-invoices need (the company has e-invoicing on).
    page.get_by_label("Street").fill("12 rue du Four")
    page.get_by_label("Postal code").fill("69001")
    page.get_by_label("City").fill("Lyon")
    page.get_by_label("Country").select_option(label="France")
    page.get_by_label("VAT number").fill("FR03552081317")
    page.get_by_label("Electronic address scheme").select_option("0009")
    page.get_by_label("Electronic address", exact=True).fill("55208131700018")
    page.get_by_role("button", name="Save client").click()
    expect(page.get_by_text("Client Boulangerie Martin saved.")).to_be_visible()
    page.shot("client")

    # An invoice with two lines, added without a page reload, with live totals.
    page.get_by_role("link", name="New invoice").click()
    form_url = page.url
    expect(page.get_by_label("Client")).to_have_value(re.compile(r"\d+"))
    rows = page.locator("#line-rows tr.line-row:visible")
    rows.nth(0).get_by_label("Description").fill("Website redesign")
    rows.nth(0).get_by_label("Quantity").fill("1")
    rows.nth(0).get_by_label("Unit price").fill("2400")
    rows.nth(0).get_by_label("Tax %").fill("20")
    page.get_by_role("button", name="+ Add a line").click()
    expect(rows).to_have_count(2)
    assert page.url == form_url  # no reload
    rows.nth(1).get_by_label("Description").fill("Training day")
    rows.nth(1).get_by_label("Quantity").fill("2")
    rows.nth(1).get_by_label("Unit price").fill("650")
    rows.nth(1).get_by_label("Tax %").fill("10")
    expect(page.locator("[data-total=total]")).to_have_text("4,310.00\u00a0EUR")
    page.shot("invoice-form")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_text("Draft saved.")).to_be_visible()

    # Editing the draft: totals stay live with its saved lines.
    page.get_by_role("link", name="Edit", exact=True).click()
    rows.nth(1).get_by_label("Unit price").fill("700")
    expect(page.locator("[data-total=total]")).to_have_text("4,420.00\u00a0EUR")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_text("Draft saved.")).to_be_visible()

    # The draft shows a preview, never a real number.
    preview = page.locator("[data-preview]")
    expect(preview).to_contain_text(re.compile(r"number on send: INV-\d{4}-0001 \(preview\)"))
    assert not IssuedNumber.objects.exists()
    page.shot("draft")

    # Send: the confirmation names the number; afterwards the page shows it, locked.
    page.get_by_role("button", name="Send…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(re.compile(r"take the number INV-\d{4}-0001"))
    page.shot("send-dialog")
    dialog.get_by_role("button", name="Send and issue").click()
    number = page.locator("[data-number]")
    expect(number).to_have_text(re.compile(r"INV-\d{4}-0001"))
    expect(page.get_by_text("can no longer be edited or deleted")).to_be_visible()
    expect(page.get_by_role("link", name="Edit", exact=True)).to_have_count(0)
    invoice_number = number.inner_text()
    invoice = Invoice.objects.get(number=invoice_number)
    assert invoice.state == "sent" and invoice.total == 4420
    page.shot("sent")

    # Its PDF, a Factur-X PDF, and its e-invoices.
    expect(page.locator("[data-pdf]")).to_have_text("PDF (Factur-X)")
    pdf = page.request.get(page.locator("[data-pdf]").get_attribute("href"))
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
    assert "factur-x.xml" in PdfReader(io.BytesIO(pdf.body())).attachments
    with page.expect_download() as download:
        page.locator("[data-einvoice=ubl]").click()
    assert download.value.suggested_filename == f"{invoice_number}-ubl.xml"
    assert b"<cbc:InvoiceTypeCode>380<" in Path(download.value.path()).read_bytes()

    # A credit note from it, for the open amount, then sent.
    page.get_by_role("link", name="Create credit note").click()
    page.get_by_label("Reason").fill("Training cancelled")
    page.get_by_role("button", name="Draft the credit note").click()
    expect(page.locator("[data-preview]")).to_contain_text(
        re.compile(r"CN-\d{4}-0001 \(preview\)"))
    page.shot("credit-draft")
    page.get_by_role("button", name="Send…").click()
    page.get_by_role("dialog").get_by_role("button", name="Send and issue").click()
    expect(page.locator("[data-number]")).to_have_text(re.compile(r"CN-\d{4}-0001"))
    expect(page.get_by_text(invoice_number).first).to_be_visible()
    page.shot("credit-sent")

    # Both in their lists, with the right states.
    page.get_by_role("link", name="Invoices", exact=True).click()
    row = page.get_by_role("row").filter(has_text=invoice_number)
    expect(row).to_contain_text("Sent")
    page.get_by_role("link", name="Credit notes", exact=True).click()
    row = page.get_by_role("row").filter(has_text=re.compile(r"CN-\d{4}-0001"))
    expect(row).to_contain_text("Sent")
    expect(row).to_contain_text("4,420.00")
    page.shot("lists")
    assert CreditNote.objects.get().invoice_number == invoice_number


def test_a_failed_send_keeps_the_draft_and_says_why(page, owner):
    from .factories import ClientFactory, InvoiceFactory

    draft = InvoiceFactory(client=ClientFactory(company=owner.company), lines=[])
    log_in(page)
    page.goto(f"/invoices/{draft.pk}/")
    page.get_by_role("button", name="Send…").click()
    page.get_by_role("dialog").get_by_role("button", name="Send and issue").click()
    expect(page.get_by_text("Not sent: Add at least one line before sending.")).to_be_visible()
    expect(page.locator("[data-preview]")).to_be_visible()
    page.shot("failed-send")
    draft.refresh_from_db()
    assert draft.is_draft and draft.number == ""


def test_a_client_page_leads_to_its_documents(page, owner):
    from billing.services import send_document

    from .factories import ClientFactory, InvoiceFactory

    client = ClientFactory(company=owner.company, name="Fromagerie Dupont")
    oldest = send_document(InvoiceFactory(client=client))
    InvoiceFactory.create_batch(25, client=client)
    InvoiceFactory(client=ClientFactory(company=owner.company))  # another client's
    log_in(page)
    page.get_by_role("link", name="Clients", exact=True).click()
    page.get_by_role("link", name="Fromagerie Dupont").click()
    invoices = page.locator("section table").first.locator("tbody tr")
    expect(invoices).to_have_count(25)  # the latest 25; the oldest is one link away
    expect(page.get_by_text(oldest.number)).to_have_count(0)
    page.shot("client-page")
    page.get_by_role("link", name="All invoices of this client").click()
    expect(page).to_have_url(re.compile(rf"/invoices/\?client={client.pk}$"))
    expect(page.get_by_role("row").filter(has_text="Fromagerie Dupont")).to_have_count(25)
    page.get_by_role("link", name="Next").click()
    page.get_by_role("link", name=oldest.number).click()
    expect(page.locator("[data-number]")).to_have_text(oldest.number)
    page.shot("client-oldest-invoice")


def test_a_client_entered_by_mistake_is_deleted_after_a_confirmation(page, owner):
    from billing.models import Client

    from .factories import ClientFactory

    ClientFactory(company=owner.company, name="Typo Client")
    log_in(page)
    page.get_by_role("link", name="Clients", exact=True).click()
    page.get_by_role("link", name="Typo Client").click()
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Client Typo Client deleted.")).to_be_visible()
    assert questions == ["Delete this client? It has no invoices or credit notes."]
    assert not Client.objects.filter(name="Typo Client").exists()


def test_the_list_filters_by_state_and_keeps_the_choice(page, owner):
    from billing.services import send_document

    from .factories import ClientFactory, InvoiceFactory

    client = ClientFactory(company=owner.company)
    sent = send_document(InvoiceFactory(client=client))
    draft = InvoiceFactory(client=client)
    log_in(page)
    page.get_by_role("link", name="Invoices", exact=True).click()
    expect(page.get_by_role("link", name="Invoices", exact=True)).to_have_attribute(
        "aria-current", "page")
    expect(page.get_by_role("link", name=f"Draft #{draft.pk}")).to_be_visible()
    page.get_by_label("State").select_option("sent")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/invoices/\?.*state=sent"))
    expect(page.get_by_label("State")).to_have_value("sent")  # the choice is kept
    expect(page.get_by_role("link", name=sent.number)).to_be_visible()
    expect(page.get_by_role("link", name=f"Draft #{draft.pk}")).to_have_count(0)
    page.shot("list-filtered")


def test_numbering_settings_show_a_live_example(page, owner):
    log_in(page)
    page.get_by_role("link", name="Numbering").click()
    expect(page.locator("[data-example=invoice]")).to_have_text(re.compile(r"INV-\d{4}-0001"))
    page.get_by_label("Invoice pattern").fill("FA{YY}-{counter}")
    expect(page.locator("[data-example=invoice]")).to_have_text(re.compile(r"FA\d\d-0001"))
    page.get_by_label("Invoice pattern").fill("FA-{YYY}-{counter}")
    expect(page.locator("#examples")).to_contain_text("Unknown token {YYY}")
    page.shot("numbering-error")
    page.get_by_label("Invoice pattern").fill("FA-{YYYY}-{counter}")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Numbering settings saved.")).to_be_visible()
    expect(page.locator("[data-changes] li").first).to_have_text(
        "Invoice pattern: INV-{YYYY}-{counter} → FA-{YYYY}-{counter}")


def test_a_second_series_numbers_the_drafts_that_choose_it(page, owner):
    from .factories import ClientFactory

    ClientFactory(company=owner.company, name="Casa Verde")
    log_in(page)
    page.get_by_role("link", name="Numbering").click()
    page.get_by_role("link", name="+ New series").click()
    page.get_by_label("Series name").fill("Madrid")
    page.get_by_label("Series code").fill("MAD")
    page.get_by_label("Invoice pattern").fill("MAD-{YYYY}-{counter}")
    # The credit note pattern is still the first series' own: the numbers could repeat.
    expect(page.locator("#examples")).to_contain_text("could repeat those of the series Main")
    page.get_by_label("Credit note pattern").fill("MAD-R-{YYYY}-{counter}")
    expect(page.locator("[data-example=invoice]")).to_have_text(re.compile(r"MAD-\d{4}-0001"))
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Series created.")).to_be_visible()
    expect(page.locator("[data-series-tabs] [aria-current=page]")).to_contain_text("Madrid")
    page.shot("series")

    page.goto("/invoices/new/")
    page.get_by_label("Client", exact=True).select_option(label="Casa Verde")
    page.get_by_label("Numbering series").select_option(label="Madrid")
    row = page.locator("#line-rows tr.line-row:visible").nth(0)
    row.get_by_label("Description").fill("Rent")
    row.get_by_label("Quantity").fill("1")
    row.get_by_label("Unit price").fill("100")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator("[data-preview]")).to_contain_text(re.compile(r"MAD-\d{4}-0001"))
    expect(page.locator("[data-series]")).to_have_text("Series: Madrid")
    page.get_by_role("button", name="Send…").click()
    page.get_by_role("dialog").get_by_role("button", name="Send and issue").click()
    expect(page.locator("[data-number]")).to_have_text(re.compile(r"MAD-\d{4}-0001"))
    assert IssuedNumber.objects.get().series == "MAD/invoice"


def test_the_fiscal_year_shows_in_the_live_example(page, owner):
    log_in(page)
    page.get_by_role("link", name="Numbering").click()
    page.get_by_label("Fiscal year starts in").select_option(label="April")
    expect(page.locator("#examples")).to_contain_text("needs {FY}")
    page.get_by_label("Invoice pattern").fill("INV-{FY}-{counter}")
    page.get_by_label("Credit note pattern").fill("CN-{FY}-{counter}")
    expect(page.locator("[data-example=invoice]")).to_have_text(
        re.compile(r"INV-\d{4}-\d\d-0001"))
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Numbering settings saved.")).to_be_visible()
    expect(page.locator("[data-changes]").first).to_contain_text(
        "Fiscal year starts in: January → April")


def test_log_out_and_reset_a_password(page, owner):
    log_in(page)
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(owner.user.email)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
    link = re.search(r"https?://\S+/reset/\S+/", mail.outbox[-1].body).group(0)
    page.goto(link)
    page.get_by_label("New password", exact=True).fill("a-much-longer-passphrase-2026")
    page.get_by_label("New password confirmation").fill("a-much-longer-passphrase-2026")
    page.get_by_role("button", name="Set the password").click()
    expect(page.get_by_role("heading", name="Password changed")).to_be_visible()


def test_pages_fit_a_phone(page, owner):
    from billing.services import send_document

    from .factories import ClientFactory, InvoiceFactory, QuoteFactory

    invoice = send_document(InvoiceFactory(client=ClientFactory(company=owner.company)))
    quote = send_document(QuoteFactory(client=invoice.client))
    log_in(page)
    page.set_viewport_size({"width": 375, "height": 740})
    for url in ("/", "/invoices/", f"/invoices/{invoice.pk}/", "/invoices/new/", "/numbering/",
                "/quotes/", f"/quotes/{quote.pk}/"):
        page.goto(url)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        page.shot("phone" + url.replace("/", "-"))
        assert overflow <= 0, f"{url} is {overflow}px wider than the phone"


def test_the_dashboards_tables_show_every_column_on_a_laptop(page, owner):
    from billing.services import draft_credit_note, send_document

    from .factories import ClientFactory, InvoiceFactory

    invoice = send_document(InvoiceFactory(
        client=ClientFactory(company=owner.company, name="Boulangerie Martin")))
    send_document(draft_credit_note(invoice))
    log_in(page)
    for table in page.locator("section.card table").all():
        clipped = table.evaluate("t => t.scrollWidth - t.parentElement.clientWidth")
        assert clipped <= 0, f"a table is {clipped}px wider than its card"


PHONE = {"width": 390, "height": 844}


def right_edges_inside(page, locator, what):
    """
    Every element of ``locator`` is on screen across, as the page opens: a phone scrolls down,
    not sideways (nor inside a table). Never scrolled into view: that would scroll the table.
    """
    count = locator.count()
    assert count > 0, f"no {what}"
    for i in range(count):
        box = locator.nth(i).bounding_box()
        assert box is not None, f"{what} {i} is not shown"
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (
            f"{what} {i} spans {box['x']:.0f}–{box['x'] + box['width']:.0f}px")


def test_money_stays_in_view_on_a_phone(page, owner):
    from decimal import Decimal

    from billing.services import send_document

    from .factories import ClientFactory, CreditNoteFactory, InvoiceFactory

    client = ClientFactory(company=owner.company,
                           name="Établissements Vandenberghe-Dubois et Associés")
    lines = [{"description": "Réfection complète de la toiture, ardoises naturelles",
              "quantity": Decimal("1250.5"), "unit_price": Decimal("98765.43"),
              "tax_rate": Decimal("20")},
             {"description": "Échafaudage", "quantity": Decimal("1"),
              "unit_price": Decimal("1500"), "tax_rate": Decimal("5.5")}]
    invoice = send_document(InvoiceFactory(client=client, lines=lines))
    InvoiceFactory(client=client, lines=lines)  # a draft
    send_document(CreditNoteFactory(client=client, invoice=invoice, lines=lines[1:]))
    log_in(page)
    page.set_viewport_size(PHONE)
    for url in ("/", "/invoices/", "/credit-notes/", f"/clients/{client.pk}/"):
        page.goto(url)
        page.shot("phone-money" + url.replace("/", "-"))
        right_edges_inside(page, page.locator("tbody td.num"), f"a row's total on {url}")
    page.goto(f"/invoices/{invoice.pk}/")
    page.shot("phone-invoice")
    right_edges_inside(page, page.locator("section tbody tr td.num:last-child"),
                       "a line's amount")
    right_edges_inside(page, page.locator("[data-document-total]"), "the document's total")
    right_edges_inside(page, page.locator(".actions .button:visible"), "an action")
    page.goto(f"/invoices/{invoice.pk}/credit/")
    page.shot("phone-credit")
    right_edges_inside(page, page.locator("tbody td.num:visible"), "a line's amount to credit")
    right_edges_inside(page, page.locator(".actions .button"), "an action of the credit page")
    page.goto("/clients/")
    right_edges_inside(page, page.locator("tbody td.num"), "a client's invoice count")

    page.goto(f"/invoices/{Invoice.objects.filter(state='draft').get().pk}/edit/")
    page.shot("phone-line-editor")
    for name in ("description", "quantity", "unit_price", "tax_rate"):
        fields = page.locator(f"#line-rows input[name$='-{name}']")
        expect(fields).to_have_count(2)
        right_edges_inside(page, fields, f"the {name} field")
    right_edges_inside(page, page.locator("#line-rows [data-remove-line]"), "a remove button")
    right_edges_inside(page, page.locator("#totals td.num"), "a total of the draft")
    page.get_by_role("button", name="+ Add a line").click()
    right_edges_inside(page, page.locator("#line-rows input[name$='-unit_price']"),
                       "the unit price of the new line")
    page.get_by_label("Quantity").last.fill("2")  # its labels are shown, not just read out
    expect(page.get_by_text("Quantity").last).to_be_visible()


def test_ticking_a_line_to_credit_chooses_those_lines(page, owner):
    from decimal import Decimal

    from billing.services import send_document

    from .factories import ClientFactory, InvoiceFactory

    work = {"quantity": Decimal("1"), "tax_rate": Decimal("20")}
    invoice = send_document(InvoiceFactory(
        client=ClientFactory(company=owner.company),
        lines=[{**work, "description": "Design", "unit_price": Decimal("100")},
               {**work, "description": "Printing", "unit_price": Decimal("50")}]))
    log_in(page)
    page.goto(f"/invoices/{invoice.pk}/credit/")
    expect(page.get_by_label("The whole open amount")).to_be_checked()
    expect(page.locator("[data-credit-total]")).to_have_text("180.00\u00a0EUR")  # preview
    page.get_by_role("checkbox", name="Printing").check()
    expect(page.get_by_label("Only these lines:")).to_be_checked()
    expect(page.locator("[data-credit-total]")).to_have_text("60.00\u00a0EUR")
    page.get_by_role("button", name="Draft the credit note").click()
    expect(page.get_by_text("Credit note drafted.")).to_be_visible()
    [credit_note] = CreditNote.objects.all()
    assert [line.description for line in credit_note.lines.all()] == ["Printing"]


def test_no_serious_accessibility_finding_on_any_page(page, owner):
    """axe-core, the rule set browsers' accessibility tools use, on every page at both widths."""
    from decimal import Decimal

    from axe_playwright_python.sync_playwright import Axe

    from billing.services import send_document
    from counters.models import NumberingSettings
    from counters.services import save_numbering_settings

    from .factories import ClientFactory, CreditNoteFactory, InvoiceFactory, QuoteFactory

    owner.user.is_staff = True
    owner.user.save()
    client = ClientFactory(company=owner.company, name="Boulangerie Martin")
    work = [{"description": "Pain", "quantity": Decimal("3"), "unit_price": Decimal("1.20"),
             "tax_rate": Decimal("5.5")}]
    invoice = send_document(InvoiceFactory(client=client, lines=work))
    draft = InvoiceFactory(client=client, lines=work)
    credit_note = send_document(CreditNoteFactory(client=client, invoice=invoice, lines=work))
    unpaid = send_document(InvoiceFactory(client=client, lines=work))
    quote = send_document(QuoteFactory(client=client, lines=work))
    shop = save_numbering_settings(NumberingSettings(  # a second series: forms offer a choice
        company=owner.company, name="Shop", code="SHOP", invoice_pattern="S-{YYYY}-{counter}",
        credit_note_pattern="SC-{YYYY}-{counter}"))
    pages = ["/", "/clients/", f"/clients/{client.pk}/", "/clients/new/", f"/invoices/{unpaid.pk}/",
             f"/clients/{client.pk}/edit/", "/invoices/", f"/invoices/{invoice.pk}/",
             f"/invoices/{draft.pk}/", "/invoices/new/", f"/invoices/{draft.pk}/edit/",
             f"/invoices/{invoice.pk}/credit/", "/credit-notes/",
             f"/credit-notes/{credit_note.pk}/", "/credit-notes/new/", "/members/", "/company/",
             "/numbering/", "/numbering/new/", f"/numbering/{shop.pk}/",
             "/audit/",
             "/accounts/preferences/", "/invoices/999999/",
             "/quotes/", f"/quotes/{quote.pk}/", "/quotes/new/"]
    axe = Axe()
    findings = []

    def check(url, width):
        results = axe.run(page)
        for violation in results.response["violations"]:
            if violation["impact"] in ("serious", "critical"):
                findings.append((url, width, violation["id"], violation["impact"],
                                 [node["target"] for node in violation["nodes"]][:3]))

    wider = []  # pages wider than the screen, so that a phone scrolls sideways
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.context.clear_cookies()
        for url in ("/accounts/login/", "/accounts/password_reset/"):
            page.goto(url)
            check(url, width)
        log_in(page)
        for url in pages:
            page.goto(url)
            check(url, width)
            overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
            if overflow > 0:
                wider.append((url, width, overflow))
        for url, button in ((f"/invoices/{draft.pk}/", "Send…"),
                            (f"/invoices/{invoice.pk}/", "Cancel invoice…"),
                            (f"/invoices/{unpaid.pk}/", "Paid in full…"),
                            (f"/quotes/{quote.pk}/", "Decline…")):
            page.goto(url)
            page.get_by_role("button", name=button).click()
            expect(page.get_by_role("dialog")).to_be_visible()
            check(f"{url} {button}", width)
    assert findings == []
    assert wider == []


def test_moving_a_line_up_reorders_the_draft(page, owner):
    from decimal import Decimal

    from .factories import ClientFactory, InvoiceFactory

    work = {"quantity": Decimal("1"), "unit_price": Decimal("10"), "tax_rate": Decimal("20")}
    draft = InvoiceFactory(client=ClientFactory(company=owner.company), lines=[
        {**work, "description": "First"}, {**work, "description": "Second"},
        {**work, "description": "Third"}])
    log_in(page)
    page.goto(f"/invoices/{draft.pk}/edit/")
    page.get_by_role("button", name="Move this line up").nth(2).click()  # Third above Second
    page.get_by_role("button", name="Move this line up").nth(0).click()  # at the top: stays
    descriptions = page.locator("#line-rows input[name$='-description']")
    assert descriptions.evaluate_all("inputs => inputs.map(i => i.value)") == [
        "First", "Third", "Second"]
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_text("Draft saved.")).to_be_visible()
    assert [line.description for line in draft.lines.all()] == ["First", "Third", "Second"]


def test_the_company_page_completes_what_an_e_invoice_needs(page, owner):
    from .factories import ClientFactory, InvoiceFactory

    company = owner.company
    company.country = ""
    company.save()
    draft = InvoiceFactory(client=ClientFactory(company=company))
    log_in(page)
    page.goto(f"/invoices/{draft.pk}/")
    problems = page.locator("[data-einvoice-problems]")
    expect(problems).to_contain_text("Add your company's country (on the Company page).")
    page.shot("draft-lacks")
    page.get_by_role("link", name="Company", exact=True).click()
    page.get_by_label("Country").select_option(label="France")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Company details saved.")).to_be_visible()
    page.shot("company")
    page.goto(f"/invoices/{draft.pk}/")
    expect(problems).to_have_count(0)
    page.get_by_role("button", name="Send…").click()
    page.get_by_role("dialog").get_by_role("button", name="Send and issue").click()
    expect(page.locator("[data-number]")).to_have_text(re.compile(r"INV-\d{4}-0001"))
    expect(page.locator("[data-einvoice=cii]")).to_be_visible()


def test_record_a_partial_then_a_full_payment(page, owner):
    from decimal import Decimal

    from billing.services import send_document

    from .factories import ClientFactory, InvoiceFactory

    invoice = send_document(InvoiceFactory(
        client=ClientFactory(company=owner.company, name="Boulangerie Martin"),
        lines=[{"description": "Bread", "quantity": Decimal("10"),
                "unit_price": Decimal("24.00"), "tax_rate": Decimal("0"),
                "tax_category": "Z"}]))  # 240.00
    log_in(page)
    page.goto(f"/invoices/{invoice.pk}/")
    form = page.locator("[data-record-payment]")
    expect(form.get_by_label("Amount")).to_have_value("240.00")  # what is left, proposed

    # Too much: refused, with what was typed kept.
    form.get_by_label("Amount").fill("250")
    form.get_by_label("Reference").fill("VIR 0412")
    form.get_by_role("button", name="Record payment").click()
    expect(page.get_by_text("This is more than what is left to pay (240.00\u00a0EUR)")) \
        .to_be_visible()
    expect(form.get_by_label("Reference")).to_have_value("VIR 0412")

    # A partial payment.
    form.get_by_label("Amount").fill("100")
    form.get_by_label("Method").select_option(label="Bank transfer")
    form.get_by_role("button", name="Record payment").click()
    expect(page.get_by_text("Payment of 100.00\u00a0EUR recorded; 140.00\u00a0EUR left to pay.")) \
        .to_be_visible()
    expect(page.locator("[data-open-amount]")).to_have_text("140.00\u00a0EUR")
    expect(page.locator("[data-payments] li")).to_have_count(1)
    page.shot("partial-payment")

    # The rest, by card: the invoice is paid.
    expect(form.get_by_label("Amount")).to_have_value("140.00")
    form.get_by_label("Method").select_option(label="Card")
    form.get_by_role("button", name="Record payment").click()
    expect(page.get_by_text(f"Payment of 140.00\u00a0EUR recorded: {invoice.number} is paid.")) \
        .to_be_visible()
    expect(page.locator("h1 .badge")).to_have_text("Paid")
    expect(page.locator("[data-open-amount]")).to_have_text("0.00\u00a0EUR")
    expect(page.locator("[data-record-payment]")).to_have_count(0)
    page.shot("paid")

    # The dashboard: nothing open, 240.00 received.
    page.goto("/")
    expect(page.locator("[data-amount=open]")).to_have_text("0.00\u00a0EUR")
    expect(page.locator("[data-amount=paid]")).to_have_text("240.00\u00a0EUR received")
    invoice.refresh_from_db()
    assert invoice.state == "paid"
    assert [(p.amount, p.method) for p in invoice.payments.order_by("id")] == [
        (Decimal("100.00"), "bank_transfer"), (Decimal("140.00"), "card")]


# --- Recurring invoices ---------------------------------------------------------------------


def test_a_recurring_invoice_is_set_up_and_run_now(page, owner, run_jobs, mailoutbox):
    from django.utils import timezone

    from .factories import ClientFactory

    buyer = ClientFactory(company=owner.company, name="Boulangerie Martin")
    log_in(page)
    page.get_by_role("link", name="Recurring", exact=True).click()
    page.get_by_role("link", name="New recurring invoice").click()
    page.get_by_label("Name", exact=True).fill("Maintenance")
    page.get_by_label("Client", exact=True).select_option(label=buyer.name)
    page.get_by_label("Day of the month").select_option("1")
    first = timezone.localdate().replace(day=1)
    page.get_by_label("Start date").fill(first.isoformat())
    page.get_by_label("Mode").select_option(label="Create and send")
    rows = page.locator("#line-rows tr.line-row:visible")
    rows.nth(0).get_by_label("Description").fill("Website maintenance")
    rows.nth(0).get_by_label("Quantity").fill("1")
    rows.nth(0).get_by_label("Unit price").fill("180")
    rows.nth(0).get_by_label("Tax %").fill("20")
    expect(page.locator("[data-total=total]")).to_have_text("216.00\u00a0EUR")  # live
    page.shot("recurring-form")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Recurring invoice Maintenance saved.")).to_be_visible()

    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_text("1 invoice made (1 sent).")).to_be_visible()
    page.shot("recurring-run")
    invoices = page.locator("[data-schedule-invoices] a")
    expect(invoices).to_have_count(1)
    invoices.first.click()
    expect(page.locator("[data-number]")).to_have_text(re.compile(r"INV-\d{4}-0001"))
    expect(page.locator("[data-recurring]")).to_contain_text("Maintenance")
    page.shot("recurring-invoice")
    # Its e-mail is a durable job: a worker delivers it.
    run_jobs()
    assert [m.to for m in mailoutbox] == [[buyer.email]]
    # Run again: nothing new.
    page.locator("[data-recurring] a").click()
    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_text("No period is due: nothing was made.")).to_be_visible()
    assert Invoice.objects.count() == 1


def test_a_recurring_invoice_is_numbered_in_the_series_it_chose(page, owner):
    from django.utils import timezone

    from counters.models import NumberingSettings
    from counters.services import save_numbering_settings

    from .factories import ClientFactory

    save_numbering_settings(NumberingSettings(
        company=owner.company, name="Web shop", code="WEB", invoice_pattern="WEB-{YYYY}-{counter}",
        credit_note_pattern="WEB-R-{YYYY}-{counter}"))
    buyer = ClientFactory(company=owner.company, name="Casa Verde")
    log_in(page)
    page.goto("/recurring/new/")
    page.get_by_label("Name", exact=True).fill("Hosting")
    page.get_by_label("Client", exact=True).select_option(label=buyer.name)
    page.get_by_label("Numbering series").select_option(label="Web shop")
    page.get_by_label("Start date").fill(timezone.localdate().replace(day=1).isoformat())
    page.get_by_label("Day of the month").select_option("1")
    page.get_by_label("Mode").select_option(label="Create and send")
    row = page.locator("#line-rows tr.line-row:visible").nth(0)
    row.get_by_label("Description").fill("Hosting")
    row.get_by_label("Quantity").fill("1")
    row.get_by_label("Unit price").fill("30")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("[data-series]")).to_have_text("Series: Web shop")
    page.get_by_role("button", name="Run now").click()
    page.locator("[data-schedule-invoices] a").first.click()
    expect(page.locator("[data-number]")).to_have_text(re.compile(r"WEB-\d{4}-0001"))


def test_a_french_user_types_amounts_with_a_decimal_comma(page, owner):
    """A number input drops a comma it does not expect: 10,50 became 1050, at 55 % tax."""
    from decimal import Decimal

    from billing.models import UserPreferences

    from .factories import ClientFactory

    UserPreferences.objects.create(user=owner.user, language="fr")
    ClientFactory(company=owner.company, name="Boulangerie Martin")
    log_in(page)
    page.goto("/invoices/new/")
    page.locator("select[name=client]").select_option(label="Boulangerie Martin")
    row = page.locator("#line-rows tr.line-row:visible").nth(0)
    row.locator("input[name$='-description']").fill("Pain")
    row.locator("input[name$='-quantity']").fill("1,5")
    row.locator("input[name$='-unit_price']").fill("10,50")
    row.locator("input[name$='-tax_rate']").fill("5,5")
    # 1,5 × 10,50 = 15,75; TVA 5,5 % = 0,87 (0,86625 arrondi); total 16,62.
    expect(page.locator("[data-total=total]")).to_contain_text("16,62")
    page.shot("french-amounts")
    page.locator("button.primary[type=submit]").first.click()
    expect(page).to_have_url(re.compile(r"/invoices/\d+/$"))
    line = Invoice.objects.get(company=owner.company).lines.get()
    assert (line.quantity, line.unit_price, line.tax_rate) == (
        Decimal("1.5"), Decimal("10.50"), Decimal("5.5"))
