"""
Month-end runs: drafts sent in the background from the browser (``billing.batches``), each
in its own transaction, with a page that shows the progress and can be left and reopened;
``send_drafts`` on the command line goes through the same step.
"""

from io import StringIO

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from billing import batches, services
from billing.jobs import reclaim_abandoned, run_ready_jobs
from billing.models import Invoice, Membership, SendBatch, SendBatchItem
from billing.tasks import send_batch
from counters.models import IssuedNumber

from .factories import ClientFactory, CreditNoteFactory, InvoiceFactory, MembershipFactory
from .test_browser import chromium, log_in, owner, page  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db
Outcome = SendBatchItem.Outcome


@pytest.fixture
def accountant():
    return MembershipFactory(role=Membership.Role.ACCOUNTANT)


@pytest.fixture
def browser(client, accountant):
    client.force_login(accountant.user)
    return client


def drafts_of(membership, count, **kwargs):
    client = ClientFactory(company=membership.company)
    return [InvoiceFactory(client=client, **kwargs) for _ in range(count)]


def batch_jobs():
    return DBTaskResult.objects.filter(task_path=send_batch.module_path)


def outcomes(batch):
    return sorted(batch.items.values_list("document_id", "outcome"))


# --- Starting a run ---------------------------------------------------------------------------


def test_a_run_is_written_with_exactly_one_job(accountant):
    drafts = drafts_of(accountant, 3)
    batch = batches.start(accountant.company, "invoice", [d.pk for d in drafts],
                          accountant.user)
    assert batch.state == SendBatch.State.RUNNING
    assert outcomes(batch) == [(d.pk, Outcome.PENDING) for d in drafts]
    assert [job.args_kwargs["args"] for job in batch_jobs()] == [[batch.pk]]


def test_a_rolled_back_start_leaves_neither_run_nor_job(accountant):
    drafts = drafts_of(accountant, 2)
    with pytest.raises(RuntimeError), transaction.atomic():
        batches.start(accountant.company, "invoice", [d.pk for d in drafts], accountant.user)
        raise RuntimeError("the request fails after the start")
    assert not SendBatch.objects.exists() and not batch_jobs().exists()


@pytest.mark.parametrize("role, allowed", [("owner", True), ("accountant", True),
                                           ("viewer", False)])
def test_only_a_role_that_sends_may_start_a_run(role, allowed):
    membership = MembershipFactory(role=role)
    ids = [d.pk for d in drafts_of(membership, 1)]
    if allowed:
        assert batches.start(membership.company, "invoice", ids, membership.user)
    else:
        with pytest.raises(PermissionDenied):
            batches.start(membership.company, "invoice", ids, membership.user)
        assert not SendBatch.objects.exists() and not batch_jobs().exists()


def test_a_member_of_another_company_may_not_start_a_run(accountant):
    stranger = MembershipFactory(role=Membership.Role.OWNER)
    ids = [d.pk for d in drafts_of(accountant, 1)]
    with pytest.raises(PermissionDenied):
        batches.start(accountant.company, "invoice", ids, stranger.user)


# --- Running it -------------------------------------------------------------------------------


def test_each_draft_is_sent_in_its_own_transaction_and_a_failure_is_recorded(accountant):
    good = drafts_of(accountant, 3)
    bad = InvoiceFactory(client=good[0].client, lines=[])
    batch = batches.start(accountant.company, "invoice", [d.pk for d in [*good, bad]],
                          accountant.user)
    run_ready_jobs()  # the run, then the e-mails it queued
    batch.refresh_from_db()
    assert batch.state == SendBatch.State.DONE and batch.finished_at
    assert batches.progress(batch) == {"issued": 3, "failed": 1, "remaining": 0,
                                       "total": 4, "percent": 100}
    failure = batch.items.get(outcome=Outcome.FAILED)
    assert (failure.document_id, failure.reason) == (
        bad.pk, "Add at least one line before sending.")
    assert Invoice.objects.get(pk=bad.pk).is_draft
    for item in batch.items.filter(outcome=Outcome.ISSUED):
        invoice = Invoice.objects.get(pk=item.document_id)
        assert invoice.number == item.number and not invoice.is_draft
        assert IssuedNumber.objects.get(number=item.number).issued_by == accountant.user
    assert sorted(m.attachments[0][0] for m in mail.outbox) == sorted(
        f"{item.number}.pdf" for item in batch.items.filter(outcome=Outcome.ISSUED))


def test_without_email_nothing_is_mailed(accountant):
    ids = [d.pk for d in drafts_of(accountant, 2)]
    batches.start(accountant.company, "invoice", ids, accountant.user, email=False)
    run_ready_jobs()
    assert IssuedNumber.objects.count() == 2 and mail.outbox == []


def test_credit_notes_are_sent_in_a_run_too(accountant):
    client = ClientFactory(company=accountant.company)
    credit = CreditNoteFactory(client=client)
    batch = batches.start(accountant.company, "credit_note", [credit.pk], accountant.user,
                          email=False)
    run_ready_jobs()
    assert outcomes(batch) == [(credit.pk, Outcome.ISSUED)]


def test_an_interrupted_run_goes_on_where_it_stopped_and_sends_nothing_twice(accountant):
    drafts = drafts_of(accountant, 4)
    batch = batches.start(accountant.company, "invoice", [d.pk for d in drafts],
                          accountant.user, email=False)
    # The worker issued the first draft, then died: its job is left running.
    job = batch_jobs().get()
    job.claim("dead-worker")
    batches.send_item(batch.items.first().pk, Invoice, accountant.user, False)
    DBTaskResult.objects.filter(pk=job.pk).update(started_at=job.started_at.replace(year=2000))
    assert reclaim_abandoned() == 1  # after the lease, the job is ready again
    run_ready_jobs()
    batch.refresh_from_db()
    assert batch.state == SendBatch.State.DONE
    assert outcomes(batch) == [(d.pk, Outcome.ISSUED) for d in drafts]
    assert IssuedNumber.objects.count() == 4  # the first one was not sent again


def test_an_item_with_an_outcome_is_never_sent_again(accountant):
    draft, = drafts_of(accountant, 1)
    batch = batches.create(accountant.company, "invoice", [draft.pk], accountant.user,
                           email=False)
    item = batch.items.get()
    assert batches.send_item(item.pk, Invoice, accountant.user, False).outcome == "issued"
    assert batches.send_item(item.pk, Invoice, accountant.user, False) is None
    assert IssuedNumber.objects.count() == 1


def test_a_send_whose_item_got_an_outcome_meanwhile_is_rolled_back(accountant):
    draft, = drafts_of(accountant, 1)
    batch = batches.create(accountant.company, "invoice", [draft.pk], accountant.user,
                           email=False)
    item = batch.items.get()
    # Another run recorded the item after this one read it as pending.
    batch.items.update(outcome=Outcome.FAILED, reason="by the other run")
    assert batches.send_item(item.pk, Invoice, accountant.user, False,
                             document_id=draft.pk) is None
    draft.refresh_from_db()
    assert draft.is_draft and not IssuedNumber.objects.exists()
    assert batch.items.get().reason == "by the other run"


def test_a_draft_issued_meanwhile_by_someone_else_is_recorded_as_such(accountant):
    draft, other = drafts_of(accountant, 2)
    batch = batches.start(accountant.company, "invoice", [draft.pk, other.pk],
                          accountant.user, email=False)
    services.send_document(draft)  # from its page, before the worker came to it
    run_ready_jobs()
    item = batch.items.get(document_id=draft.pk)
    assert item.outcome == Outcome.FAILED and "has already been issued" in item.reason
    assert batch.items.get(document_id=other.pk).outcome == Outcome.ISSUED
    assert IssuedNumber.objects.count() == 2


def test_a_long_run_hands_over_to_its_continuation(accountant, monkeypatch):
    monkeypatch.setattr(batches, "time_budget", lambda: 0)  # one item per job
    drafts = drafts_of(accountant, 3)
    batch = batches.start(accountant.company, "invoice", [d.pk for d in drafts],
                          accountant.user, email=False)
    assert run_ready_jobs() == 3  # the first job and two continuations
    assert [job.return_value for job in batch_jobs().order_by("enqueued_at")] == [
        "continued", "continued", "done"]
    assert outcomes(batch) == [(d.pk, Outcome.ISSUED) for d in drafts]


def test_a_run_stops_sending_in_the_name_of_someone_who_may_no_longer_send(accountant):
    ids = [d.pk for d in drafts_of(accountant, 2)]
    batch = batches.start(accountant.company, "invoice", ids, accountant.user)
    Membership.objects.filter(pk=accountant.pk).update(role=Membership.Role.VIEWER)
    run_ready_jobs()
    assert [item.reason for item in batch.items.all()] == [
        "The role of the person who started the run no longer allows sending."] * 2
    assert not IssuedNumber.objects.exists()


# --- The command line -------------------------------------------------------------------------


def test_send_drafts_sends_through_the_same_step_and_is_listed_as_a_run(
        accountant, monkeypatch):
    good = drafts_of(accountant, 2)
    bad = InvoiceFactory(client=good[0].client, lines=[])
    calls = []
    original = batches.send_item
    monkeypatch.setattr(batches, "send_item",
                        lambda *args, **kwargs: calls.append(args[0]) or original(*args,
                                                                                  **kwargs))
    out = StringIO()
    with pytest.raises(Exception, match="1 draft"):
        call_command("send_drafts", "--company", str(accountant.company_id),
                     "--user", accountant.user.username, "--no-progress", stdout=out)
    assert "2 of 3 invoice(s) issued" in out.getvalue()
    assert f"#{bad.pk}: Add at least one line before sending." in out.getvalue()
    batch = SendBatch.objects.get()
    assert batch.state == SendBatch.State.DONE and batch.created_by == accountant.user
    assert len(calls) == 3 and sorted(calls) == sorted(batch.items.values_list("pk",
                                                                               flat=True))
    assert not batch_jobs().exists()  # the command runs it itself


def test_send_drafts_keeps_its_progress_bar(accountant):
    drafts_of(accountant, 2)
    err = StringIO()
    call_command("send_drafts", "--company", str(accountant.company_id), stdout=StringIO(),
                 stderr=err)
    assert "2/2" in err.getvalue() and "doc" in err.getvalue()


# --- Pages ------------------------------------------------------------------------------------


def test_the_list_lets_a_sender_tick_drafts_only(browser, accountant):
    draft, issued = drafts_of(accountant, 2)
    services.send_document(issued)
    html = browser.get(reverse("invoice_list")).content.decode()
    assert f'name="document" value="{draft.pk}"' in html
    assert f'name="document" value="{issued.pk}"' not in html
    assert "Send selected in background" in html and reverse("sendbatch_list") in html


def test_a_viewer_sees_no_checkboxes_and_may_not_post(client):
    viewer = MembershipFactory(role=Membership.Role.VIEWER)
    draft, = drafts_of(viewer, 1)
    client.force_login(viewer.user)
    assert 'name="document"' not in client.get(reverse("invoice_list")).content.decode()
    response = client.post(reverse("sendbatch_start"), {"kind": "invoice", "document": draft.pk})
    assert response.status_code == 403 and not SendBatch.objects.exists()


def test_start_from_the_list_then_follow_the_progress_without_javascript(browser, accountant):
    good = drafts_of(accountant, 2)
    bad = InvoiceFactory(client=good[0].client, lines=[])
    response = browser.post(reverse("sendbatch_start"), {
        "kind": "invoice", "document": [d.pk for d in [*good, bad]], "email": "on"})
    batch = SendBatch.objects.get()
    assert response["Location"] == reverse("sendbatch_detail", args=[batch.pk])
    assert batch.email and batch.created_by == accountant.user

    html = browser.get(response["Location"]).content.decode()
    assert 'data-remaining>3<' in html and 'hx-trigger="every 1s"' in html
    assert '<meta http-equiv="refresh"' in html  # inside <noscript>: a plain reload
    run_ready_jobs()
    html = browser.get(response["Location"]).content.decode()
    assert 'data-issued>2<' in html and 'data-failed>1<' in html
    assert 'data-remaining>0<' in html and "hx-trigger" not in html and "refresh" not in html
    assert reverse("invoice_detail", args=[bad.pk]) in html
    assert "Add at least one line before sending." in html
    assert all(Invoice.objects.get(pk=d.pk).number in html for d in good)


def test_htmx_polls_the_progress_alone_until_the_run_is_done(browser, accountant):
    ids = [d.pk for d in drafts_of(accountant, 2)]
    batch = batches.start(accountant.company, "invoice", ids, accountant.user, email=False)
    url = reverse("sendbatch_detail", args=[batch.pk])
    fragment = browser.get(url, headers={"HX-Request": "true"}).content.decode()
    assert fragment.startswith('<div id="batch-progress"') and "<html" not in fragment
    assert f'hx-get="{url}"' in fragment and 'data-state="running"' in fragment
    run_ready_jobs()
    fragment = browser.get(url, headers={"HX-Request": "true"}).content.decode()
    assert 'data-state="done"' in fragment and "hx-get" not in fragment
    assert 'data-issued>2<' in fragment and "100 %" in fragment


def test_all_drafts_of_a_client_from_the_client_page_and_the_filtered_list(
        browser, accountant):
    mine = drafts_of(accountant, 2)
    other = drafts_of(accountant, 1)[0]
    html = browser.get(reverse("client_detail", args=[mine[0].client_id])).content.decode()
    assert 'data-send-all="invoice"' in html
    listed = browser.get(reverse("invoice_list"), {"client": mine[0].client_id})
    assert "data-send-client" in listed.content.decode()
    browser.post(reverse("sendbatch_start"), {"kind": "invoice", "client": mine[0].client_id,
                                          "email": "on"})
    assert outcomes(SendBatch.objects.get()) == [(d.pk, Outcome.PENDING) for d in mine]
    assert Invoice.objects.get(pk=other.pk).is_draft


def test_the_drafts_of_a_recurring_run_from_the_schedules_page(browser, accountant):
    """A schedule's page sends the drafts it made, and only those, as one run."""
    from datetime import date

    from billing import recurring

    from .test_recurring import schedule_of

    other = drafts_of(accountant, 1)[0]  # a draft of another client, not the schedule's
    schedule = schedule_of(ClientFactory(company=accountant.company))
    made = recurring.run_schedule(schedule, date(2026, 3, 15)).created
    schedule_page = reverse("recurring_invoice_detail", args=[schedule.pk])
    assert "data-send-drafts" in browser.get(schedule_page).content.decode()
    response = browser.post(reverse("sendbatch_start"), {
        "kind": "invoice", "recurring": schedule.pk, "email": "on"})
    run = SendBatch.objects.get()
    assert response.url == reverse("sendbatch_detail", args=[run.pk])
    assert outcomes(run) == [(d.pk, Outcome.PENDING) for d in made]
    run_ready_jobs()
    assert all(not d.is_draft for d in Invoice.objects.filter(recurring=schedule))
    assert Invoice.objects.get(pk=other.pk).is_draft
    assert "data-send-drafts" not in browser.get(schedule_page).content.decode()  # none left


def test_runs_are_listed_and_another_companys_run_is_not_found(browser, accountant):
    ids = [d.pk for d in drafts_of(accountant, 1)]
    mine = batches.start(accountant.company, "invoice", ids, accountant.user)
    stranger = MembershipFactory(role=Membership.Role.OWNER)
    theirs = batches.start(stranger.company, "invoice", [d.pk for d in drafts_of(stranger, 1)],
                           stranger.user)
    listing = browser.get(reverse("sendbatch_list")).content.decode()
    assert f'data-batch="{mine.pk}"' in listing and f'data-batch="{theirs.pk}"' not in listing
    assert browser.get(reverse("sendbatch_detail", args=[theirs.pk])).status_code == 404


@pytest.mark.parametrize("data", [
    {"kind": "invoice"},  # nothing ticked
    {"kind": "invoice", "document": ["abc", "99999999999999999999"]},
    {"kind": "receipt", "document": "1"},
])
def test_bad_or_empty_selections_get_a_message(browser, accountant, data):
    response = browser.post(reverse("sendbatch_start"), data, follow=True)
    assert response.status_code == 200 and not SendBatch.objects.exists()
    text = response.content.decode()
    assert "Select at least one draft to send." in text or "Unknown kind" in text


def test_a_client_without_drafts_is_told_so(browser, accountant):
    from .factories import ClientFactory

    client = ClientFactory(company=accountant.company)
    response = browser.post(reverse("sendbatch_start"), {"kind": "invoice",
                                                          "client": client.pk}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("client_detail", args=[client.pk])
    assert "There is no draft invoice to send." in response.content.decode()
    assert not SendBatch.objects.exists()


def test_another_companys_drafts_are_not_taken(browser, accountant):
    stranger = MembershipFactory(role=Membership.Role.OWNER)
    theirs, = drafts_of(stranger, 1)
    browser.post(reverse("sendbatch_start"), {"kind": "invoice", "document": theirs.pk})
    assert not SendBatch.objects.exists() and Invoice.objects.get(pk=theirs.pk).is_draft


# --- A worker SIGKILLed during a run (real `manage.py worker` processes) -----------------------

START = """
from billing import batches
from tests.factories import ClientFactory, InvoiceFactory, MembershipFactory
member = MembershipFactory(role="accountant")
client = ClientFactory(company=member.company)
drafts = [InvoiceFactory(client=client) for _ in range(6)]
batches.start(member.company, "invoice", [d.pk for d in drafts], member.user)
"""


@pytest.mark.postgres
def test_a_worker_killed_during_a_run_loses_and_repeats_nothing(tmp_path):
    """
    The worker is stopped for certain in the middle of the run: this test holds a lock on
    the third draft, so the run waits there with two drafts issued, and is SIGKILLed then.
    Another worker takes the run back and finishes it: each draft issued once, each e-mail
    delivered once.
    """
    import re
    import signal
    from collections import Counter

    import psycopg

    from .test_jobs import Database, manage, run, wait_for

    database = Database("postgres", tmp_path)
    mails = tmp_path / "mails"
    env = {**__import__("os").environ, "DATABASE_URL": database.url,
           "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
           "EMAIL_FILE_PATH": str(mails), "FOLIO_JOB_LEASE": "2"}
    try:
        run(env, "migrate", "--noinput", "-v0")
        run(env, "shell", "-c", START)
        outcome = "SELECT outcome, count(*) FROM billing_sendbatchitem GROUP BY 1 ORDER BY 1"
        with psycopg.connect(database.url) as holder:  # a transaction, until we let go
            holder.execute("SELECT 1 FROM billing_invoice WHERE id = (SELECT document_id "
                           "FROM billing_sendbatchitem ORDER BY id OFFSET 2 LIMIT 1) "
                           "FOR UPDATE")
            first = manage(env, "worker", "--interval", "0.1")
            try:
                wait_for(lambda: database.rows(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"), "the run to wait on the third draft",
                    processes=[first])
                assert database.rows(outcome) == [("issued", 2), ("pending", 4)]
            finally:
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=30)
        assert database.rows(outcome) == [("issued", 2), ("pending", 4)]

        second = manage(env, "worker", "--interval", "0.1")
        try:
            wait_for(lambda: database.rows(
                "SELECT 1 FROM billing_sendbatch WHERE state = 'done'") and not database.rows(
                "SELECT 1 FROM billing_emaildelivery WHERE status = 'pending'"),
                "the second worker to finish the run and its e-mails", processes=[second])
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
        assert database.rows(outcome) == [("issued", 6)]
        numbers = [row[0] for row in database.rows("SELECT number FROM billing_invoice")]
        assert len(set(numbers)) == 6 and database.rows(
            "SELECT count(*) FROM counters_issuednumber") == [(6,)]
        assert database.rows("SELECT status, count(*) FROM billing_emaildelivery "
                             "GROUP BY 1") == [("sent", 6)]
        sent = Counter(name for path in mails.iterdir()
                       for name in re.findall(r'filename="([^"]+)\.pdf"', path.read_text()))
        assert sent == Counter(numbers)  # one e-mail each, none lost, none twice
    finally:
        database.drop()


# --- In a real browser ------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_select_drafts_start_and_watch_the_run_finish(page, owner):  # noqa: F811
    """Tick two drafts, send them in the background, and see the page reach *done* by
    itself (htmx polling) once the worker (here: this test) has run the job."""
    from playwright.sync_api import expect

    client = ClientFactory(company=owner.company, name="Boulangerie Martin")
    first, second = InvoiceFactory(client=client), InvoiceFactory(client=client)
    left_alone = InvoiceFactory(client=client)
    log_in(page)
    page.get_by_role("link", name="Invoices", exact=True).click()
    page.get_by_label(f"Select draft #{first.pk}").check()
    page.get_by_label(f"Select draft #{second.pk}").check()
    page.get_by_role("button", name="Send selected in background").click()
    expect(page.locator("#batch-progress")).to_have_attribute("data-state", "running")
    expect(page.locator("[data-remaining]")).to_have_text("2")
    page.shot("running")

    run_ready_jobs()  # what a worker does
    expect(page.locator("#batch-progress")).to_have_attribute("data-state", "done")
    expect(page.locator("[data-issued]")).to_have_text("2")
    expect(page.locator("[data-remaining]")).to_have_text("0")
    page.shot("done")
    numbers = [Invoice.objects.get(pk=d.pk).number for d in (first, second)]
    for number in numbers:
        expect(page.get_by_role("link", name=number)).to_be_visible()
    assert Invoice.objects.get(pk=left_alone.pk).is_draft

    page.get_by_role("link", name="All runs").click()  # closed and reopened
    page.locator("[data-batch] a").first.click()
    expect(page.locator("#batch-progress")).to_have_attribute("data-state", "done")


# --- Languages --------------------------------------------------------------------------------

RUN_STRINGS = ["Send selected in background", "Month-end runs", "Remaining",
               "Sending in the background: you may close this page and come back.",
               "Select at least one draft to send.", "There is no draft %(kind)s to send.",
               "All runs",
               "The role of the person who started the run no longer allows sending."]


@pytest.mark.parametrize("language", ["fr", "de", "es", "it", "nl"])
def test_the_run_pages_speak_every_language_of_the_app(language):
    from django.utils import translation

    with translation.override(language):
        untranslated = [text for text in RUN_STRINGS if translation.gettext(text) == text]
    assert untranslated == []
