"""
``manage.py send_drafts --company ID|NAME [--client ID|NAME] [--kind invoice|credit_note|quote]
[--user USERNAME]``: issue many drafts at once (a month-end run). With ``--user`` the drafts
are issued in that person's name, and only if their role in the company allows sending
(``billing.permissions``, the rule the pages and the admin ask); without it, by the operator
who runs the command on the server. Each document is sent by
``billing.services.send_document`` in its own transaction: one failure neither stops nor
undoes the others, and every failure is listed at the end.
"""

import time

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from tqdm import tqdm

from billing.models import DOCUMENT_MODELS, DRAFT, Client, Company
from billing.permissions import Action, user_can
from billing.services import send_document

MODELS = {str(kind): model for kind, model in DOCUMENT_MODELS.items()}


def find(model, value, **scope):
    """An object by id or exact name, or a CommandError that says which."""
    query = model.objects.filter(**scope)
    if value.isdigit() and query.filter(pk=int(value)).exists():
        return query.get(pk=int(value))
    matches = list(query.filter(name=value)[:2])
    if len(matches) == 1:
        return matches[0]
    label = model._meta.verbose_name
    if matches:
        raise CommandError(f"Several {label}s are named {value!r}; give the id.")
    raise CommandError(f"No {label} {value!r}.")


class Command(BaseCommand):
    help = "Send (issue) the drafts of a company, each in its own transaction."

    def add_arguments(self, parser):
        parser.add_argument("--company", required=True, help="Company id or exact name.")
        parser.add_argument("--client", help="Only this client's drafts (id or exact name).")
        parser.add_argument("--kind", choices=sorted(MODELS), default="invoice")
        parser.add_argument("--limit", type=int, help="Send at most this many.")
        parser.add_argument("--email", action="store_true",
                            help="E-mail each document to its client after it is issued.")
        parser.add_argument("--user", help="Issue in this user's name (their role must allow "
                                            "sending in the company).")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, company, client, kind, limit, email, no_progress, user=None,
               **options):
        company = find(Company, company)
        if user is not None:
            username = user
            user = get_user_model().objects.filter(username=username, is_active=True).first()
            if user is None:
                raise CommandError(f"No active user {username!r}.")
            if not user_can(user, company.pk, Action.SEND):
                raise CommandError(f"{username}'s role in {company} does not allow sending.")
        drafts = MODELS[kind].objects.filter(company=company, state=DRAFT).order_by("pk")
        if client:
            drafts = drafts.filter(client=find(Client, client, company=company))
        ids = list(drafts.values_list("pk", flat=True)[:limit])
        failures, sent = [], 0
        started = time.perf_counter()
        for pk in tqdm(ids, unit="doc", disable=no_progress or not ids, file=self.stderr):
            draft = MODELS[kind](pk=pk)
            try:
                send_document(draft, user=user, email=email)
            except (ValidationError, DatabaseError, MODELS[kind].DoesNotExist) as error:
                messages = getattr(error, "messages", None) or [str(error)]
                failures.append((pk, " ".join(messages)))
            else:
                sent += 1
        elapsed = time.perf_counter() - started
        rate = f" ({sent / elapsed:,.0f}/s)" if sent and elapsed else ""
        self.stdout.write(f"{sent} of {len(ids)} {kind.replace('_', ' ')}(s) issued"
                          f" in {elapsed:.1f} s{rate}.")
        for pk, message in failures:
            self.stdout.write(self.style.ERROR(f"  #{pk}: {message}"))
        if failures:
            raise CommandError(f"{len(failures)} draft(s) could not be sent.", returncode=1)
