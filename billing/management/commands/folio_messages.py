"""
``manage.py folio_messages [--compile-only]``: refresh the translation catalogs of every
language of the app from the code and templates (``makemessages``), then compile them.

The catalogs live in the apps' own locale folders, which Django finds by itself:
``counters/locale`` for the counters app, ``billing/locale`` for billing and for the project
templates (``templates/``), which belong to no app. Needs GNU gettext; the compiled ``.mo``
files are committed, so running the app never does.
"""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.test.utils import override_settings

LANGUAGES = [code for code, _name in settings.LANGUAGES if not code.startswith("en")]


class Command(BaseCommand):
    help = "Extract the translatable strings into the apps' catalogs and compile them."

    def add_arguments(self, parser):
        parser.add_argument("--compile-only", action="store_true")

    def handle(self, *args, compile_only=False, **options):
        if not compile_only:
            # makemessages puts each file's strings in the nearest locale folder above it;
            # templates/ has none, and goes to the default: billing's.
            with override_settings(LOCALE_PATHS=[settings.BASE_DIR / "billing" / "locale"]):
                call_command(
                    "makemessages", locale=LANGUAGES, no_location=True, no_obsolete=True,
                    ignore_patterns=["tests/*", "staticfiles/*", "build/*"],
                    verbosity=options["verbosity"],
                )
        call_command("compilemessages", locale=LANGUAGES, verbosity=options["verbosity"])
