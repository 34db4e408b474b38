"""`manage.py run_schedules`: make the recurring invoices and send the reminders due now,
then delete the finished jobs and idempotency keys past their retention."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from billing import scheduling


class Command(BaseCommand):
    help = ("Make the recurring invoices and send the reminders that are due, then delete "
            "finished jobs and API idempotency keys past their retention (what the worker's "
            "periodic job does), and exit: for cron, or with no worker running. "
            "Running it twice, or beside workers, makes nothing twice.")

    def add_arguments(self, parser):
        parser.add_argument("--date", default=None,
                            help="run as of this day, YYYY-MM-DD (default: today)")

    def handle(self, *, date: str | None, verbosity, **options):
        today = None
        if date:
            try:
                today = _parse(date)
            except ValueError:
                raise CommandError(
                    f"--date {date!r}: use YYYY-MM-DD, such as 2026-12-31.") from None
        outcome = scheduling.run(today)
        if verbosity:
            self.stdout.write(
                f"{len(outcome.invoices)} recurring invoice(s) made, {len(outcome.sent)} "
                f"sent, {len(outcome.failed)} kept as drafts; {len(outcome.reminders)} "
                "reminder(s) queued.")
            for _invoice, reason in outcome.failed:
                self.stdout.write(f"  {reason}")


def _parse(text) -> date:
    return date.fromisoformat(text)
