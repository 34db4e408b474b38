from django.contrib import admin
from django.urls import include, path

from counters.models import Kind

from . import recurring_views as rv
from . import views
from .api.app import api
from .api.pages import api_tokens


def document_urls(kind, prefix, *, einvoice=True):
    """
    The same pages for each kind of document (a ``Kind``), named ``<kind>_<action>``; with
    ``einvoice``, the downloads of an issued document's e-invoices too.
    """
    k = {"kind": kind}
    pages = [
        path(f"{prefix}/", views.document_list, k, name=f"{kind}_list"),
        path(f"{prefix}/new/", views.document_form, k, name=f"{kind}_create"),
        path(f"{prefix}/totals/", views.document_totals, k, name=f"{kind}_totals"),
        path(f"{prefix}/<int:pk>/", views.document_detail, k, name=f"{kind}_detail"),
        path(f"{prefix}/<int:pk>/edit/", views.document_form, k, name=f"{kind}_edit"),
        path(f"{prefix}/<int:pk>/send/", views.document_send, k, name=f"{kind}_send"),
        path(f"{prefix}/<int:pk>/delete/", views.document_delete, k, name=f"{kind}_delete"),
        path(f"{prefix}/<int:pk>/pdf/", views.document_pdf_view, k, name=f"{kind}_pdf"),
        path(f"{prefix}/<int:pk>/email/", views.document_email, k, name=f"{kind}_email"),
    ]
    if not einvoice:
        return pages
    return [
        *pages,
        # E-invoices; the PDF of an issued document is its Factur-X.
        path(f"{prefix}/<int:pk>/ubl/", views.document_einvoice, {**k, "syntax": "ubl"},
             name=f"{kind}_ubl"),
        path(f"{prefix}/<int:pk>/cii/", views.document_einvoice, {**k, "syntax": "cii"},
             name=f"{kind}_cii"),
    ]


urlpatterns = [
    path("", views.dashboard, name="home"),
    path("health/", views.health, name="health"),
    path("accounts/whoami/", views.whoami, name="whoami"),
    path("accounts/login/", views.ThrottledLoginView.as_view(), name="login"),
    path("accounts/password_reset/", views.ThrottledPasswordResetView.as_view(),
         name="password_reset"),
    path("accounts/preferences/", views.preferences, name="preferences"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("company/switch/", views.switch_company, name="switch_company"),
    path("clients/", views.client_list, name="client_list"),
    path("clients/new/", views.client_form, name="client_create"),
    path("clients/<int:pk>/", views.client_detail, name="client_detail"),
    path("clients/<int:pk>/edit/", views.client_form, name="client_edit"),
    path("clients/<int:pk>/delete/", views.client_delete, name="client_delete"),
    *document_urls(Kind.INVOICE, "invoices"),
    *document_urls(Kind.CREDIT_NOTE, "credit-notes"),
    # Quotes are not EN 16931 invoices: their PDF only.
    *document_urls(Kind.QUOTE, "quotes", einvoice=False),
    path("quotes/<int:pk>/accept/", views.quote_accept, name="quote_accept"),
    path("quotes/<int:pk>/decline/", views.quote_decline, name="quote_decline"),
    path("quotes/<int:pk>/expire/", views.quote_expire, name="quote_expire"),
    path("invoices/<int:pk>/paid/", views.invoice_mark_paid, name="invoice_mark_paid"),
    path("invoices/<int:pk>/payments/", views.invoice_payment, name="invoice_payment"),
    path("payments/<int:pk>/reverse/", views.payment_reverse, name="payment_reverse"),
    path("invoices/<int:pk>/cancel/", views.invoice_cancel, name="invoice_cancel"),
    path("invoices/<int:pk>/credit/", views.invoice_credit, name="invoice_credit"),
    path("recurring/", rv.recurring_invoice_list, name="recurring_invoice_list"),
    path("recurring/new/", rv.recurring_invoice_form, name="recurring_invoice_create"),
    path("recurring/totals/", rv.recurring_invoice_totals, name="recurring_invoice_totals"),
    path("recurring/<int:pk>/", rv.recurring_invoice_detail, name="recurring_invoice_detail"),
    path("recurring/<int:pk>/edit/", rv.recurring_invoice_form, name="recurring_invoice_edit"),
    path("recurring/<int:pk>/pause/", rv.recurring_invoice_pause,
         name="recurring_invoice_pause"),
    path("recurring/<int:pk>/run/", rv.recurring_invoice_run, name="recurring_invoice_run"),
    path("recurring/<int:pk>/delete/", rv.recurring_invoice_delete,
         name="recurring_invoice_delete"),
    path("runs/", views.batch_list, name="sendbatch_list"),
    path("runs/start/", views.batch_start, name="sendbatch_start"),
    path("runs/<int:pk>/", views.batch_detail, name="sendbatch_detail"),
    path("members/", views.members, name="members"),
    path("members/leave/", views.leave_company, name="leave_company"),
    path("invitations/accept/", views.invitation_accept, name="invitation_accept"),
    path("invitations/signup/", views.invitation_signup, name="invitation_signup"),
    path("company/", views.company_settings, name="company_settings"),
    path("company/tokens/", api_tokens, name="api_tokens"),
    path("numbering/", views.numbering_settings, name="numbering_settings"),
    path("numbering/new/", views.numbering_series_create, name="numbering_series_create"),
    path("numbering/<int:pk>/", views.numbering_settings, name="numbering_series"),
    path("numbering/<int:pk>/default/", views.numbering_series_default,
         name="numbering_series_default"),
    path("numbering/<int:pk>/delete/", views.numbering_series_delete,
         name="numbering_series_delete"),
    path("numbering/preview/", views.numbering_preview, name="numbering_preview"),
    path("audit/", views.audit, name="audit"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
]

handler500 = "billing.views.server_error"
