from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from billing.einvoice.exports import SYNTAXES, NotExportable, export
from billing.models import CreditNote, Invoice

MODELS = {"invoice": Invoice, "credit_note": CreditNote}


class Command(BaseCommand):
    help = ("Write an issued invoice or credit note as an e-invoice: Peppol UBL, CII or a "
            "Factur-X PDF (XML to stdout without -o).")

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=sorted(MODELS))
        parser.add_argument("id", type=int)
        parser.add_argument("--syntax", choices=SYNTAXES, required=True)
        parser.add_argument("-o", "--output", help="the file to write")

    def handle(self, *args, kind, id, syntax, output, **options):
        document = MODELS[kind].objects.filter(pk=id).first()
        if document is None:
            raise CommandError(f"There is no {kind.replace('_', ' ')} with id {id}.",
                               returncode=2)
        try:
            result = export(document, syntax)
        except NotExportable as error:
            raise CommandError(f"{document}: {error}", returncode=2) from error
        if output:
            Path(output).write_bytes(result.data)
            self.stderr.write(f"Wrote {output} ({len(result.data)} bytes).")
        elif syntax == "facturx":
            raise CommandError("A Factur-X PDF is binary: write it to a file with -o.",
                               returncode=2)
        else:
            self.stdout.write(result.data.decode())
