"""Document table rows (billing.tables): read with one query, shown as the pages showed them."""

from datetime import date
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import formats, translation
from hypothesis import given
from hypothesis import strategies as st

from billing.models import CreditNote, Invoice
from billing.services import send_document
from billing.tables import document_rows
from billing.templatetags.folio import money, state_badge

from .factories import (
    ClientFactory,
    CompanyFactory,
    CreditNoteFactory,
    InvoiceFactory,
    MembershipFactory,
)

pytestmark = pytest.mark.django_db


def test_each_row_shows_what_the_document_says_in_the_active_locale(issue_on):
    company = CompanyFactory()
    client = ClientFactory(company=company, name="<i>Epsilon</i>")
    issue_on(date(2026, 1, 5))
    overdue = send_document(InvoiceFactory(client=client, lines=[
        {"description": "x", "quantity": 1, "unit_price": Decimal("1234.50"), "tax_rate": 0}]))
    draft = Invoice.objects.get(pk=InvoiceFactory(client=client).pk)  # as stored
    today = date(2026, 3, 1)
    with translation.override("de"):
        with CaptureQueriesContext(connection) as queries:
            rows = document_rows(Invoice.objects.filter(company=company), today)
        by_pk = {row.pk: row for row in rows}
        # What the pages showed per cell before (reverse, the money filter, the badge tag):
        expected = {doc.pk: (reverse("invoice_detail", args=[doc.pk]),
                             money(doc.total, doc.currency), state_badge(doc, today))
                    for doc in (overdue, draft)}
        draft_label = translation.gettext("Draft")
        issued = formats.date_format(overdue.issue_date, "SHORT_DATE_FORMAT")
    assert len(queries.captured_queries) == 1
    assert [row.pk for row in rows] == [draft.pk, overdue.pk]  # newest first, as listed
    sent, unsent = by_pk[overdue.pk], by_pk[draft.pk]
    for row in rows:
        url, total, badge = expected[row.pk]
        assert (row.url, row.total, row.badge) == (url, total, badge)
    assert sent.label == overdue.number and sent.total == "1.234,50\xa0EUR"
    assert sent.issue_date == issued and sent.issue_date != "—"
    assert "badge-overdue" in sent.badge and "badge-overdue" not in unsent.badge
    assert unsent.label == f"{draft_label} #{draft.pk}" and unsent.issue_date == "—"
    # Not escaped here: the template escapes it like any value (test_views checks the page).
    assert sent.client_name == "<i>Epsilon</i>"


def test_credit_note_rows_link_to_credit_note_pages():
    note = CreditNoteFactory()
    [row] = document_rows(CreditNote.objects.filter(pk=note.pk), date(2026, 1, 1))
    assert row.url == reverse("creditnote_detail", args=[note.pk])


def test_a_row_writes_its_cells_escaped_and_a_compact_row_leaves_the_dates_out():
    client = ClientFactory(name='<i>"Epsilon"</i> & Co')
    draft = InvoiceFactory(client=client, due_date=date(2026, 2, 1))
    [row] = document_rows(Invoice.objects.filter(pk=draft.pk), date(2026, 1, 1))
    cells = [f'<td><a href="{row.url}" class="muted">Draft #{draft.pk}</a></td>',
             "<td>&lt;i&gt;&quot;Epsilon&quot;&lt;/i&gt; &amp; Co</td>",
             '<td class="hide-small">—</td>',
             f'<td class="hide-small">{row.due_date}</td>',
             f"<td>{row.badge}</td>",
             f'<td class="num">{row.total}</td>']
    assert row.html == "<tr>" + "".join(cells) + "</tr>"
    assert row.compact_html == "<tr>" + "".join(cells[:2] + cells[4:]) + "</tr>"


# Folio's languages group by threes (the fast path); Arabic does not group, Chinese groups
# by fours: those take Django's own number_format.
@given(amount=st.decimals(min_value=-10**15, max_value=10**15, places=4),
       language=st.sampled_from([code for code, _ in settings.LANGUAGES] + ["ar", "zh-hans"]))
def test_money_writes_amounts_as_djangos_number_format_does(amount, language):
    with translation.override(language):
        expected = formats.number_format(amount, 2, use_l10n=True, force_grouping=True)
        assert money(amount) == expected
        assert money(amount, "EUR") == f"{expected}\xa0EUR"


def test_money_groups_truncates_and_never_writes_minus_zero():
    with translation.override("fr"):
        assert money(Decimal("-1234567.899"), "EUR") == "-1\xa0234\xa0567,89\xa0EUR"
        assert money(Decimal("-0.004")) == "0,00"
    assert money(None) == money("") == ""


def test_lists_write_full_rows_and_the_dashboard_compact_ones(client):
    member = MembershipFactory()
    client.force_login(member.user)
    invoices = [send_document(InvoiceFactory(client=ClientFactory(company=member.company)))
                for _ in range(2)]
    rows = document_rows(Invoice.objects.filter(company=member.company), date.today())
    assert [row.pk for row in rows] == [invoices[1].pk, invoices[0].pk]
    listed = client.get(reverse("invoice_list")).content.decode()
    dashboard = client.get(reverse("home")).content.decode()
    assert "<tbody>\n  " + "\n".join(row.html for row in rows) + "\n  </tbody>" in listed
    assert "\n".join(row.compact_html for row in rows) in dashboard
    assert rows[0].html not in dashboard
