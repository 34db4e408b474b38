"""
Reminders: a company's steps (days after the due date); an overdue invoice with something
left to pay gets one reminder e-mail per step that is due, recorded on the invoice, never
twice for one step (the database's unique constraint), stopped by payment or credit. When
several steps are due at once only the latest is sent; the earlier ones are recorded as
skipped. The e-mail is a durable job written in the reminder's transaction, in the client's
language, with the PDF.
"""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from billing import reminders, scheduling, services
from billing.models import Company, EmailDelivery, Reminder, parse_reminder_days
from billing.tasks import run_schedules

from .factories import ClientFactory, CompanyFactory, InvoiceFactory

pytestmark = pytest.mark.django_db

D = Decimal
ISSUED = date(2026, 3, 1)
DUE = date(2026, 3, 31)  # 30 days of terms


@pytest.fixture
def invoice(issue_on):
    """A sent invoice of 240.00, due on 31 March 2026, of a company reminding 3, 14, 30."""
    company = CompanyFactory(reminder_days="3, 14, 30", payment_terms_days=30)
    issue_on(ISSUED)
    return services.send_document(InvoiceFactory(client=ClientFactory(company=company)))


def steps_of(invoice):
    return list(invoice.reminders.values_list("step", "skipped"))


# --- The setting ----------------------------------------------------------------------------


def test_steps_are_whole_days_once_each_and_sorted():
    assert parse_reminder_days(" 30,3 ; 14 ") == [3, 14, 30]
    assert parse_reminder_days("") == []
    for bad, message in [("3, x", "whole numbers"), ("0", "1 to 365"), ("400", "1 to 365"),
                         ("3, 3", "once"), ("²", "whole numbers"), ("١٤", "whole numbers"),
                         (",".join(map(str, range(1, 12))), "At most")]:
        with pytest.raises(ValidationError, match=message):
            parse_reminder_days(bad)


def test_the_company_stores_its_steps_as_typed_cleanly():
    company = CompanyFactory.build(reminder_days="30 14,3")
    company.full_clean()
    assert company.reminder_days == "3, 14, 30" and company.reminder_steps == [3, 14, 30]
    company.reminder_days = "soon"
    with pytest.raises(ValidationError) as refused:
        company.full_clean()
    assert "reminder_days" in refused.value.message_dict


# --- Sending --------------------------------------------------------------------------------


def test_nothing_before_the_first_step(invoice):
    assert reminders.run_due(date(2026, 4, 2)) == []
    assert reminders.next_reminder(invoice) == (3, date(2026, 4, 3))


def test_each_step_is_sent_once_when_it_is_due(invoice, run_jobs, mailoutbox):
    [first] = reminders.run_due(date(2026, 4, 3))
    assert (first.invoice, first.step, first.due_on) == (invoice, 3, date(2026, 4, 3))
    assert reminders.run_due(date(2026, 4, 3)) == []  # run again: nothing
    assert reminders.run_due(date(2026, 4, 13)) == []  # between steps: nothing
    [second] = reminders.run_due(date(2026, 4, 14))
    assert second.step == 14
    assert steps_of(invoice) == [(3, False), (14, False)]
    assert reminders.next_reminder(invoice) == (30, date(2026, 4, 30))
    run_jobs()
    assert len(mailoutbox) == 2
    assert mailoutbox[0].subject == f"Reminder: invoice {invoice.number} from {invoice.company}"
    assert "240.00" in mailoutbox[0].body and "was due on" in mailoutbox[0].body
    assert mailoutbox[0].attachments[0][2] == "application/pdf"


def test_steps_due_together_send_the_latest_and_record_the_others_skipped(invoice):
    [reminder] = reminders.run_due(date(2026, 5, 10))  # 40 days late: 3, 14 and 30 due
    assert reminder.step == 30
    assert steps_of(invoice) == [(3, True), (14, True), (30, False)]
    assert EmailDelivery.objects.filter(reminder__isnull=False).count() == 1
    assert reminders.next_reminder(invoice) is None


def test_a_step_added_before_the_last_one_sent_is_not_sent_late(invoice):
    reminders.run_due(date(2026, 4, 14))
    Company.objects.filter(pk=invoice.company_id).update(reminder_days="3, 7, 14, 30")
    assert reminders.run_due(date(2026, 4, 20)) == []
    assert [step for step, _skipped in steps_of(invoice)] == [3, 14]


def test_the_reminder_goes_to_the_address_the_invoice_was_issued_to(invoice, run_jobs,
                                                                      mailoutbox):
    from billing.models import Client

    issued_to = invoice.content.buyer.email
    Client.objects.filter(pk=invoice.client_id).update(email="")  # changed since
    reminders.run_due(date(2026, 4, 3))
    run_jobs()
    delivery = EmailDelivery.objects.get(reminder__isnull=False)
    assert (delivery.recipient, delivery.status) == (issued_to, "sent")
    assert mailoutbox[0].to == [issued_to]


def test_the_database_refuses_a_second_reminder_for_a_step(invoice):
    reminders.run_due(date(2026, 4, 3))
    with pytest.raises(IntegrityError), transaction.atomic():
        Reminder.objects.create(company=invoice.company, invoice=invoice, step=3,
                                due_on=date(2026, 4, 3))
    # A run that read the invoice before the step was recorded sends nothing.
    assert reminders.remind(invoice.pk, [3], date(2026, 4, 3)) is None


def test_payment_stops_reminders(invoice):
    services.record_payment(invoice, amount=D("100.00"), method="bank_transfer",
                            date=ISSUED)
    assert [r.step for r in reminders.run_due(date(2026, 4, 3))] == [3]  # 140.00 still open
    services.record_payment(invoice, amount=D("140.00"), method="bank_transfer",
                            date=ISSUED)
    assert reminders.run_due(date(2026, 4, 30)) == []
    invoice.refresh_from_db()
    assert reminders.next_reminder(invoice) is None


def test_a_credit_note_for_the_open_amount_stops_reminders(invoice):
    services.send_document(services.draft_credit_note(invoice))
    assert reminders.run_due(date(2026, 4, 30)) == []
    assert invoice.reminders.count() == 0
    assert reminders.next_reminder(invoice) is None


def test_a_reminder_queued_before_the_payment_is_not_sent(invoice, run_jobs, mailoutbox):
    reminders.run_due(date(2026, 4, 3))
    services.mark_paid(invoice)
    run_jobs()
    assert mailoutbox == []
    delivery = EmailDelivery.objects.get(reminder__isnull=False)
    assert delivery.status == "failed" and "paid or credited" in delivery.error


def test_no_steps_no_reminders(invoice):
    Company.objects.filter(pk=invoice.company_id).update(reminder_days="")
    assert reminders.run_due(date(2026, 6, 1)) == []


def test_the_email_is_queued_in_the_reminders_transaction(invoice, run_jobs, mailoutbox):
    with pytest.raises(RuntimeError), transaction.atomic():
        reminders.run_due(date(2026, 4, 3))
        raise RuntimeError("the process dies before the commit")
    assert Reminder.objects.count() == 0 and EmailDelivery.objects.count() == 0
    assert run_jobs() == 0
    reminders.run_due(date(2026, 4, 3))
    assert run_jobs() == 1 and len(mailoutbox) == 1


def test_the_client_reads_the_reminder_in_their_language(issue_on, run_jobs, mailoutbox):
    company = CompanyFactory(reminder_days="3", payment_terms_days=30, name="Northwind")
    client = ClientFactory(company=company, language="fr")
    issue_on(ISSUED)
    invoice = services.send_document(InvoiceFactory(client=client))
    reminders.run_due(date(2026, 4, 3))
    run_jobs()
    [message] = mailoutbox
    assert message.subject == f"Rappel : facture {invoice.number} de Northwind"
    body = " ".join(message.body.split())
    assert "240,00" in body and "était due le 31 mars 2026" in body
    assert "Reminder" not in body and "due on" not in body


def test_the_worker_tick_is_one_durable_job_that_runs_everything(invoice, run_jobs,
                                                                  mailoutbox, issue_on):
    issue_on(date(2026, 4, 3))
    assert scheduling.enqueue_tick() is True
    assert scheduling.enqueue_tick() is False  # one waiting already: not two
    run_jobs()  # the tick, then the reminder's e-mail it queued
    assert steps_of(invoice) == [(3, False)] and len(mailoutbox) == 1
    assert run_schedules.module_path.endswith("run_schedules")
    assert scheduling.enqueue_tick() is True  # the last one ran: the next tick may come


# --- Pages ----------------------------------------------------------------------------------


def test_the_invoice_page_shows_its_reminders_and_the_next(invoice, client, issue_on):
    from django.urls import reverse

    from billing.models import Membership

    from .factories import MembershipFactory

    member = MembershipFactory(company=invoice.company, role=Membership.Role.OWNER)
    client.force_login(member.user)
    reminders.run_due(date(2026, 4, 20))  # 3 skipped, 14 e-mailed
    issue_on(date(2026, 4, 20))
    response = client.get(reverse("invoice_detail", args=[invoice.pk]))
    page = response.content.decode()
    assert 'data-reminder="3" data-skipped' in page and 'data-reminder="14">' in page
    assert response.context["next_reminder"] == (30, date(2026, 4, 30))
    assert "Next reminder on" in page


def test_owners_set_the_steps_on_the_company_page(client):
    from django.urls import reverse

    from billing.models import Membership

    from .factories import MembershipFactory

    member = MembershipFactory(role=Membership.Role.OWNER)
    client.force_login(member.user)
    page = client.get(reverse("company_settings"))
    data = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    data.update(reminder_days="30, 7", einvoicing="on" if data.get("einvoicing") else "")
    response = client.post(reverse("company_settings"), data)
    assert response.status_code == 302, response.context["form"].errors
    member.company.refresh_from_db()
    assert member.company.reminder_days == "7, 30"
    response = client.post(reverse("company_settings"), {**data, "reminder_days": "7, x"})
    assert "reminder_days" in response.context["form"].errors
