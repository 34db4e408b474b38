"""
E-mailing issued documents, as background jobs.

``queue`` writes the delivery and its job in the caller's transaction (a rolled-back send
queues nothing; a committed one has its job even if the process dies the next instant).
A worker (``manage.py worker``) runs the job, ``attempt``: it claims the delivery, sends,
and records the outcome; a failed attempt queues the next one after a growing wait, up to
``FOLIO_EMAIL_ATTEMPTS``, then the delivery is *failed*. A worker killed during an attempt
leaves a claim that expires after ``FOLIO_JOB_LEASE``; the job then runs again.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from .einvoice.exports import export, ubl_problems
from .models import DocumentState, EmailDelivery, document_model
from .pdf import document_pdf, pdf_filename

log = logging.getLogger(__name__)

Status = EmailDelivery.Status


class PermanentFailure(Exception):
    """Trying again cannot help (no address to send to)."""


def queue(document, user=None) -> EmailDelivery:
    """
    A pending delivery of ``document`` to its client and the job that sends it, written in
    the current transaction.
    """
    content = document.content  # as issued: the buyer it was issued to
    with transaction.atomic():
        delivery = EmailDelivery.objects.create(
            company_id=document.company_id, kind=document.kind, document_id=document.pk,
            recipient=content.buyer.email, next_attempt_at=timezone.now(),
            requested_by=user if user and user.is_authenticated else None,
        )
        _enqueue(delivery)
    return delivery


def queue_reminder(reminder, user=None) -> EmailDelivery:
    """
    A pending delivery of ``reminder`` (an overdue invoice's reminder, with its PDF) and the
    job that sends it, written in the current transaction.
    """
    invoice = reminder.invoice
    with transaction.atomic():
        delivery = EmailDelivery.objects.create(
            company_id=invoice.company_id, kind=invoice.kind, document_id=invoice.pk,
            reminder=reminder, recipient=invoice.content.buyer.email,
            next_attempt_at=timezone.now(),
            requested_by=user if user and user.is_authenticated else None,
        )
        _enqueue(delivery)
    return delivery


def requeue(delivery) -> EmailDelivery:
    """A failed delivery tried again from the start (its attempts counted afresh)."""
    with transaction.atomic():
        delivery = EmailDelivery.objects.select_for_update().get(pk=delivery.pk)
        if delivery.status == Status.FAILED:
            delivery.status, delivery.attempts, delivery.finished_at = Status.PENDING, 0, None
            delivery.next_attempt_at = timezone.now()
            delivery.save(update_fields=["status", "attempts", "finished_at",
                                         "next_attempt_at"])
            _enqueue(delivery)
    return delivery


def _enqueue(delivery, run_after=None):
    from .tasks import deliver_email

    task = deliver_email.using(run_after=run_after) if run_after else deliver_email
    task.enqueue(delivery.pk)


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: doubling, at most an hour."""
    seconds = settings.FOLIO_EMAIL_BACKOFF * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, 3600))


def attempt(delivery_id: int) -> str:
    """The job: one attempt at a delivery. Returns what became of it."""
    now = timezone.now()
    lease = timedelta(seconds=settings.FOLIO_JOB_LEASE)
    with transaction.atomic():
        delivery = EmailDelivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None or delivery.status != Status.PENDING:
            return "done"  # this job ran already (a worker died after the outcome)
        if delivery.claimed_at and delivery.claimed_at > now - lease:
            return "busy"  # another worker's attempt is under way
        if delivery.claimed_at:  # a worker died during the last attempt
            delivery.error = _("the worker stopped during the attempt")
            if delivery.attempts >= settings.FOLIO_EMAIL_ATTEMPTS:
                return _finish(delivery, Status.FAILED)
        delivery.attempts += 1
        delivery.claimed_at = now
        delivery.save(update_fields=["attempts", "claimed_at", "error"])
    try:
        _send(delivery)
    except Exception as error:  # noqa: BLE001 - any delivery failure is recorded, not raised
        log.warning("E-mail delivery %s failed (attempt %s): %s", delivery.pk,
                    delivery.attempts, error)
        delivery.error = str(error)[:2000]
        if isinstance(error, PermanentFailure) \
                or delivery.attempts >= settings.FOLIO_EMAIL_ATTEMPTS:
            return _finish(delivery, Status.FAILED)
        with transaction.atomic():
            delivery.claimed_at = None
            delivery.next_attempt_at = timezone.now() + backoff(delivery.attempts)
            delivery.save(update_fields=["error", "claimed_at", "next_attempt_at"])
            _enqueue(delivery, run_after=delivery.next_attempt_at)
        return "retry"
    delivery.error = ""
    return _finish(delivery, Status.SENT)


def _finish(delivery, status) -> str:
    delivery.status, delivery.claimed_at = status, None
    delivery.finished_at = timezone.now()
    delivery.save(update_fields=["status", "error", "claimed_at", "finished_at"])
    return status


def _send(delivery):
    document = document_model(delivery.kind).objects.select_related(
        "client__company", "company").get(pk=delivery.document_id)
    content = document.content  # as issued: the buyer and seller it was issued to and by
    if not delivery.recipient:
        raise PermanentFailure(_("the client has no e-mail address"))
    context = {"document": document, "content": content}
    templates = ("billing/email_subject.txt", "billing/email_body.txt")
    if delivery.reminder_id:
        open_amount = document.open_amount()
        if document.state != DocumentState.SENT or open_amount <= 0:
            raise PermanentFailure(_("not sent: the invoice was paid or credited meanwhile"))
        context.update(reminder=delivery.reminder, open_amount=open_amount)
        templates = ("billing/reminder_subject.txt", "billing/reminder_body.txt")
    # The client's language: texts, dates and amounts (the PDF follows it too).
    with translation.override(content.locale):
        subject = render_to_string(templates[0], context)
        body = render_to_string(templates[1], context)
    message = EmailMessage(
        subject=" ".join(subject.split()), body=body,
        from_email=content.seller.email or settings.DEFAULT_FROM_EMAIL,
        to=[delivery.recipient],
    )
    message.attach(pdf_filename(document), document_pdf(document), "application/pdf")
    if document.is_einvoice_kind and document.client.attach_ubl and not ubl_problems(content):
        ubl = export(document, "ubl")  # the client books it without opening the PDF
        message.attach(ubl.filename, ubl.data, ubl.content_type)
    message.send()


def deliveries_of(document):
    return EmailDelivery.objects.filter(kind=document.kind, document_id=document.pk
                                        ).select_related("reminder")
