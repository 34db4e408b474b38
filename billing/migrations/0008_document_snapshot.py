"""
Issued documents keep their content and their history:

- every document gets a ``snapshot`` column; documents issued before it existed are
  snapshotted from their data as it is now, with the totals and tax they were issued with
  (their ledger entries carry no digest of it);
- the state must be one of the state machine's, and the database refuses the transitions
  the state machine does not allow (never back to draft, paid only from sent, cancelled only
  from sent once issued credit notes cover the invoice's net);
- documents issued before the history existed get their events now, so that the audit
  finds every issued document's state in its history;
- the guards of issued documents are installed again, covering the new column (they are
  dropped first: SQLite rebuilds the document tables, which the line tables' guards name).
"""

import json
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from importlib import import_module

from django.db import migrations, models
from django.db.models import Q
from django.utils import timezone

from counters.dbguards import create_guard, drop_guard

document_guards = import_module("billing.migrations.0002_issued_documents_guards")

STATES = ["draft", "sent", "paid", "cancelled"]
KINDS = {"Invoice": "invoice", "CreditNote": "credit_note"}
TRANSITION_REFUSED = "This change of state is not allowed by the documents' state machine."


def allowed_transition(table, vendor):
    """SQL over OLD/NEW: the state changes the state machine allows on ``table``."""
    # Credits are measured in nets, in cents (SQLite adds REALs).
    covered = (
        "(SELECT ROUND(COALESCE(SUM(c.subtotal), 0) * 100) FROM billing_creditnote c "
        "WHERE c.invoice_id = NEW.id AND c.state <> 'draft') >= ROUND(NEW.subtotal * 100)"
    )
    allowed = ["(OLD.state = 'draft' AND NEW.state = 'sent')"]
    if table == "billing_invoice":
        allowed += ["(OLD.state = 'sent' AND NEW.state = 'paid')",
                    f"(OLD.state = 'sent' AND NEW.state = 'cancelled' AND {covered})"]
    return " OR ".join(allowed)


def transition_guards(vendor):
    for table in ("billing_invoice", "billing_creditnote"):
        yield dict(name=f"{table}_transitions", table=table, event="UPDATE",
                   condition=f"OLD.state <> NEW.state AND NOT ({allowed_transition(table, vendor)})")


def drop_document_guards(apps, schema_editor):
    # SQLite rebuilds the document tables below, which the line tables' guards refer to.
    document_guards.remove(apps, schema_editor)


def install_guards(apps, schema_editor):
    document_guards.install(apps, schema_editor)
    for guard in transition_guards(schema_editor.connection.vendor):
        create_guard(schema_editor, message=TRANSITION_REFUSED, **guard)


def remove_guards(apps, schema_editor):
    for guard in transition_guards(schema_editor.connection.vendor):
        drop_guard(schema_editor, name=guard["name"], table=guard["table"])
    document_guards.remove(apps, schema_editor)


# Frozen here, as they were when this migration was written: what a snapshot holds, and
# what an event's hash covers (counters.models.StateEvent.HASHED_FIELDS).
SELLER_FIELDS = BUYER_FIELDS = ("name", "address", "vat_id", "email")
EVENT_FIELDS = ("company_id", "seq", "kind", "document_id", "from_state", "to_state",
                "actor_id", "at", "reason", "previous_hash")
CENT = Decimal("0.01")


def cents(amount):
    return Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)


def legacy_snapshot(document, kind):
    """
    The snapshot of a document issued before snapshots existed: its data as it is now, with
    the totals it was issued with and tax groups by the rule it was issued under (each
    line's tax rounded on its own), so that they add up to its stored tax.
    """
    lines, groups = [], {}
    for line in document.lines.all():
        net = cents(line.quantity * line.unit_price)
        taxable, tax = groups.get(line.tax_rate, (Decimal("0.00"), Decimal("0.00")))
        groups[line.tax_rate] = (taxable + net, tax + cents(net * line.tax_rate / 100))
        lines.append({"description": line.description, "quantity": str(line.quantity),
                      "unit_price": str(line.unit_price), "tax_rate": str(line.tax_rate),
                      "net_amount": str(net)})
    company, client = document.company, document.client
    data = {
        "kind": kind,
        "seller": {name: getattr(company, name) for name in SELLER_FIELDS},
        "buyer": {name: getattr(client, name) for name in BUYER_FIELDS},
        "currency": document.currency, "locale": company.locale,
        "issue_date": document.issue_date.isoformat(),
        "due_date": document.due_date.isoformat() if document.due_date else None,
        "payment_terms_days": company.payment_terms_days, "notes": document.notes,
        "lines": lines,
        "groups": [{"category": "S", "rate": str(rate), "taxable": str(taxable),
                    "tax": str(tax)} for rate, (taxable, tax) in sorted(groups.items())],
        "subtotal": str(document.subtotal), "tax": str(document.tax_total),
        "total": str(document.total),
    }
    if kind == "credit_note":
        data["corrects"] = {"number": document.invoice_number,
                            "issue_date": document.invoice_issue_date.isoformat()
                            if document.invoice_issue_date else None}
        data["reason"] = document.reason
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_content(values):
    def text(value):
        if value is None:
            return ""
        if isinstance(value, datetime):
            return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
        return str(value)

    return "|".join(text(values[name]) for name in EVENT_FIELDS)


def snapshot_and_record_issued(apps, schema_editor):
    """
    Snapshot the documents issued before snapshots existed, and give them their history.
    Safe to run again: what already has a snapshot or events is left as it is.
    """
    from counters.chain import digest

    StateEvent = apps.get_model("counters", "StateEvent")
    EventChain = apps.get_model("counters", "EventChain")
    now = timezone.now()
    heads = {head.company_id: head for head in EventChain.objects.all()}
    recorded = set(StateEvent.objects.values_list("kind", "document_id"))
    events = []
    for model_name, kind in KINDS.items():
        model = apps.get_model("billing", model_name)
        documents = (model.objects.exclude(state="draft")
                     .select_related("company", "client").prefetch_related("lines")
                     .order_by("company_id", "issue_date", "id"))
        for document in documents.iterator(chunk_size=2000):
            if not document.snapshot:
                model.objects.filter(pk=document.pk).update(
                    snapshot=legacy_snapshot(document, kind))
            if (kind, document.pk) in recorded:
                continue
            head = heads.get(document.company_id)
            if head is None:
                head = heads[document.company_id] = EventChain.objects.create(
                    company_id=document.company_id, last=0, last_hash="")
            steps = [("draft", "sent")]
            if document.state != "sent":
                steps.append(("sent", document.state))
            for from_state, to_state in steps:
                values = dict(company_id=document.company_id, seq=head.last + 1, kind=kind,
                              document_id=document.pk, from_state=from_state,
                              to_state=to_state, actor_id=None, at=now,
                              reason="Recorded when the history began.",
                              previous_hash=head.last_hash)
                event = StateEvent(**values, event_hash=digest(event_content(values)))
                events.append(event)
                head.last, head.last_hash = event.seq, event.event_hash
            if len(events) >= 2000:
                StateEvent.objects.bulk_create(events)
                events = []
    StateEvent.objects.bulk_create(events)
    for head in heads.values():
        head.save(update_fields=["last", "last_hash"])


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0007_remove_company_clients_token'),
        ('counters', '0009_state_history'),
    ]

    operations = [
        migrations.RunPython(drop_document_guards, document_guards.install),
        migrations.AddField(
            model_name='creditnote',
            name='snapshot',
            field=models.TextField(blank=True, default='', editable=False, verbose_name='content at issue'),
        ),
        migrations.AddField(
            model_name='invoice',
            name='snapshot',
            field=models.TextField(blank=True, default='', editable=False, verbose_name='content at issue'),
        ),
        migrations.RunPython(snapshot_and_record_issued, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='invoice',
            constraint=models.CheckConstraint(condition=Q(state__in=STATES), name='billing_invoice_state_valid'),
        ),
        migrations.AddConstraint(
            model_name='creditnote',
            constraint=models.CheckConstraint(condition=Q(state__in=["draft", "sent"]), name='billing_creditnote_state_valid'),
        ),
        migrations.RunPython(install_guards, remove_guards),
    ]
