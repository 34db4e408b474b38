"""Background jobs in tests: run them in this process, and a mail server that hangs."""

import os
import time
from pathlib import Path

from django.core.mail.backends.filebased import EmailBackend as FileBackend
from django.db import transaction

from billing import emails
from billing.jobs import run_ready_jobs


def deliver(document, user=None):
    """E-mail ``document`` now: queue its delivery and run the jobs due, in this process."""
    with transaction.atomic():
        delivery = emails.queue(document, user=user)
    run_ready_jobs()
    delivery.refresh_from_db()
    return delivery


class HangingEmailBackend(FileBackend):
    """
    Django's file backend that, while ``FOLIO_TEST_HANG_FILE`` is set, first writes that
    file (to say an attempt is under way) and then waits for ever: the test kills the
    worker there, in the middle of a delivery.
    """

    def send_messages(self, email_messages):
        hang = os.environ.get("FOLIO_TEST_HANG_FILE")
        if hang:
            Path(hang).write_text(str(os.getpid()))
            while True:
                time.sleep(1)
        return super().send_messages(email_messages)
