"""
The current company. Every page works inside one company, ``request.company``; views reach
company data only through ``scoped(request, Model)``, so isolation is the default.
"""

from django.http import Http404
from django.utils import translation

from .languages import app_language

SESSION_KEY = "folio_company_id"


def memberships(user):
    if not user.is_authenticated:
        return []
    return list(user.membership_set.select_related("company").order_by("company__name"))


class CurrentCompanyMiddleware:
    """
    Sets ``request.memberships``, ``request.membership`` and ``request.company`` (None when
    the user belongs to no company) and shows the pages in the user's language
    (``billing.languages.app_language``).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.memberships = memberships(request.user)
        chosen = request.session.get(SESSION_KEY) if request.memberships else None
        request.membership = next(
            (m for m in request.memberships if m.company_id == chosen),
            request.memberships[0] if request.memberships else None,
        )
        request.company = request.membership.company if request.membership else None
        if request.user.is_authenticated:
            request.LANGUAGE_CODE = app_language(request, request.company)
            translation.activate(request.LANGUAGE_CODE)
        return self.get_response(request)


def scoped(request, model):
    """``model``'s rows of the current company: the only way views reach company data."""
    if request.company is None:
        raise Http404("No company")
    return model.objects.filter(company=request.company)


def admin_companies(request):
    """
    The companies a staff user administers: all for a superuser, else their memberships'.
    The admin of every company-owned model filters by it (settings.FOLIO_ADMIN_COMPANIES).
    """
    from .models import Company

    if request.user.is_superuser:
        return None
    return Company.objects.filter(membership__user=request.user)
