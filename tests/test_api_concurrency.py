"""
Idempotent sends under concurrency, on PostgreSQL with real threads (one connection each):
eight clients retrying one ``POST …/send`` with one Idempotency-Key at the same moment get
one effect — one number issued — and eight identical answers. And ``bench_api`` in small.
"""

import json
import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections
from django.test import Client as WebClient

from billing.api.models import ApiToken, IdempotencyKey
from billing.api.tokens import create_token
from billing.models import Company, Invoice
from counters.models import IssuedNumber, StateEvent

from .factories import ClientFactory, InvoiceFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 8


def post_together(path, headers, count=THREADS, body=""):
    """``count`` threads POST ``path`` at the same moment; their (status, body)s."""
    barrier = threading.Barrier(count)
    answers, errors = [None] * count, []

    def run(index):
        try:
            client = WebClient()
            barrier.wait(timeout=30)
            response = client.post(path, body, content_type="application/json", **headers)
            answers[index] = (response.status_code, response.content)
        except BaseException as error:  # noqa: BLE001 - re-raised by the test's thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    if errors:
        raise errors[0]
    return answers


def test_eight_parallel_sends_with_one_key_issue_one_number_and_answer_alike():
    draft = InvoiceFactory(client=ClientFactory())
    _row, token = create_token(draft.company, "accountant")
    answers = post_together(f"/api/v1/invoices/{draft.pk}/send", {
        "HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_IDEMPOTENCY_KEY": "retry-42"})
    statuses = {status for status, _body in answers}
    bodies = {body for _status, body in answers}
    assert statuses == {200}
    assert len(bodies) == 1
    issued = Invoice.objects.get(pk=draft.pk)
    assert json.loads(bodies.pop())["number"] == issued.number
    assert IssuedNumber.objects.count() == 1
    assert StateEvent.objects.count() == 1
    assert IdempotencyKey.objects.count() == 1


def test_eight_parallel_creates_with_one_key_make_one_draft():
    buyer = ClientFactory()
    _row, token = create_token(buyer.company, "accountant")
    body = json.dumps({"client": buyer.pk, "lines": [
        {"description": "Work", "unit_price": "10.00"}]})
    answers = post_together("/api/v1/invoices", {
        "HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_IDEMPOTENCY_KEY": "create-7"},
        body=body)
    assert {status for status, _body in answers} == {201}
    assert len({body for _status, body in answers}) == 1
    assert Invoice.objects.count() == 1


def test_without_a_key_parallel_sends_issue_once_and_the_others_are_told():
    draft = InvoiceFactory(client=ClientFactory())
    _row, token = create_token(draft.company, "accountant")
    answers = post_together(f"/api/v1/invoices/{draft.pk}/send",
                            {"HTTP_AUTHORIZATION": f"Bearer {token}"}, count=4)
    statuses = sorted(status for status, _body in answers)
    assert statuses == [200, 409, 409, 409]
    assert IssuedNumber.objects.count() == 1


def test_the_benchmark_sends_every_draft_once_on_each_side_and_removes_its_data():
    out = StringIO()
    # The command raises CommandError on any unexpected answer or a draft not issued once.
    call_command("bench_api", "--drafts", "10", "--rounds", "2", "--clients", "2",
                 "--workers", "1", stdout=out)
    report = out.getvalue()
    for label in ("the web page", "the API (bearer token)", "with an Idempotency-Key"):
        assert label in report
    assert "goal" in report
    assert not Company.objects.exists() and not ApiToken.objects.exists()
