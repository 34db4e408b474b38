"""
``manage.py prune_idempotency_keys``: delete the API's idempotency keys older than
``FOLIO_IDEMPOTENCY_HOURS`` (24 by default). The workers' periodic work does it too
(``billing.scheduling.prune``); run it from cron where no worker runs. A key younger than
that is always kept, so a retry within a day is always replayed.
"""

from django.core.management.base import BaseCommand

from billing.api.idempotency import prune


class Command(BaseCommand):
    help = "Delete idempotency keys older than FOLIO_IDEMPOTENCY_HOURS (24 h by default)."

    def handle(self, *args, **options):
        self.stdout.write(f"{prune()} idempotency keys deleted.")
