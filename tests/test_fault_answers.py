"""
Truthful answers under faults: a lost database connection answers 503 with a clear "try
again" page (never a stack trace) and the next request works; a send whose reply was lost
says what the database holds, read again.
"""

from unittest import mock

import pytest
from django.db import OperationalError
from django.urls import reverse

from billing import services
from billing.models import Invoice

from .factories import ClientFactory, InvoiceFactory, MembershipFactory

pytestmark = pytest.mark.django_db

LOST = OperationalError("server closed the connection unexpectedly")


@pytest.fixture
def member(client):
    membership = MembershipFactory(role="owner")
    client.force_login(membership.user)
    client.raise_request_exception = False
    client.own = ClientFactory(company=membership.company)
    return client


@pytest.mark.parametrize("where", ["billing.views.table_documents", "billing.tenancy.memberships"])
def test_a_lost_connection_answers_503_try_again_and_the_next_request_works(member, where):
    with mock.patch(where, side_effect=LOST):
        response = member.get(reverse("invoice_list"))
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    page = response.content.decode()
    assert "please try again" in page and "Traceback" not in page
    assert member.get(reverse("invoice_list")).status_code == 200


def test_any_other_error_answers_the_plain_500_page(member):
    with mock.patch("billing.views.table_documents", side_effect=ZeroDivisionError):
        response = member.get(reverse("invoice_list"))
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()


REAL_SEND = services.send_document


def send_then_lose_the_reply(document, **kwargs):
    REAL_SEND(document, **kwargs)
    raise LOST


def test_a_send_whose_reply_was_lost_after_it_committed_says_issued(member):
    draft = InvoiceFactory(client=member.own)
    with mock.patch("billing.views.services.send_document", send_then_lose_the_reply):
        response = member.post(reverse("invoice_send", args=[draft.pk]), follow=True)
    issued = Invoice.objects.get(pk=draft.pk)
    assert issued.is_issued
    page = response.content.decode()
    assert f"Issued as {issued.number}" in page and "nothing was issued" not in page


def test_a_send_that_failed_before_it_committed_says_not_issued(member):
    draft = InvoiceFactory(client=member.own)
    with mock.patch("billing.views.services.send_document", side_effect=LOST):
        response = member.post(reverse("invoice_send", args=[draft.pk]), follow=True)
    assert Invoice.objects.get(pk=draft.pk).is_draft
    assert "nothing was issued" in response.content.decode()


def test_when_the_database_cannot_be_asked_the_page_says_it_cannot_tell(member):
    draft = InvoiceFactory(client=member.own)
    with mock.patch("billing.views.services.send_document", side_effect=LOST), \
            mock.patch("billing.views._current_document", side_effect=LOST):
        response = member.post(reverse("invoice_send", args=[draft.pk]))
    assert response.status_code == 302
    page = member.get(reverse("invoice_detail", args=[draft.pk])).content.decode()
    assert "we cannot tell yet whether the document was issued" in page


def test_an_e_mail_no_worker_took_is_shown_as_such(member):
    from datetime import timedelta

    from django.utils import timezone

    from billing.models import EmailDelivery

    sent = REAL_SEND(InvoiceFactory(client=member.own))
    fresh = EmailDelivery.objects.create(company=sent.company, kind="invoice",
                                         document_id=sent.pk, recipient="a@example.com")
    url = reverse("invoice_detail", args=[sent.pk])
    assert "No worker has taken this e-mail yet" not in member.get(url).content.decode()
    EmailDelivery.objects.filter(pk=fresh.pk).update(
        created_at=timezone.now() - EmailDelivery.STALE_AFTER - timedelta(minutes=1))
    assert "No worker has taken this e-mail yet" in member.get(url).content.decode()
