"""
One-time form tokens: a new-draft form carries a token, and the session remembers which draft
each token created. Submitting the same form again (Back, then Save) leads to that draft
instead of creating a second one.
"""

SESSION_KEY = "folio_created_by_form"
KEPT = 50  # the latest forms a session remembers


def created_by(request, token, documents):
    """The document of ``documents`` that the form ``token`` created, or None."""
    pk = request.session.get(SESSION_KEY, {}).get(token)
    return documents.filter(pk=pk).first() if pk is not None else None


def remember(request, token, document):
    created = dict(request.session.get(SESSION_KEY, {}))
    created[token] = document.pk
    request.session[SESSION_KEY] = dict(list(created.items())[-KEPT:])
