"""
``manage.py send_drafts --company ID|NAME [--client ID|NAME] [--kind invoice|credit_note|quote]
[--user USERNAME]``: issue many drafts at once (a month-end run). With ``--user`` the drafts
are issued in that person's name, and only if their role in the company allows sending
(``billing.permissions``, the rule the pages and the admin ask); without it, by the operator
who runs the command on the server. The run is a month-end run like one started from the
browser (``billing.batches``; it is listed on the run pages): each draft is sent by
``billing.batches.send_item``, the job's own step, in its own transaction: one failure
neither stops nor undoes the others, and every failure is listed at the end.
"""

import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from billing import batches
from billing.models import Client, Company
from billing.permissions import Action, user_can

MODELS = batches.MODELS


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
        client = find(Client, client, company=company) if client else None
        ids = batches.drafts(company, kind, client=client)[:limit]
        if not ids:
            self.stdout.write(f"0 of 0 {kind.replace('_', ' ')}(s) issued.")
            return
        batch = batches.create(company, kind, ids, user, email=email)
        failures, sent = [], 0
        started = time.perf_counter()
        items = list(batches.pending(batch))
        for item_id, document_id in tqdm(items, unit="doc", disable=no_progress,
                                         file=self.stderr):
            item = batches.send_item(item_id, MODELS[kind], user, email,
                                     document_id=document_id)
            if item is None:
                continue  # another run recorded it
            if item.outcome == item.Outcome.ISSUED:
                sent += 1
            else:
                failures.append((item.document_id, item.reason))
        batches.finish(batch)
        elapsed = time.perf_counter() - started
        rate = f" ({sent / elapsed:,.0f}/s)" if sent and elapsed else ""
        self.stdout.write(f"{sent} of {len(ids)} {kind.replace('_', ' ')}(s) issued"
                          f" in {elapsed:.1f} s{rate}.")
        for pk, message in failures:
            self.stdout.write(self.style.ERROR(f"  #{pk}: {message}"))
        if failures:
            raise CommandError(f"{len(failures)} draft(s) could not be sent.", returncode=1)
