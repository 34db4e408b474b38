"""
Numbering under concurrency, on PostgreSQL with real threads, one connection each.

Transactional tests: every thread commits or rolls back for real, as requests would.
"""

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction

from billing.models import CreditNote, Invoice
from billing.services import NotADraft, send_document
from counters.models import IssuedNumber, NumberingSettings
from counters.services import save_numbering_settings

from .factories import ClientFactory, CreditNoteFactory, InvoiceFactory
from .locking import held_in_another_transaction, lock_timeout

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class Rollback(Exception):
    """Raised after the allocation to make the whole transaction roll back."""


def run_threads(targets):
    """Start one thread per callable, release them together, re-raise any error."""
    barrier = threading.Barrier(len(targets))
    errors = []

    def run(target):
        try:
            barrier.wait(timeout=30)
            target()
        except BaseException as error:  # noqa: BLE001 - reported to the test below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    if errors:
        raise errors[0]


def wait_until_blocked_on_a_lock(count=1, timeout=30):
    """Wait until ``count`` other sessions of this database wait on a row lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= count:
                return
        time.sleep(0.01)  # polling a condition, not timing the test
    raise AssertionError("no session blocked on the lock")


def test_many_threads_on_one_shared_counter_issue_exactly_1_to_n():
    client = ClientFactory()
    numbering = NumberingSettings.for_company(client.company_id)
    numbering.shared_counter = True
    save_numbering_settings(numbering)
    threads, per_thread = 8, 6
    plans = []
    for t in range(threads):
        plan = []
        for i in range(per_thread):
            factory = InvoiceFactory if (t + i) % 2 else CreditNoteFactory
            # Every third transaction rolls back after its number was allocated.
            plan.append((factory(client=client), (t * per_thread + i) % 3 == 0))
        plans.append(plan)
    outcomes = []

    def worker(plan):
        def work():
            for document, roll_back in plan:
                try:
                    with transaction.atomic():
                        sent = send_document(document)
                        assert sent.number
                        if roll_back:
                            raise Rollback
                except Rollback:
                    outcomes.append(("rolled back", document))
                else:
                    outcomes.append(("sent", document))
        return work

    run_threads([worker(plan) for plan in plans])

    committed = [doc for outcome, doc in outcomes if outcome == "sent"]
    rolled_back = [doc for outcome, doc in outcomes if outcome == "rolled back"]
    assert len(committed) == 32 and len(rolled_back) == 16
    values = sorted(IssuedNumber.objects.values_list("value", flat=True))
    assert values == list(range(1, len(committed) + 1))
    numbers = list(IssuedNumber.objects.values_list("number", flat=True))
    assert len(set(numbers)) == len(numbers)
    issued = (
        list(Invoice.objects.exclude(state="draft").values_list("number", flat=True))
        + list(CreditNote.objects.exclude(state="draft").values_list("number", flat=True))
    )
    assert sorted(issued) == sorted(numbers)
    for document in rolled_back:
        document.refresh_from_db()
        assert document.is_draft and document.number == ""


def test_separate_counters_under_concurrency_stay_whole():
    client = ClientFactory()
    drafts = [InvoiceFactory(client=client) for _ in range(12)] + [
        CreditNoteFactory(client=client) for _ in range(12)]

    def sender(chunk):
        return lambda: [send_document(d) for d in chunk]

    run_threads([sender(drafts[i::8]) for i in range(8)])
    for kind in ("invoice", "credit_note"):
        values = sorted(IssuedNumber.objects.filter(kind=kind).values_list("value", flat=True))
        assert values == list(range(1, 13))


def test_double_send_from_two_threads_issues_once():
    draft = InvoiceFactory()
    results = []

    def send():
        try:
            results.append(send_document(Invoice.objects.get(pk=draft.pk)).number)
        except NotADraft as error:
            results.append(error)

    run_threads([send, send])
    numbers = [r for r in results if isinstance(r, str)]
    refusals = [r for r in results if isinstance(r, NotADraft)]
    assert len(numbers) == 1 and numbers[0].endswith("-0001") and len(refusals) == 1
    assert "already been issued" in refusals[0].messages[0]
    assert IssuedNumber.objects.count() == 1


@pytest.mark.parametrize("first_commits", [True, False])
def test_second_issuer_waits_for_the_first_and_then_takes_the_right_number(first_commits):
    client = ClientFactory()
    first, second = InvoiceFactory(client=client), InvoiceFactory(client=client)
    allocated, release = threading.Event(), threading.Event()
    results = {}

    def hold_the_counter():
        try:
            with transaction.atomic():
                results["first"] = send_document(first).number
                allocated.set()
                assert release.wait(timeout=30)
                if not first_commits:
                    raise Rollback
        except Rollback:
            pass
        finally:
            connections.close_all()

    def issue_next():
        try:
            results["second"] = send_document(second).number
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_counter)
    holder.start()
    assert allocated.wait(timeout=30)
    follower = threading.Thread(target=issue_next)
    follower.start()
    wait_until_blocked_on_a_lock()
    assert "second" not in results  # it waits for the counter row
    release.set()
    holder.join(timeout=30)
    follower.join(timeout=30)

    assert results["first"].endswith("-0001")
    expected = "0002" if first_commits else "0001"
    assert results["second"].endswith(expected)
    assert IssuedNumber.objects.count() == (2 if first_commits else 1)


def test_a_company_issuing_never_waits_for_another_company():
    """Each company's counter is its own row: holding one does not block the others."""
    busy, other = InvoiceFactory(), InvoiceFactory()
    assert busy.company_id != other.company_id
    with held_in_another_transaction(lambda: send_document(busy)), transaction.atomic():
        lock_timeout("2s")  # waiting for any lock fails this send instead of hanging
        number = send_document(other).number
    assert number.endswith("-0001")
    assert IssuedNumber.objects.count() == 2


def test_credit_notes_racing_against_one_invoice_never_exceed_it():
    invoice = send_document(InvoiceFactory())  # 240.00
    line = {"description": "Refund", "quantity": Decimal("1"), "unit_price": Decimal("100"),
            "tax_rate": Decimal("20")}  # 120.00 each: only two of four may pass
    drafts = [CreditNoteFactory(client=invoice.client, invoice=invoice, lines=[line])
              for _ in range(4)]
    outcomes = []

    def credit(draft):
        def work():
            try:
                send_document(draft)
                outcomes.append("sent")
            except Exception as error:  # noqa: BLE001
                outcomes.append(type(error).__name__)
        return work

    run_threads([credit(d) for d in drafts])
    assert sorted(outcomes) == ["CreditExceedsInvoice"] * 2 + ["sent"] * 2
    assert Invoice.objects.get(pk=invoice.pk).open_amount() == 0
