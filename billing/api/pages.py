"""
The API tokens page (owners): make a token (name and role; shown once, on the page that
answers the form) and revoke tokens. Only the tokens' hashes are stored.
"""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..permissions import Action
from ..views import company_required
from .models import ApiToken
from .tokens import create_token, revoke


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["name", "role"]
        labels = {"name": gettext_lazy("What is it for?")}
        help_texts = {"role": gettext_lazy(
            "What the token may do, as a member with this role: viewers read; accountants "
            "also create, send, credit, cancel and record payments.")}


@company_required(action=Action.MANAGE_MEMBERS)
def api_tokens(request):
    form = ApiTokenForm(request.POST if "create" in request.POST else None)
    new_token = None
    if request.method == "POST" and "revoke" in request.POST:
        pk = request.POST["revoke"]
        token = get_object_or_404(ApiToken, company=request.company,
                                  pk=int(pk) if pk.isdecimal() and len(pk) < 19 else None)
        revoke(token)
        messages.success(request, _("Token %(prefix)s revoked: it no longer works.") % {
            "prefix": f"folio_{token.prefix}_…"})
        return redirect("api_tokens")
    if request.method == "POST" and form.is_valid():
        _row, new_token = create_token(request.company, form.cleaned_data["role"],
                                       name=form.cleaned_data["name"], user=request.user)
        form = ApiTokenForm()
    response = render(request, "billing/api_tokens.html", {
        "form": form, "new_token": new_token,
        "tokens": ApiToken.objects.filter(company=request.company).select_related(
            "created_by"),
    })
    if new_token:
        response["Cache-Control"] = "no-store"  # the secret is on this page only
    return response
