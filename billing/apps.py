from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing")

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from counters import registry

        from . import throttle  # noqa: F401 - connects the failed log-in counter
        from .languages import on_login
        from .models import DRAFT, CreditNote, Invoice, Quote

        registry.register(Invoice.kind, Invoice, draft_state=DRAFT)
        registry.register(CreditNote.kind, CreditNote, draft_state=DRAFT)
        registry.register(Quote.kind, Quote, draft_state=DRAFT)
        user_logged_in.connect(on_login, dispatch_uid="folio_language_on_login")
