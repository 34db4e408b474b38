"""
``manage.py audit_gaps``: prove that every numbering series is whole.

Exit status: 0 when the books are clean, 1 when there are findings, 2 for bad arguments (and
for a checkpoint that cannot be read or verified, or a checkpoint to write without a key).
"""

import argparse
import json
import os
import re
import sys
from datetime import date
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from counters import chain, checkpoint, patterns
from counters.audit import AuditScope, company_names, run_audit
from counters.models import SERIES_CHOICES, split_series_key


def counter_key(value):
    """A --series value: a counter (invoice, credit_note, quote, shared), after a named
    series' code and a slash."""
    code, counter = split_series_key(value)
    if counter not in dict(SERIES_CHOICES) or not re.fullmatch(r"[A-Z0-9]*", code):
        choices = ", ".join(dict(SERIES_CHOICES))
        raise argparse.ArgumentTypeError(
            f"invalid choice: {value!r} (choose from {choices}, or CODE/one of them)")
    return value


def bad_argument(message):
    return CommandError(message, returncode=2)


def parse_date(text, option):
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise bad_argument(f"{option} takes a date as YYYY-MM-DD, not {text!r}.") from None


class Command(BaseCommand):
    help = (
        "Audit document numbering: gaps, duplicates, numbered drafts, issued documents "
        "without a number, ledger mismatches, chronology breaks and tampering (hash chain). "
        "Deliberate jumps are listed with their reason. Exit status 0 when clean, 1 when "
        "there are findings, 2 for bad arguments."
    )
    stealth_options = ("stdin",)
    # A read of the books, run each night: the system checks would load the URL conf and the
    # API's schemas, which it never uses ("manage.py check" and every other command run them).
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--company", help="Company id or exact name (default: all).")
        parser.add_argument(
            "--series", type=counter_key,
            help="Only this counter: invoice, credit_note, quote or shared, after a named "
                 "series' code and a slash for that series (SHOP/invoice).",
        )
        parser.add_argument(
            "--period",
            help="Only this period: 2026, 2026-03, 2026/04 (the fiscal year from April 2026), "
                 "or 'none' for series that never restart.",
        )
        parser.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD",
                            help="Only findings dated on or after this day.")
        parser.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD",
                            help="Only findings dated on or before this day.")
        parser.add_argument("--json", action="store_true", help="Print one JSON document.")
        parser.add_argument(
            "--checkpoint", metavar="FILE",
            help="Also check that every chain still reaches its head in this signed "
                 "checkpoint ('-': standard input); a chain that does not is 'truncated'.")
        parser.add_argument(
            "--write-checkpoint", metavar="FILE",
            help="When the audit is clean, write the head of every chain to FILE, signed with "
                 "the ledger key ('-': standard output; the report then goes to standard "
                 "error). Keep it off the database host.")

    def handle(self, *args, **options):
        scope = self.scope(options)
        anchor = self.read_checkpoint(options["checkpoint"], options.get("stdin"))
        target = options["write_checkpoint"]
        if target:
            key = self.key("--write-checkpoint")
            if scope != AuditScope():
                raise bad_argument("--write-checkpoint covers every series: it takes no "
                                   "--company, --series, --period, --from or --to.")
            # Read before the audit, so that every head written has been audited.
            heads = checkpoint.current_heads()
        self.out = self.stderr if target == "-" else self.stdout
        audit = run_audit(scope, anchor)
        if options["json"]:
            count = self.write_json(audit)
        else:
            count = self.write_text(audit, options["verbosity"])
        if count:
            # Findings are not an error in the command, but cron and CI must see them.
            not_written = " No checkpoint written." if target else ""
            raise CommandError(f"{count} finding(s).{not_written}", returncode=1)
        if target:
            self.write_checkpoint(target, checkpoint.build(heads, key))
            if options["verbosity"] >= 1 and not options["json"]:
                self.out.write(f"Checkpoint of {len(heads)} chain(s) written to "
                               f"{'standard output' if target == '-' else target}.")

    def key(self, option):
        key = chain.ledger_key()
        if not key:
            raise bad_argument(
                f"{option} needs the ledger key, which the database does not hold: set "
                f"FOLIO_LEDGER_KEY or FOLIO_LEDGER_KEY_FILE.")
        return key

    def read_checkpoint(self, name, stdin):
        if not name:
            return None
        key = self.key("--checkpoint")
        try:
            text = (stdin or sys.stdin).read() if name == "-" else Path(name).read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise bad_argument(f"Cannot read the checkpoint {name}: {error}.") from None
        try:
            return checkpoint.load(text, key)
        except checkpoint.CheckpointError as error:
            raise bad_argument(f"Checkpoint {name} refused: {error}.") from None

    def write_checkpoint(self, name, document):
        text = checkpoint.dumps(document)
        if name == "-":
            self.stdout.write(text, ending="")
            return
        path = Path(name)
        partial = path.with_name(f".{path.name}.partial")
        try:
            partial.write_text(text)
            os.replace(partial, path)  # whole or not at all
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise CommandError(f"Cannot write the checkpoint {name}: {error}.",
                               returncode=2) from None

    def scope(self, options):
        scope = AuditScope(series=options["series"])
        if options["company"]:
            scope.company_id = self.company_id(options["company"])
        period = options["period"]
        if period is not None:
            if period == "" or not (period == "none" or patterns.is_period(period)):
                raise bad_argument(
                    f"--period takes YYYY, YYYY-MM, YYYY/MM (the fiscal year starting that "
                    f"month) or 'none', not {period!r}.")
            scope.period = "" if period == "none" else period
        if options["date_from"]:
            scope.date_from = parse_date(options["date_from"], "--from")
        if options["date_to"]:
            scope.date_to = parse_date(options["date_to"], "--to")
        if scope.date_from and scope.date_to and scope.date_from > scope.date_to:
            raise bad_argument("--from is after --to.")
        return scope

    def company_id(self, value):
        model = apps.get_model(settings.COUNTERS_COMPANY_MODEL)
        if value.isdigit() and model.objects.filter(pk=int(value)).exists():
            return int(value)
        matches = list(model.objects.filter(name=value).values_list("pk", flat=True)[:2])
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise bad_argument(f"Several companies are named {value!r}; give the id.")
        raise bad_argument(f"No company {value!r} (give an id or an exact name).")

    def write_text(self, audit, verbosity):
        names = company_names(s.company_id for s in audit.series)

        def company(company_id):
            if company_id not in names:
                names.update(company_names([company_id]))
            return names.get(company_id, f"company #{company_id}")

        if verbosity >= 1:
            self.out.write(f"Numbering audit: {len(audit.series)} series")
            for summary in audit.series:
                span = (f"{summary.first_value}..{summary.last_value}"
                        if summary.issued else "nothing issued")
                self.out.write(
                    f"  {company(summary.company_id)} | {summary.series} "
                    f"{summary.period or '(no reset)'}: {span}, {summary.issued} issued"
                )
                for jump in summary.explained_jumps:
                    self.out.write(
                        f"    explained jump {jump['first_value']}..{jump['last_value']} "
                        f"by {jump['by'] or 'system'} at {jump['at']}: {jump['reason']}"
                    )
        count = 0
        for finding in audit.findings:
            count += 1
            where = " ".join(
                part for part in (company(finding.company_id), finding.series, finding.period)
                if part
            )
            documents = f" [{', '.join(finding.documents)}]" if finding.documents else ""
            self.out.write(f"{finding.kind.upper()}: {where}: {finding.message}{documents}")
        if count == 0:
            self.out.write(self.style.SUCCESS("All series complete: no findings."))
        else:
            self.out.write(self.style.ERROR(f"{count} finding(s)."))
        return count

    def write_json(self, audit):
        names = company_names(s.company_id for s in audit.series)
        out = self.out
        head = {
            "scope": {
                "company": audit.scope.company_id, "series": audit.scope.series,
                "period": audit.scope.period,
                "from": audit.scope.date_from.isoformat() if audit.scope.date_from else None,
                "to": audit.scope.date_to.isoformat() if audit.scope.date_to else None,
            },
            "series": [{**s.as_dict(), "company": names.get(s.company_id)}
                       for s in audit.series],
        }
        # Findings stream out one by one, so the document is written by hand around them.
        out.write(json.dumps(head)[:-1] + ', "findings": [', ending="")
        count = 0
        for finding in audit.findings:
            out.write(("," if count else "") + json.dumps(finding.as_dict()), ending="")
            count += 1
        out.write(f'], "finding_count": {count}, "clean": {json.dumps(count == 0)}}}')
        return count
