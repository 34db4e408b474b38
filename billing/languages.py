"""
Which language a page or a document is in.

- A client's documents (PDF, e-mail): ``Client.document_language``, the client's language or
  else the company's.
- The app's pages: the user's own choice (``UserPreferences.language``) or else the language
  their browser asks for (Accept-Language) or else the company's. The choice is read once
  per session, at log-in, and kept in the session: pages cost no query for it.
"""

from django.conf import settings
from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header

SESSION_KEY = "folio_language"


def browser_language(request):
    """The first language of the browser's Accept-Language the app speaks, else None."""
    for code, _quality in parse_accept_lang_header(request.META.get("HTTP_ACCEPT_LANGUAGE", "")):
        if code == "*":
            break
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return None


def remember_preference(request, user):
    """Keep ``user``'s chosen language ("" for none) in the session."""
    from .models import UserPreferences

    chosen = UserPreferences.objects.filter(user=user).values_list("language", flat=True).first()
    request.session[SESSION_KEY] = chosen or ""


def on_login(sender, request, user, **kwargs):
    remember_preference(request, user)


def app_language(request, company=None):
    """The language of the pages ``request`` gets."""
    if request.user.is_authenticated and SESSION_KEY not in request.session:
        remember_preference(request, request.user)  # a session from before preferences
    return (request.session.get(SESSION_KEY) or browser_language(request)
            or (company.locale if company else None) or settings.LANGUAGE_CODE)
