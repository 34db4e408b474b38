"""E-mailing issued documents. Runs after the issuing transaction has committed."""

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from .einvoice.exports import export, ubl_problems
from .models import EmailDelivery
from .pdf import document_pdf, pdf_filename

log = logging.getLogger(__name__)


def deliver(document, user=None) -> EmailDelivery:
    """
    E-mail ``document`` with its PDF to its client and record the outcome. A failure is
    recorded on the delivery, never raised: the document stays issued.
    """
    content = document.content  # as issued: the buyer and seller it was issued to and by
    delivery = EmailDelivery.objects.create(
        company_id=document.company_id, kind=document.kind, document_id=document.pk,
        recipient=content.buyer.email, requested_by=user if user and user.is_authenticated
        else None,
    )
    try:
        if not content.buyer.email:
            raise ValueError(_("the client has no e-mail address"))
        # The client's language: texts, dates and amounts (the PDF follows it too).
        with translation.override(content.locale):
            context = {"document": document, "content": content}
            subject = render_to_string("billing/email_subject.txt", context)
            body = render_to_string("billing/email_body.txt", context)
        message = EmailMessage(
            subject=" ".join(subject.split()), body=body,
            from_email=content.seller.email or settings.DEFAULT_FROM_EMAIL,
            to=[content.buyer.email],
        )
        message.attach(pdf_filename(document), document_pdf(document), "application/pdf")
        if document.client.attach_ubl and not ubl_problems(content):
            ubl = export(document, "ubl")  # the client books it without opening the PDF
            message.attach(ubl.filename, ubl.data, ubl.content_type)
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
