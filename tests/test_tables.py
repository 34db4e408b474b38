"""
Document tables (the lists, the dashboard, a client's page), checked against facts known
without the code under test: how each locale writes an amount and a date, where a document's
page is, what an escaped name looks like.
"""

import re
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from billing.models import Invoice
from billing.services import mark_paid, send_document
from billing.tables import table_documents
from billing.templatetags.folio import money

from .factories import ClientFactory, CreditNoteFactory, InvoiceFactory, MembershipFactory

pytestmark = pytest.mark.django_db

ONE_LINE_OF_1234_50 = [{"description": "x", "quantity": 1, "unit_price": Decimal("1234.50"),
                        "tax_rate": 0, "tax_category": "Z"}]


@pytest.fixture
def member(client):
    member = MembershipFactory()
    client.force_login(member.user)
    return member


def rows_of(client, url):
    """The <tr>s of the page's table bodies, one string each."""
    body = client.get(url).content.decode()
    tbodies = re.findall(r"<tbody>(.*?)</tbody>", body, re.S)
    return [row.strip() for tbody in tbodies for row in re.findall(r"<tr>.*?</tr>", tbody, re.S)]


@pytest.mark.parametrize("locale, total, issued, due, sent", [
    # Django's formats: en groups with ","; fr groups with a no-break space (U+00A0); de
    # groups with ".". Dates are written the one way each language writes them on every page
    # (its DATE_FORMAT). The state is translated.
    ("en", "1,234.50\xa0EUR", "Jan. 5, 2026", "Feb. 4, 2026", "Sent"),
    ("fr", "1\xa0234,50\xa0EUR", "5 janvier 2026", "4 février 2026", "Envoyé"),
    ("de", "1.234,50\xa0EUR", "5. Januar 2026", "4. Februar 2026", "Gesendet"),
])
def test_an_issued_row_in_the_companys_locale(client, member, issue_on, locale, total, issued,
                                              due, sent):
    member.company.locale = locale
    member.company.save()
    buyer = ClientFactory(company=member.company, name="Epsilon")
    issue_on(date(2026, 1, 5))  # due 30 days later: 4 February
    invoice = send_document(InvoiceFactory(client=buyer, lines=ONE_LINE_OF_1234_50))
    assert rows_of(client, "/invoices/") == [  # first, the month-end run's selection
        f'<tr><td></td><td><a href="/invoices/{invoice.pk}/">{invoice.number}</a></td>'
        f"<td>Epsilon</td>"
        f'<td class="hide-small">{issued}</td><td class="hide-small">{due}</td>'
        f'<td><span class="badge badge-sent">{sent}</span></td>'
        f'<td class="num">{total}</td><td class="num" data-open="{invoice.pk}">{total}</td>'
        f'</tr>']


def test_a_draft_links_to_its_page_by_its_id_and_escapes_its_clients_name(client, member):
    buyer = ClientFactory(company=member.company, name='<i>"Epsilon"</i> & Co')
    draft = InvoiceFactory(client=buyer, due_date=date(2026, 2, 1))
    assert rows_of(client, "/invoices/") == [
        f'<tr><td><input type="checkbox" name="document" value="{draft.pk}" '
        f'aria-label="Select draft #{draft.pk}" data-select-draft></td>'
        f'<td><a href="/invoices/{draft.pk}/" class="muted">Draft #{draft.pk}</a></td>'
        "<td>&lt;i&gt;&quot;Epsilon&quot;&lt;/i&gt; &amp; Co</td>"
        '<td class="hide-small">—</td><td class="hide-small">Feb. 1, 2026</td>'
        '<td><span class="badge badge-draft">Draft</span></td>'
        f'<td class="num">240.00\xa0EUR</td><td class="num" data-open="{draft.pk}">—</td></tr>']


def test_a_credit_note_links_to_the_credit_note_page(client, member):
    note = CreditNoteFactory(client=ClientFactory(company=member.company))
    [row] = rows_of(client, "/credit-notes/")
    assert f'<a href="/credit-notes/{note.pk}/" class="muted">Draft #{note.pk}</a>' in row


def test_a_sent_invoice_past_its_due_date_is_badged_overdue_and_a_paid_one_is_not(
        client, member, issue_on):
    buyer = ClientFactory(company=member.company)
    issue_on(date(2026, 1, 5))
    late = send_document(InvoiceFactory(client=buyer, due_date=date(2026, 2, 1)))
    on_time = send_document(InvoiceFactory(client=buyer, due_date=date(2026, 3, 1)))
    paid = mark_paid(send_document(InvoiceFactory(client=buyer, due_date=date(2026, 2, 1))))
    issue_on(date(2026, 2, 2))
    rows = {re.search(r"/invoices/(\d+)/", row).group(1): row
            for row in rows_of(client, "/invoices/")}
    overdue = ('<span class="badge badge-sent">Sent</span> '
               '<span class="badge badge-overdue">Overdue</span>')
    assert overdue in rows[str(late.pk)]
    assert "badge-overdue" not in rows[str(on_time.pk)]
    assert '<span class="badge badge-paid">Paid</span></td>' in rows[str(paid.pk)]
    assert "badge-overdue" not in rows[str(paid.pk)]


def test_the_dashboard_leaves_the_dates_out_and_shows_the_latest_six(client, member):
    buyer = ClientFactory(company=member.company, name="Zeta")
    drafts = InvoiceFactory.create_batch(7, client=buyer)
    rows = rows_of(client, "/")
    assert len(rows) == 6 and f"Draft #{drafts[0].pk}<" not in "".join(rows)  # the oldest
    assert rows[0] == (
        f'<tr><td><a href="/invoices/{drafts[-1].pk}/" class="muted">Draft #{drafts[-1].pk}'
        '</a></td><td>Zeta</td><td><span class="badge badge-draft">Draft</span></td>'
        '<td class="num">240.00\xa0EUR</td></tr>')


def test_a_table_reads_its_documents_and_their_clients_in_one_query():
    buyer = ClientFactory(name="Omega")
    InvoiceFactory.create_batch(3, client=buyer)
    with CaptureQueriesContext(connection) as queries:
        names = [document.client.name for document in
                 table_documents(Invoice.objects.filter(company=buyer.company))]
    assert names == ["Omega"] * 3 and len(queries.captured_queries) == 1


@pytest.mark.parametrize("language, amount, expected", [
    ("en", Decimal("1234567.89"), "1,234,567.89"),
    ("en", Decimal("-1234.5"), "-1,234.50"),
    ("en", 0, "0.00"),
    ("fr", Decimal("-1234567.89"), "-1\xa0234\xa0567,89"),
    ("de", Decimal("999.99"), "999,99"),
    ("de", Decimal("1000"), "1.000,00"),
])
def test_money_groups_thousands_in_the_active_language(language, amount, expected):
    with translation.override(language):
        assert money(amount) == expected
        assert money(amount, "EUR") == expected + "\xa0EUR"


def test_money_of_nothing_is_empty():
    assert money(None) == money("") == ""

