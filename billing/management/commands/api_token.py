"""
``manage.py api_token --company ID --role ROLE [--name NAME] [--user USERNAME]``: print a new
API token of the company (for scripts and provisioning). Only its hash is stored: keep what
is printed. Revoke it on the API tokens page (owners).
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from billing.api.tokens import create_token
from billing.models import Company, Membership


class Command(BaseCommand):
    help = "Create an API token for a company and print it (shown this once)."

    def add_arguments(self, parser):
        parser.add_argument("--company", type=int, required=True, help="The company's id.")
        parser.add_argument("--role", required=True,
                            choices=Membership.Role.values)
        parser.add_argument("--name", default="", help="What the token is for.")
        parser.add_argument("--user", default=None,
                            help="The username the history names for the token's actions.")

    def handle(self, *args, company, role, name, user, **options):
        found = Company.objects.filter(pk=company).first()
        if found is None:
            raise CommandError(f"No company with id {company}.")
        creator = None
        if user is not None:
            creator = get_user_model().objects.filter(username=user).first()
            if creator is None:
                raise CommandError(f"No user {user!r}.")
        if len(name) > 100:
            raise CommandError("A token's name has at most 100 characters.")
        _row, token = create_token(found, role, name=name, user=creator)
        self.stdout.write(token)
