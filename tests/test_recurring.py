"""
Recurring invoices: a schedule makes one invoice per period (monthly, quarterly, yearly, on a
day of the month, from its start to its end), catches up on the periods it missed, and never
makes two for one period, however often it runs and however many workers race (the
database's unique constraint). In the "create and send" mode each is sent through
send_document; a send that fails leaves the draft and says why on the schedule.
"""

import threading
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connections, transaction

from billing import recurring, scheduling
from billing.models import (
    LAST_DAY,
    DocumentState,
    EmailDelivery,
    Frequency,
    Invoice,
    Membership,
    RecurringInvoice,
    RecurringMode,
)
from billing.recurring import period_dates

from .factories import ClientFactory, MembershipFactory

D = Decimal


def schedule_of(client=None, *, lines=None, owner=None, **fields):
    """A saved schedule with template lines (one line of 2 × 100.00 at 20 % by default)."""
    client = client or ClientFactory()
    fields = {"name": "Hosting", "start_date": date(2026, 1, 1), **fields}
    schedule = RecurringInvoice.objects.create(company=client.company, client=client,
                                               owner=owner, **fields)
    for position, spec in enumerate(lines or [
            {"description": "Hosting", "quantity": D("2"), "unit_price": D("100.00"),
             "tax_rate": D("20")}]):
        schedule.lines.create(position=position, **spec)
    return schedule


def unsaved(**fields):
    return RecurringInvoice(**{"start_date": date(2026, 1, 1), "day_of_month": 1,
                               "frequency": Frequency.MONTHLY, **fields})


# --- Periods --------------------------------------------------------------------------------


def test_monthly_periods_fall_on_the_day_from_the_first_one_on_or_after_the_start():
    schedule = unsaved(start_date=date(2026, 1, 10), day_of_month=5)
    assert period_dates(schedule, date(2026, 4, 30)) == [
        date(2026, 2, 5), date(2026, 3, 5), date(2026, 4, 5)]


def test_a_start_on_the_day_itself_is_the_first_period():
    schedule = unsaved(start_date=date(2026, 3, 15), day_of_month=15)
    assert period_dates(schedule, date(2026, 3, 15)) == [date(2026, 3, 15)]
    assert period_dates(schedule, date(2026, 3, 14)) == []


def test_the_last_day_of_the_month_follows_each_months_length():
    schedule = unsaved(start_date=date(2028, 1, 1), day_of_month=LAST_DAY)
    assert period_dates(schedule, date(2028, 5, 31)) == [
        date(2028, 1, 31), date(2028, 2, 29), date(2028, 3, 31), date(2028, 4, 30),
        date(2028, 5, 31)]


def test_quarterly_and_yearly_periods():
    quarterly = unsaved(start_date=date(2026, 11, 20), day_of_month=1,
                        frequency=Frequency.QUARTERLY)
    assert period_dates(quarterly, date(2027, 12, 31)) == [
        date(2026, 12, 1), date(2027, 3, 1), date(2027, 6, 1), date(2027, 9, 1),
        date(2027, 12, 1)]
    yearly = unsaved(start_date=date(2026, 2, 28), day_of_month=LAST_DAY,
                     frequency=Frequency.YEARLY)
    assert period_dates(yearly, date(2029, 3, 1)) == [
        date(2026, 2, 28), date(2027, 2, 28), date(2028, 2, 29), date(2029, 2, 28)]


def test_periods_stop_at_the_end_date_and_skip_those_already_made():
    schedule = unsaved(start_date=date(2026, 1, 1), end_date=date(2026, 3, 31))
    assert period_dates(schedule, date(2027, 1, 1)) == [
        date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    assert period_dates(schedule, date(2027, 1, 1), after=date(2026, 2, 1)) == [
        date(2026, 3, 1)]
    assert schedule.next_period(after=date(2026, 3, 1)) is None
    assert schedule.next_period() == date(2026, 1, 1)


# --- Running --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_run_makes_one_draft_per_missed_period_with_the_templates_lines():
    schedule = schedule_of(notes="Thank you", currency="EUR", lines=[
        {"description": "Hosting", "quantity": D("1"), "unit_price": D("49.90"),
         "tax_rate": D("20")},
        {"description": "Support", "quantity": D("3"), "unit_price": D("15.00"),
         "tax_rate": D("20")}])
    result = recurring.run_schedule(schedule, date(2026, 3, 15))
    invoices = list(schedule.invoices.order_by("recurring_period"))
    assert [i.recurring_period for i in invoices] == [
        date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]  # caught up, each its own
    assert result.created == sorted(result.created, key=lambda i: i.recurring_period)
    for invoice in invoices:
        assert invoice.state == DocumentState.DRAFT and invoice.number == ""
        assert invoice.client == schedule.client and invoice.notes == "Thank you"
        assert [(line.description, line.quantity, line.unit_price)
                for line in invoice.lines.all()] == [
            ("Hosting", D("1.000"), D("49.90")), ("Support", D("3.000"), D("15.00"))]
        assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
            D("94.90"), D("18.98"), D("113.88"))
    schedule.refresh_from_db()
    assert schedule.last_period == date(2026, 3, 1)
    assert schedule.next_period() == date(2026, 4, 1)


@pytest.mark.django_db
def test_running_twice_makes_nothing_new():
    schedule = schedule_of()
    recurring.run_schedule(schedule, date(2026, 2, 10))
    again = recurring.run_schedule(schedule, date(2026, 2, 10))
    assert again.created == []
    assert schedule.invoices.count() == 2


@pytest.mark.django_db
def test_the_database_refuses_a_second_invoice_for_a_period():
    schedule = schedule_of()
    [invoice] = recurring.run_schedule(schedule, date(2026, 1, 1)).created
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.create(company=invoice.company, client=invoice.client,
                               recurring=schedule, recurring_period=date(2026, 1, 1))
    # A run that did not know the period was made (a racing worker) makes nothing.
    assert recurring.make_invoice(schedule, date(2026, 1, 1)) is None
    assert schedule.invoices.count() == 1


@pytest.mark.django_db
def test_a_deleted_draft_is_not_made_again():
    schedule = schedule_of()
    [invoice] = recurring.run_schedule(schedule, date(2026, 1, 20)).created
    invoice.delete()
    assert recurring.run_schedule(schedule, date(2026, 1, 20)).created == []


@pytest.mark.django_db
def test_a_paused_schedule_makes_nothing_and_an_ended_one_stops():
    paused = schedule_of(active=False)
    ended = schedule_of(end_date=date(2026, 2, 15))
    outcome = scheduling.run(date(2026, 6, 1))
    assert paused.invoices.count() == 0
    assert sorted(i.recurring_period for i in ended.invoices.all()) == [
        date(2026, 1, 1), date(2026, 2, 1)]
    assert len(outcome.invoices) == 2
    assert scheduling.run(date(2026, 7, 1)).invoices == []


@pytest.mark.django_db
def test_the_command_runs_as_of_a_date(capsys):
    schedule = schedule_of()
    call_command("run_schedules", "--date", "2026-02-01")
    assert "2 recurring invoice(s) made" in capsys.readouterr().out
    assert schedule.invoices.count() == 2


def test_the_command_refuses_a_bad_date():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("run_schedules", "--date", "31/12/2026")


# --- Create and send ------------------------------------------------------------------------


@pytest.fixture
def sender():
    return MembershipFactory(role=Membership.Role.ACCOUNTANT)


@pytest.mark.django_db
def test_create_and_send_issues_numbers_through_send_document_and_emails(
        sender, issue_on, run_jobs, mailoutbox):
    issue_on(date(2026, 3, 2))
    client = ClientFactory(company=sender.company)
    schedule = schedule_of(client, mode=RecurringMode.SEND, email=True, owner=sender.user)
    result = recurring.run_schedule(schedule, date(2026, 3, 2))
    assert len(result.sent) == 3 and result.failed == []
    invoices = list(schedule.invoices.order_by("recurring_period"))
    assert [i.state for i in invoices] == [DocumentState.SENT] * 3
    assert [i.number for i in invoices] == [f"INV-2026-000{n}" for n in (1, 2, 3)]
    assert {i.issue_date for i in invoices} == {date(2026, 3, 2)}  # issued when sent
    # Each e-mail is a durable job, written with its send and delivered by a worker.
    assert EmailDelivery.objects.filter(status="pending").count() == 3
    run_jobs()
    assert len(mailoutbox) == 3 and mailoutbox[0].to == [client.email]


@pytest.mark.django_db
def test_a_send_that_fails_keeps_the_draft_and_says_why(sender, issue_on):
    issue_on(date(2026, 1, 5))
    client = ClientFactory(company=sender.company, vat_id="", endpoint_scheme="",
                           endpoint_id="", street="", city="", postal_code="")
    schedule = schedule_of(client, mode=RecurringMode.SEND, owner=sender.user)
    result = recurring.run_schedule(schedule, date(2026, 1, 5))
    [(invoice, reason)] = result.failed
    invoice.refresh_from_db()
    assert invoice.state == DocumentState.DRAFT
    schedule.refresh_from_db()
    assert schedule.last_error == reason and str(invoice) in reason
    assert schedule.last_error_at is not None


@pytest.mark.django_db
def test_an_issued_invoice_keeps_its_schedule_and_period_in_the_database(sender, issue_on):
    from django.db import DatabaseError

    issue_on(date(2026, 1, 5))
    schedule = schedule_of(ClientFactory(company=sender.company), mode=RecurringMode.SEND,
                           owner=sender.user)
    [invoice] = recurring.run_schedule(schedule, date(2026, 1, 5)).sent
    for change in ({"recurring_period": date(2026, 2, 1)}, {"recurring": None,
                                                            "recurring_period": None}):
        with pytest.raises(DatabaseError), transaction.atomic():
            Invoice.objects.filter(pk=invoice.pk).update(**change)  # past the model: a trigger


@pytest.mark.django_db
def test_an_owner_who_may_no_longer_send_keeps_the_drafts(sender, issue_on):
    issue_on(date(2026, 1, 5))
    client = ClientFactory(company=sender.company)
    schedule = schedule_of(client, mode=RecurringMode.SEND, owner=sender.user)
    Membership.objects.filter(pk=sender.pk).update(role=Membership.Role.VIEWER)
    [(invoice, reason)] = recurring.run_schedule(schedule, date(2026, 1, 5)).failed
    assert invoice.state == DocumentState.DRAFT
    assert "may no longer send" in reason


# --- Two workers at once (PostgreSQL) -------------------------------------------------------


def in_threads(count, work):
    """Run ``work()`` in ``count`` threads (a connection each), released together."""
    barrier, errors, results = threading.Barrier(count), [], []

    def run():
        try:
            barrier.wait(timeout=30)
            results.append(work())
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    assert not errors, errors
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_workers_on_one_period_the_constraint_lets_one_through():
    schedule = schedule_of()
    made = in_threads(4, lambda: recurring.make_invoice(schedule, date(2026, 1, 1)))
    assert len([invoice for invoice in made if invoice is not None]) == 1
    assert schedule.invoices.count() == 1
    assert schedule.invoices.get().lines.count() == 1  # the winner's, whole


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_running_one_schedule_at_once_make_one_invoice_per_period():
    schedule = schedule_of()
    results = in_threads(2, lambda: recurring.run_schedule(schedule, date(2026, 6, 30)))
    periods = list(schedule.invoices.values_list("recurring_period", flat=True))
    assert sorted(periods) == [date(2026, m, 1) for m in range(1, 7)]
    assert sum(len(r.created) for r in results) == 6  # together, each period once


# --- Pages ----------------------------------------------------------------------------------


def form_data(client, **fields):
    from .test_views import lines_data

    return {"name": "Maintenance", "client": client.pk, "frequency": "monthly",
            "day_of_month": "31", "start_date": "2026-01-15", "end_date": "", "mode": "draft",
            "currency": "EUR", "buyer_reference": "", "notes": "Monthly",
            **lines_data(("Maintenance", "1", "180.00", "20")), **fields}


@pytest.fixture
def owner():
    return MembershipFactory(role=Membership.Role.OWNER)


@pytest.fixture
def signed_in(client, owner):
    client.force_login(owner.user)
    return client


@pytest.mark.django_db
def test_a_schedule_is_created_with_its_lines_run_now_and_listed(signed_in, owner, issue_on):
    from django.urls import reverse

    issue_on(date(2026, 3, 5))
    buyer = ClientFactory(company=owner.company)
    response = signed_in.post(reverse("recurring_invoice_create"), form_data(buyer))
    schedule = RecurringInvoice.objects.get(company=owner.company)
    assert response.status_code == 302 and response.url == reverse("recurring_invoice_detail",
                                                                    args=[schedule.pk])
    assert schedule.owner == owner.user and schedule.day_of_month == LAST_DAY
    assert [line.unit_price for line in schedule.lines.all()] == [D("180.00")]
    page = signed_in.get(response.url)
    assert page.context["upcoming"] == [date(2026, 1, 31), date(2026, 2, 28),
                                        date(2026, 3, 31)]  # the next periods, shown
    signed_in.post(reverse("recurring_invoice_run", args=[schedule.pk]))
    assert sorted(schedule.invoices.values_list("recurring_period", flat=True)) == [
        date(2026, 1, 31), date(2026, 2, 28)]
    page = signed_in.get(reverse("recurring_invoice_detail", args=[schedule.pk])).content.decode()
    for invoice in schedule.invoices.all():  # its invoices, listed
        assert reverse("invoice_detail", args=[invoice.pk]) in page
    invoice = schedule.invoices.first()
    page = signed_in.get(reverse("invoice_detail", args=[invoice.pk])).content.decode()
    assert reverse("recurring_invoice_detail", args=[schedule.pk]) in page  # the invoice's schedule
    listing = signed_in.get(reverse("recurring_invoice_list")).content.decode()
    assert "Maintenance" in listing


@pytest.mark.django_db
def test_bad_input_gets_messages_not_errors(signed_in, owner):
    from django.urls import reverse

    buyer = ClientFactory(company=owner.company)
    response = signed_in.post(reverse("recurring_invoice_create"), form_data(
        buyer, day_of_month="30", start_date="2026-05-01", end_date="2026-04-01",
        currency="EURO", **{"lines-TOTAL_FORMS": 0}))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert set(errors) == {"day_of_month", "end_date", "currency"}
    assert response.context["formset"].non_form_errors()
    assert not RecurringInvoice.objects.exists()
    other = ClientFactory()  # another company's client
    response = signed_in.post(reverse("recurring_invoice_create"), form_data(other))
    assert "client" in response.context["form"].errors


@pytest.mark.django_db
def test_only_roles_that_may_send_choose_create_and_send(client):
    from django.urls import reverse

    from billing import permissions

    member = MembershipFactory(role=Membership.Role.ACCOUNTANT)
    buyer = ClientFactory(company=member.company)
    client.force_login(member.user)
    rules = dict(permissions.RULES)
    try:  # a role that edits drafts but may not send
        permissions.RULES["accountant"] = rules["accountant"] - {permissions.Action.SEND}
        response = client.post(reverse("recurring_invoice_create"), form_data(buyer, mode="send"))
    finally:
        permissions.RULES.update(rules)
    assert "mode" in response.context["form"].errors
    viewer = MembershipFactory(role=Membership.Role.VIEWER, company=member.company)
    client.force_login(viewer.user)
    assert client.post(reverse("recurring_invoice_create"), form_data(buyer)).status_code == 403
    assert client.get(reverse("recurring_invoice_list")).status_code == 200


@pytest.mark.django_db
def test_pause_resume_and_delete(signed_in, owner):
    from django.urls import reverse

    schedule = schedule_of(ClientFactory(company=owner.company))
    signed_in.post(reverse("recurring_invoice_pause", args=[schedule.pk]), {"active": "0"})
    schedule.refresh_from_db()
    assert not schedule.active
    signed_in.post(reverse("recurring_invoice_run", args=[schedule.pk]))
    assert schedule.invoices.count() == 0  # paused: nothing made
    signed_in.post(reverse("recurring_invoice_pause", args=[schedule.pk]), {"active": "1"})
    schedule.refresh_from_db()
    assert schedule.active
    signed_in.post(reverse("recurring_invoice_run", args=[schedule.pk]))
    response = signed_in.post(reverse("recurring_invoice_delete", args=[schedule.pk]))
    assert RecurringInvoice.objects.filter(pk=schedule.pk).exists()  # it has invoices
    unused = schedule_of(ClientFactory(company=owner.company), start_date=date(2099, 1, 1))
    signed_in.post(reverse("recurring_invoice_delete", args=[unused.pk]))
    assert not RecurringInvoice.objects.filter(pk=unused.pk).exists()
    assert response.status_code == 302


@pytest.mark.django_db
def test_another_companys_schedule_is_not_found(signed_in):
    from django.urls import reverse

    theirs = schedule_of()
    for name in ("recurring_invoice_detail", "recurring_invoice_edit"):
        assert signed_in.get(reverse(name, args=[theirs.pk])).status_code == 404
    assert signed_in.post(reverse("recurring_invoice_run", args=[theirs.pk])).status_code == 404
    assert theirs.invoices.count() == 0


@pytest.mark.django_db
def test_the_live_totals_follow_the_template_lines(signed_in, owner):
    from django.urls import reverse

    from .test_views import lines_data

    response = signed_in.post(reverse("recurring_invoice_totals"), {
        "currency": "EUR", **lines_data(("A", "2", "10.00", "20"))})
    assert "24.00" in response.content.decode()


# --- The worker's tick ----------------------------------------------------------------------


def test_a_worker_writes_and_runs_the_periodic_job(tmp_path):
    """A real `manage.py worker --batch` on a database of its own: the tick's job makes the
    schedule's invoices; a second worker makes nothing more."""
    import os

    from .test_jobs import Database, run

    database = Database("sqlite", tmp_path)
    env = {**os.environ, "DATABASE_URL": database.url}  # the tick comes as a worker starts
    run(env, "migrate", "--noinput", "-v0")
    run(env, "shell", "-c",
        "from datetime import date; from tests.test_recurring import schedule_of; "
        "schedule_of(start_date=date(2026, 1, 1), end_date=date(2026, 3, 31))")
    for worker_id in ("first", "second"):
        run(env, "worker", "--batch", "--worker-id", worker_id)
    periods = database.rows("SELECT recurring_period FROM billing_invoice "
                            "ORDER BY recurring_period")
    assert [str(period) for (period,) in periods] == ["2026-01-01", "2026-02-01",
                                                      "2026-03-01"]
    jobs = database.rows("SELECT status, return_value FROM django_tasks_database_dbtaskresult "
                         "WHERE task_path LIKE '%run_schedules'")
    assert [status for status, _value in jobs] == ["SUCCESSFUL", "SUCCESSFUL"]
    assert '"3 invoice(s)' in jobs[0][1] and '"0 invoice(s)' in jobs[1][1]


@pytest.mark.django_db
@pytest.mark.parametrize("field, value", [("start_date", "9999-12-15"),
                                          ("end_date", "9999-12-31"),
                                          ("start_date", "0001-01-01")])
def test_a_schedule_date_outside_the_calendar_is_refused(signed_in, owner, field, value):
    """A typo such as 9999 would make periods that do not exist (year 10000)."""
    from django.urls import reverse

    buyer = ClientFactory(company=owner.company)
    response = signed_in.post(reverse("recurring_invoice_create"),
                              form_data(buyer, **{field: value}))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not RecurringInvoice.objects.exists()
    assert signed_in.get(reverse("recurring_invoice_list")).status_code == 200
