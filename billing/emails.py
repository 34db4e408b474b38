"""E-mailing issued documents. Runs after the issuing transaction has committed."""

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from .models import EmailDelivery
from .pdf import document_pdf, pdf_filename

log = logging.getLogger(__name__)


def deliver(document, user=None) -> EmailDelivery:
    """
    E-mail ``document`` with its PDF to its client and record the outcome. A failure is
    recorded on the delivery, never raised: the document stays issued.
    """
    delivery = EmailDelivery.objects.create(
        company_id=document.company_id, kind=document.kind, document_id=document.pk,
        recipient=document.client.email, requested_by=user if user and user.is_authenticated
        else None,
    )
    try:
        if not document.client.email:
            raise ValueError(_("the client has no e-mail address"))
        # The client's language: texts, dates and amounts (the PDF follows it too).
        with translation.override(document.client.document_language):
            subject = render_to_string("billing/email_subject.txt", {"document": document})
            body = render_to_string("billing/email_body.txt", {"document": document})
        message = EmailMessage(
            subject=" ".join(subject.split()), body=body,
            from_email=document.company.email or settings.DEFAULT_FROM_EMAIL,
            to=[document.client.email],
        )
        message.attach(pdf_filename(document), document_pdf(document), "application/pdf")
        message.send()
    except Exception as error:  # noqa: BLE001 - any delivery failure is recorded, not raised
        log.warning("E-mail of %s failed: %s", document, error)
        delivery.status, delivery.error = EmailDelivery.Status.FAILED, str(error)[:2000]
    else:
        delivery.status = EmailDelivery.Status.SENT
    delivery.finished_at = timezone.now()
    delivery.save(update_fields=["status", "error", "finished_at"])
    return delivery


def deliveries_of(document):
    return EmailDelivery.objects.filter(kind=document.kind, document_id=document.pk)
