"""
``manage.py rekey_ledger``: re-hash the whole ledger under the configured ledger key, once,
when an installation turns a key on (or changes it). Keyed or not is per installation: with a
key, the audit expects every entry hashed under it.

It first verifies every entry and chain link under the old hashing (unkeyed, or the key in
``--from-key-file``) and refuses to rewrite anything if one does not verify: a damaged ledger
is never laundered into a keyed one. Then, in one transaction and past the ledger's guards
(on PostgreSQL that needs a superuser), it rewrites each series' chain in order and the
sequences' heads. Run ``audit_gaps`` (with the last checkpoint) before, and write a new
checkpoint after: old checkpoints were signed with the old key.

Exit status: 0 re-keyed, 1 the ledger does not verify (nothing changed), 2 bad arguments.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection, transaction

from counters import chain
from counters.dbguards import guards_lifted
from counters.models import EventChain, IssuedNumber, Sequence, StateEvent

BATCH = 5000


class Command(BaseCommand):
    help = ("Re-hash the ledger under the configured ledger key (FOLIO_LEDGER_KEY[_FILE]), "
            "after verifying it under the old hashing. Run as a database superuser, with the "
            "application stopped.")

    def add_arguments(self, parser):
        parser.add_argument("--from-key-file", metavar="FILE",
                            help="The key the ledger is hashed with now (default: none).")

    def handle(self, *args, from_key_file=None, **options):
        new_key = chain.ledger_key()
        if not new_key:
            raise CommandError("Set the new key first: FOLIO_LEDGER_KEY or "
                               "FOLIO_LEDGER_KEY_FILE.", returncode=2)
        old_key = b""
        if from_key_file:
            try:
                old_key = Path(from_key_file).read_bytes().strip()
            except OSError as error:
                raise CommandError(f"Cannot read {from_key_file}: {error.strerror}.",
                                   returncode=2) from None
        if old_key == new_key:
            raise CommandError("The ledger is already hashed with this key.", returncode=2)
        try:
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    # No issue in between (allocations update the sequences).
                    with connection.cursor() as cursor:
                        cursor.execute(f"LOCK TABLE {Sequence._meta.db_table}, "
                                       f"{IssuedNumber._meta.db_table} IN EXCLUSIVE MODE")
                bad, first = 0, None
                for number, _id in self.entries_with_links(old_key):
                    if number:
                        bad, first = bad + 1, first or number
                if bad:
                    raise CommandError(
                        f"{bad} ledger entries do not verify under the old hashing "
                        f"(first: {first}). Nothing was changed: run audit_gaps and resolve "
                        f"its findings.", returncode=1)
                broken = self.unverified_events(old_key)
                if broken:
                    raise CommandError(
                        f"{broken} events of the documents' history do not verify under the "
                        f"old hashing. Nothing was changed: run audit_gaps and resolve its "
                        f"findings.", returncode=1)
                with guards_lifted(connection):
                    count = self.rewrite(new_key)
                    self.rewrite_history(new_key)
        except DatabaseError as error:
            raise CommandError(f"Nothing was changed: {error}".strip(), returncode=2) from None
        self.stdout.write(f"Re-keyed {count} ledger entries and the documents' history "
                          f"(key id {chain.key_id(new_key)}). "
                          f"Now write a new checkpoint: audit_gaps --write-checkpoint FILE.")

    def rows(self):
        """The ledger in chain order, in batches (the connection stays free for writes)."""
        columns = ", ".join(IssuedNumber._meta.get_field(name).column
                            for name in chain.CONTENT_FIELDS)
        table = IssuedNumber._meta.db_table
        after = None
        while True:
            where, params = "", []
            if after:
                where = "WHERE (company_id, series, period, value) > (%s, %s, %s, %s)"
                params = list(after)
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT {columns}, entry_hash, id FROM {table} {where} "
                               f"ORDER BY company_id, series, period, value LIMIT {BATCH}",
                               params)
                batch = cursor.fetchall()
            if not batch:
                return
            yield from batch
            after = batch[-1][:4]

    def entries_with_links(self, old_key):
        """(the number of an entry that does not verify, or None; its id), for each entry."""
        width = len(chain.CONTENT_FIELDS)
        previous_series, previous_hash = None, chain.GENESIS
        link = chain.CONTENT_FIELDS.index("previous_hash")
        for row in self.rows():
            series = row[:3]
            if series != previous_series:
                previous_series, previous_hash = series, chain.GENESIS
            content, stored = row[:width], row[width]
            ok = chain.row_hash(content, old_key) == stored and content[link] == previous_hash
            yield (None if ok else row[4]), row[width + 1]
            previous_hash = stored

    def rewrite(self, key):
        width = len(chain.CONTENT_FIELDS)
        link = chain.CONTENT_FIELDS.index("previous_hash")
        table = IssuedNumber._meta.db_table
        previous_series, previous_hash, count = None, chain.GENESIS, 0
        updates, heads = [], {}
        for row in self.rows():
            series = row[:3]
            if series != previous_series:
                previous_series, previous_hash = series, chain.GENESIS
            content = list(row[:width])
            content[link] = previous_hash
            previous_hash = chain.row_hash(content, key)
            updates.append((content[link], previous_hash, row[width + 1]))
            heads[series] = previous_hash
            count += 1
            if len(updates) >= BATCH:
                self.flush(table, updates)
        self.flush(table, updates)
        for (company_id, series, period), head in heads.items():
            Sequence.objects.filter(company_id=company_id, series=series,
                                    period=period).update(last_hash=head)
        return count

    def history(self):
        """The documents' history, company by company, in chain order."""
        return StateEvent.objects.order_by("company_id", "seq").iterator(chunk_size=BATCH)

    def unverified_events(self, old_key):
        broken, company, previous = 0, None, chain.GENESIS
        for event in self.history():
            if event.company_id != company:
                company, previous = event.company_id, chain.GENESIS
            if (event.previous_hash != previous
                    or chain.record_hash(event, key=old_key) != event.event_hash):
                broken += 1
            previous = event.event_hash
        return broken

    def rewrite_history(self, key):
        company, previous, updates = None, chain.GENESIS, []
        for event in self.history():
            if event.company_id != company:
                company, previous = event.company_id, chain.GENESIS
            event.previous_hash = previous
            event.event_hash = previous = chain.record_hash(event, key=key)
            updates.append(event)
            EventChain.objects.filter(company_id=company).update(last_hash=previous)
            if len(updates) >= BATCH:
                StateEvent.objects.bulk_update(updates, ["previous_hash", "event_hash"])
                updates = []
        StateEvent.objects.bulk_update(updates, ["previous_hash", "event_hash"])

    def flush(self, table, updates):
        if updates:
            with connection.cursor() as cursor:
                cursor.executemany(f"UPDATE {table} SET previous_hash = %s, entry_hash = %s "
                                   f"WHERE id = %s", updates)
            updates.clear()
