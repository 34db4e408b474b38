"""
The pages of recurring invoices: list, create and edit (with the template's lines), the
schedule's page (its periods, its invoices, the last problem), pause or resume, run now.

Roles: creating and editing a schedule is like editing drafts (``Action.CREATE``); the
"create and send" mode, and running such a schedule now, also need ``Action.SEND``.
"""

from datetime import date

from django.contrib import messages
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from . import recurring
from .forms import RecurringInvoiceForm, RecurringLineFormSet
from .models import DocumentState, RecurringInvoice
from .permissions import Action, can
from .tenancy import scoped
from .views import PAGE_SIZE, Page, _pk, _totals, _unread_lines, company_required

UPCOMING = 3


def _schedules(request):
    return scoped(request, RecurringInvoice).select_related("client")


@company_required
def recurring_invoice_list(request):
    schedules = _schedules(request).annotate(invoice_count=Count("invoices")).order_by(
        "name", "id")
    page = Page(schedules, request.GET.get("page"))
    return render(request, "billing/recurring_invoice_list.html", {"page": page})


@company_required(action=Action.CREATE)
def recurring_invoice_form(request, pk=None):
    schedule = get_object_or_404(_schedules(request), pk=pk) if pk else RecurringInvoice(
        company=request.company)
    may_send = can(request.membership, Action.SEND)
    form = RecurringInvoiceForm(request.POST or None, instance=schedule,
                                company=request.company, may_send=may_send)
    formset = RecurringLineFormSet(request.POST or None, instance=schedule, prefix="lines")
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        schedule = recurring.save_schedule(form, formset, request.user)
        messages.success(request, _("Recurring invoice %(name)s saved.") % {
            "name": schedule.name})
        return redirect("recurring_invoice_detail", pk=schedule.pk)
    if request.method == "GET" and not schedule.pk:
        formset = RecurringLineFormSet(instance=schedule, prefix="lines",
                                       initial=[{"quantity": 1, "tax_rate": 20}])
        formset.extra = 1
    return render(request, "billing/recurring_invoice_form.html", {
        "form": form, "formset": formset, "schedule": schedule, "totals": _totals(formset)})


@require_POST
@company_required
def recurring_invoice_totals(request):
    """htmx: the totals block for the template lines being edited."""
    pk = _pk(request.GET.get("pk", ""))
    schedule = get_object_or_404(_schedules(request), pk=pk) if pk is not None \
        else RecurringInvoice(company=request.company)
    formset = RecurringLineFormSet(request.POST, instance=schedule, prefix="lines")
    formset.is_valid()
    currency = request.POST.get("currency", request.company.currency)[:3].upper()
    return render(request, "billing/_totals.html",
                  {"totals": _totals(formset), "currency": currency,
                   "unread": _unread_lines(formset)})


@company_required
def recurring_invoice_detail(request, pk):
    schedule = get_object_or_404(_schedules(request).select_related("owner", "series"), pk=pk)
    upcoming = recurring.period_dates(schedule, date.max.replace(year=9000),
                                      after=schedule.last_period, limit=UPCOMING)
    invoices = list(schedule.invoices.select_related("client").order_by(
        "-recurring_period", "-id")[:PAGE_SIZE])
    lines = list(schedule.lines.all())
    return render(request, "billing/recurring_invoice_detail.html", {
        "schedule": schedule, "lines": lines, "upcoming": upcoming, "invoices": invoices,
        "totals": recurring.template_totals(lines), "today": timezone.localdate(),
        "may_run": _may_run(request, schedule),
        "drafts": schedule.invoices.filter(state=DocumentState.DRAFT).count(),
    })


def _may_run(request, schedule):
    return can(request.membership, Action.CREATE) and (
        not schedule.sends or can(request.membership, Action.SEND))


@require_POST
@company_required(action=Action.CREATE)
def recurring_invoice_pause(request, pk):
    schedule = get_object_or_404(_schedules(request), pk=pk)
    active = request.POST.get("active") == "1"
    recurring.set_active(schedule, active)
    messages.success(request, _("The schedule is running again.") if active
                     else _("The schedule is paused: it makes no invoice until resumed."))
    return redirect("recurring_invoice_detail", pk=pk)


@require_POST
@company_required(action=Action.CREATE)
def recurring_invoice_run(request, pk):
    """Make the periods due by today now, rather than at the worker's next tick."""
    schedule = get_object_or_404(_schedules(request), pk=pk)
    if not _may_run(request, schedule):
        messages.error(request, _("This schedule sends its invoices, which your role does "
                                  "not allow."))
        return redirect("recurring_invoice_detail", pk=pk)
    if not schedule.active:
        messages.error(request, _("The schedule is paused: resume it first."))
        return redirect("recurring_invoice_detail", pk=pk)
    result = recurring.run_schedule(schedule)
    if not result.created:
        messages.info(request, _("No period is due: nothing was made."))
    else:
        messages.success(request, ngettext(
            "%(count)s invoice made (%(sent)s sent).",
            "%(count)s invoices made (%(sent)s sent).", len(result.created)) % {
            "count": len(result.created), "sent": len(result.sent)})
    for _invoice, reason in result.failed:  # made, kept as drafts: a warning, not a refusal
        messages.warning(request, reason)
    return redirect("recurring_invoice_detail", pk=pk)


@require_POST
@company_required(action=Action.CREATE)
def recurring_invoice_delete(request, pk):
    schedule = get_object_or_404(_schedules(request), pk=pk)
    if schedule.invoices.exists():
        messages.error(request, _("This schedule has made invoices, which keep their link "
                                  "to it: pause it instead."))
        return redirect("recurring_invoice_detail", pk=pk)
    schedule.delete()
    messages.success(request, _("Recurring invoice deleted."))
    return redirect("recurring_invoice_list")
