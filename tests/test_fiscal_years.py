"""
Fiscal years, as a specification: a company's year may start in any month; yearly restarts
happen on its first day, ``{FY}`` prints it, and the audit's periods follow it.
"""

import json
from datetime import date
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from billing.models import Membership
from billing.services import send_document
from counters import patterns
from counters.audit import AuditScope, run_audit
from counters.models import IssuedNumber, NumberingSettings, NumberJump
from counters.services import preview_number

from .factories import (
    ClientFactory,
    CreditNoteFactory,
    InvoiceFactory,
    MembershipFactory,
    configure_numbering,
)

pytestmark = pytest.mark.django_db

APRIL = {"fiscal_year_start": 4, "invoice_pattern": "INV-{FY}-{counter}",
         "credit_note_pattern": "CN-{FY}-{counter}"}


def send_on(issue_on, day, client, factory=InvoiceFactory):
    issue_on(day)
    return send_document(factory(client=client))


# --- The tokens and periods ------------------------------------------------------------------


@pytest.mark.parametrize(("day", "start", "label", "period"), [
    (date(2026, 3, 31), 4, "2025-26", "2025/04"),
    (date(2026, 4, 1), 4, "2026-27", "2026/04"),
    (date(2026, 6, 30), 7, "2025-26", "2025/07"),
    (date(2026, 7, 1), 7, "2026-27", "2026/07"),
    (date(2099, 12, 31), 4, "2099-00", "2099/04"),
    (date(2026, 3, 31), 1, "2026", "2026"),  # calendar years: {FY} is the year
])
def test_fiscal_year_token_and_period(day, start, label, period):
    assert patterns.format_number("{FY}/{counter}", day, 7, 3, start) == f"{label}/007"
    assert patterns.period_key(patterns.YEARLY, day, start) == period
    assert patterns.period_contains(period, day)


def test_period_keys_overlap_by_their_days():
    assert patterns.period_span("2026/04") == (date(2026, 4, 1), date(2027, 4, 1))
    assert patterns.period_span("2026-12") == (date(2026, 12, 1), date(2027, 1, 1))
    assert patterns.periods_overlap("2026/04", "2027")  # January-March 2027
    assert patterns.periods_overlap("2026/04", "2027-03")
    assert not patterns.periods_overlap("2026/04", "2026-03")
    assert not patterns.periods_overlap("2025/04", "2026/04")
    assert patterns.periods_overlap("", "2026/04")


# --- Restarts ---------------------------------------------------------------------------------


def test_yearly_numbers_restart_on_the_fiscal_years_first_day(issue_on):
    client = ClientFactory()
    configure_numbering(client.company, **APRIL)
    march = [send_on(issue_on, date(2026, 3, 31), client).number for _ in range(2)]
    april = send_on(issue_on, date(2026, 4, 1), client)
    january = send_on(issue_on, date(2027, 1, 15), client)
    assert march == ["INV-2025-26-0001", "INV-2025-26-0002"]
    assert (april.number, january.number) == ("INV-2026-27-0001", "INV-2026-27-0002")
    assert list(IssuedNumber.objects.order_by("id").values_list("period", flat=True)) == [
        "2025/04", "2025/04", "2026/04", "2026/04"]


def test_calendar_years_are_unchanged(issue_on):
    client = ClientFactory()
    configure_numbering(client.company, invoice_pattern="F{FY}-{counter}")
    assert send_on(issue_on, date(2026, 3, 31), client).number == "F2026-0001"
    assert IssuedNumber.objects.get().period == "2026"


def test_preview_follows_the_fiscal_year(issue_on):
    client = ClientFactory()
    configure_numbering(client.company, **APRIL)
    send_on(issue_on, date(2026, 3, 2), client)
    issue_on(date(2026, 3, 3))
    assert preview_number(InvoiceFactory(client=client)) == "INV-2025-26-0002"
    issue_on(date(2026, 4, 3))
    assert preview_number(InvoiceFactory(client=client)) == "INV-2026-27-0001"


# --- Validation -------------------------------------------------------------------------------


def numbering(**fields):
    settings_ = NumberingSettings.for_company(ClientFactory().company_id)
    for name, value in fields.items():
        setattr(settings_, name, value)
    return settings_


def errors_of(settings_):
    with pytest.raises(ValidationError) as caught:
        settings_.full_clean()
    return caught.value.message_dict


def test_a_fiscal_year_needs_more_than_the_calendar_year():
    """
    With years from April, INV-2027-0005 could be January 2027 (fiscal 2026-27) or May 2027
    (fiscal 2027-28): the calendar year alone would repeat numbers.
    """
    refused = numbering(fiscal_year_start=4, invoice_pattern="INV-{YYYY}-{counter}")
    assert "needs {FY} (or a year with {MM})" in errors_of(refused)["invoice_pattern"][0]
    for accepted in ("INV-{FY}-{counter}", "INV-{YYYY}{MM}-{counter}"):
        numbering(fiscal_year_start=4, invoice_pattern=accepted,
                  credit_note_pattern="CN-{FY}-{counter}").full_clean()


def test_monthly_restarts_need_the_month_and_a_year():
    refused = numbering(reset_period="monthly", invoice_pattern="INV-{FY}-{counter}")
    assert "needs {MM}" in errors_of(refused)["invoice_pattern"][0]
    numbering(reset_period="monthly", fiscal_year_start=7, invoice_pattern="I{FY}{MM}-{counter}",
              credit_note_pattern="C{FY}{MM}-{counter}").full_clean()


def test_patterns_that_could_collide_under_the_fiscal_year_are_refused():
    """{FY} prints 2026-27 from April: A{FY}{counter} and A{YYYY}-{counter} can meet."""
    clash = dict(invoice_pattern="A{FY}{counter}", credit_note_pattern="A{YYYY}{MM}-{counter}",
                 reset_period="never")
    assert "same numbers" in errors_of(numbering(fiscal_year_start=4, **clash))[
        "credit_note_pattern"][0]
    numbering(fiscal_year_start=1, **clash).full_clean()


def test_the_database_refuses_a_month_that_does_not_exist():
    from django.db import IntegrityError

    settings_ = numbering()
    with pytest.raises(IntegrityError):
        NumberingSettings.objects.filter(pk=settings_.pk).update(fiscal_year_start=13)


# --- Changing the first month ---------------------------------------------------------------


def test_moving_to_fiscal_years_midyear_continues_after_the_calendar_year(issue_on):
    client = ClientFactory()
    for _ in range(3):
        send_on(issue_on, date(2026, 12, 1), client)
    configure_numbering(client.company, **APRIL)

    assert send_on(issue_on, date(2026, 12, 2), client).number == "INV-2026-27-0004"
    jump = NumberJump.objects.get(series="invoice")
    assert (jump.period, jump.first_value, jump.last_value) == ("2026/04", 1, 3)
    assert "fiscal year from: April" in jump.reason
    # The next fiscal year starts afresh.
    assert send_on(issue_on, date(2027, 4, 1), client).number == "INV-2027-28-0001"
    assert_clean()


def test_moving_the_first_month_never_reissues_a_fiscal_years_number(issue_on):
    """
    From April to July in May 2026: the year from July 2026 prints 2026-27, like the year
    from April 2026 whose first numbers were issued in April and May. It starts after them.
    """
    client = ClientFactory()
    configure_numbering(client.company, **APRIL)
    send_on(issue_on, date(2026, 3, 20), client)                     # INV-2025-26-0001
    issued = [send_on(issue_on, date(2026, 4, 20), client).number for _ in range(2)]
    assert issued == ["INV-2026-27-0001", "INV-2026-27-0002"]
    issue_on(date(2026, 5, 10))
    configure_numbering(client.company, fiscal_year_start=7)

    assert send_on(issue_on, date(2026, 5, 11), client).number == "INV-2025-26-0003"
    assert send_on(issue_on, date(2026, 7, 1), client).number == "INV-2026-27-0003"
    numbers = list(IssuedNumber.objects.values_list("number", flat=True))
    assert len(numbers) == len(set(numbers)) == 5
    assert_clean()


def test_the_first_month_moves_nothing_when_numbers_restart_monthly(issue_on):
    client = ClientFactory()
    configure_numbering(client.company, reset_period="monthly",
                        invoice_pattern="I{YYYY}{MM}-{counter}",
                        credit_note_pattern="C{YYYY}{MM}-{counter}")
    send_on(issue_on, date(2026, 5, 1), client)
    send_on(issue_on, date(2026, 5, 1), client, CreditNoteFactory)
    send_on(issue_on, date(2026, 5, 1), client)
    configure_numbering(client.company, fiscal_year_start=4)
    assert not NumberJump.objects.exists()
    assert send_on(issue_on, date(2026, 5, 2), client, CreditNoteFactory).number == \
        "C202605-0002"


# --- The audit --------------------------------------------------------------------------------


def assert_clean():
    assert list(run_audit().findings) == []


def audit_json(*args):
    """``audit_gaps --json``'s report (its exit status is 1 when there are findings)."""
    out = StringIO()
    try:
        call_command("audit_gaps", "--json", *args, stdout=out)
    except CommandError as error:
        assert error.returncode == 1
    return json.loads(out.getvalue())


def test_the_audits_periods_are_fiscal_years(issue_on):
    client = ClientFactory()
    configure_numbering(client.company, **APRIL)
    for day in (date(2026, 3, 31), date(2026, 4, 1), date(2027, 3, 31)):
        send_on(issue_on, day, client)
    summaries = [(s.series, s.period, s.first_value, s.last_value)
                 for s in run_audit(AuditScope()).series]
    assert summaries == [("invoice", "2025/04", 1, 1), ("invoice", "2026/04", 1, 2)]
    assert_clean()
    report = audit_json("--period", "2026/04")
    assert [s["period"] for s in report["series"]] == ["2026/04"] and report["clean"]


def test_a_gap_is_found_in_its_fiscal_year(issue_on):
    from django.db import connection

    from counters.dbguards import guards_lifted

    client = ClientFactory()
    configure_numbering(client.company, **APRIL)
    for day in (date(2027, 2, 1), date(2027, 2, 2), date(2027, 2, 3)):
        send_on(issue_on, day, client)
    with guards_lifted(connection), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {IssuedNumber._meta.db_table} WHERE number = %s",
                       ["INV-2026-27-0002"])
    gaps = [f for f in audit_json("--period", "2026/04")["findings"] if f["kind"] == "gap"]
    assert [(f["period"], f["values"]) for f in gaps] == [("2026/04", [2])]
    assert not [f for f in audit_json("--period", "2027")["findings"] if f["kind"] == "gap"]


@pytest.mark.parametrize("period", ["2026/13", "2026/4", "26/04"])
def test_audit_refuses_a_malformed_fiscal_period(period):
    with pytest.raises(CommandError) as caught:
        call_command("audit_gaps", "--period", period, stdout=StringIO())
    assert caught.value.returncode == 2
    assert "YYYY/MM" in str(caught.value)


# --- The page and the admin -------------------------------------------------------------------


@pytest.fixture
def owner(client):
    member = MembershipFactory(role=Membership.Role.OWNER)
    client.force_login(member.user)
    return member


FORM = {"invoice_pattern": "INV-{YYYY}-{counter}", "credit_note_pattern": "CN-{YYYY}-{counter}",
        "padding": "4", "reset_period": "yearly", "fiscal_year_start": "4"}


def test_the_numbering_page_sets_the_fiscal_year(client, owner, issue_on):
    issue_on(date(2026, 12, 3))
    url = reverse("numbering_settings")
    page = client.get(url).content.decode()
    assert 'name="fiscal_year_start"' in page and "{FY}" in page

    refused = client.post(url, FORM)
    assert refused.status_code == 200
    assert "needs {FY} (or a year with {MM})" in refused.content.decode()
    preview = client.post(reverse("numbering_preview"),
                          {**FORM, "invoice_pattern": "INV-{FY}-{counter}",
                           "credit_note_pattern": "CN-{FY}-{counter}"}).content.decode()
    assert 'data-example="invoice">INV-2026-27-0001' in preview

    saved = client.post(url, {**FORM, "invoice_pattern": "INV-{FY}-{counter}",
                              "credit_note_pattern": "CN-{FY}-{counter}"})
    assert saved.status_code == 302
    assert NumberingSettings.objects.get(company=owner.company).fiscal_year_start == 4
    history = client.get(url).content.decode().split("data-changes>")[1].split("</ul>")[0]
    assert "<li>Fiscal year starts in: January → April</li>" in history


@pytest.mark.parametrize("month", ["0", "13", "April", ""])
def test_the_numbering_page_refuses_a_month_that_does_not_exist(client, owner, month):
    response = client.post(reverse("numbering_settings"), {**FORM, "fiscal_year_start": month})
    assert response.status_code == 200
    body = response.content.decode()
    assert "Select a valid choice" in body or "This field is required" in body
    assert NumberingSettings.for_company(owner.company_id).fiscal_year_start == 1


def test_the_admin_edits_the_fiscal_year(admin_client):
    settings_ = NumberingSettings.for_company(InvoiceFactory().company_id)
    url = reverse("admin:counters_numberingsettings_change", args=[settings_.pk])
    assert 'name="fiscal_year_start"' in admin_client.get(url).content.decode()
    form = {"company": settings_.company_id, "name": settings_.name, "padding": 4,
            "reset_period": "yearly", "invoice_pattern": "INV-{FY}-{counter}",
            "credit_note_pattern": "CN-{FY}-{counter}",
            "fiscal_year_start": 7}
    assert admin_client.post(url, form).status_code == 302
    settings_.refresh_from_db()
    assert settings_.fiscal_year_start == 7
