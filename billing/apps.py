from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing")

    def ready(self):
        from counters import registry

        from . import throttle  # noqa: F401 - connects the failed log-in counter
        from .models import DRAFT, CreditNote, Invoice

        registry.register(Invoice.kind, Invoice, draft_state=DRAFT)
        registry.register(CreditNote.kind, CreditNote, draft_state=DRAFT)
