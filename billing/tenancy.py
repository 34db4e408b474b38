"""
The current company. Every page works inside one company, ``request.company``; views reach
company data only through ``scoped(request, Model)``, so isolation is the default.
"""

from django.http import Http404
from django.utils import timezone, translation

from .languages import app_language

SESSION_KEY = "folio_company_id"


def memberships(user):
    if not user.is_authenticated:
        return []
    return list(user.membership_set.select_related("company").order_by("company__name"))


def last_used(membership):
    """Order of preference: the latest used, then the oldest membership."""
    return (membership.last_used_at is not None, membership.last_used_at or 0, -membership.pk)


def remember_company(request, membership):
    """Make ``membership``'s company the current one, in this session and the next."""
    from .models import Membership

    request.session[SESSION_KEY] = membership.company_id
    Membership.objects.filter(pk=membership.pk).update(last_used_at=timezone.now())


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
        # The company chosen in this session, else the one the user used last (never the
        # first by name: a company renamed "Aardvark Ltd" does not become anyone's landing).
        request.membership = next(
            (m for m in request.memberships if m.company_id == chosen),
            max(request.memberships, key=last_used, default=None),
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


def admin_companies(request, action="read"):
    """
    The companies where a staff user may do ``action`` in the admin: all for a superuser,
    else those whose membership allows it (``billing.permissions``). The admin of every
    company-owned model asks it (settings.COUNTERS_ADMIN_COMPANIES).
    """
    from .permissions import companies_allowing

    return companies_allowing(request.user, action)
