"""
Month-end runs: many drafts sent in the background, each in its own transaction.

``start`` writes the run (a ``SendBatch`` with one item per draft) and the one job that sends
it (``billing.tasks.send_batch``) in one transaction: a rolled-back start leaves neither.
The job (``run``) sends the items still pending with ``send_item``, which is also what
``manage.py send_drafts`` calls: one item, one transaction, in which the draft is issued
by ``billing.services.send_document`` *and* the item records it (its number), or the send
is rolled back and the item then records why it failed. One failure neither stops nor
undoes the others.

A worker may die during a run (SIGKILL, power): the job is then run again
(``billing.jobs.reclaim_abandoned``) and goes on with the items still pending; an item
with an outcome is never sent again. The job works for at most ``time_budget()`` seconds,
then queues its own continuation: a long run never outlives the job lease, and other jobs
(the e-mails it queues) run in between. Two runs of one job at once are harmless: they
queue on each draft's row lock, and the second finds the draft issued and its item
recorded, and leaves it.
"""

import time
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import DOCUMENT_MODELS, DRAFT, SendBatch, SendBatchItem
from .permissions import Action, user_can

MODELS = DOCUMENT_MODELS
Outcome = SendBatchItem.Outcome
CHUNK = 200  # pending items read at once


def drafts(company, kind, *, ids=None, client=None, recurring=None):
    """
    The ids of ``company``'s drafts of ``kind``: among ``ids``, of ``client``, made by the
    ``recurring`` schedule (invoices), for those given.
    """
    query = MODELS[kind].objects.filter(company=company, state=DRAFT)
    if ids is not None:
        query = query.filter(pk__in=ids)
    if client is not None:
        query = query.filter(client=client)
    if recurring is not None:
        query = query.filter(recurring=recurring)
    return list(query.order_by("pk").values_list("pk", flat=True))


def create(company, kind, document_ids, user=None, *, email=True) -> SendBatch:
    """
    A run of these drafts in ``user``'s name (None: the operator, on the command line),
    refused unless their role allows sending in ``company``. No job: see ``start``.
    """
    if user is not None and not user_can(user, company.pk, Action.SEND):
        raise PermissionDenied(_("Your role does not allow sending."))
    if not document_ids:
        raise ValidationError(_("Select at least one draft."), code="empty")
    with transaction.atomic():
        batch = SendBatch.objects.create(company=company, kind=kind, created_by=user,
                                         email=email)
        SendBatchItem.objects.bulk_create(
            SendBatchItem(batch=batch, document_id=pk) for pk in document_ids)
    return batch


def start(company, kind, document_ids, user, *, email=True) -> SendBatch:
    """A run of these drafts and the job that sends them, in one transaction."""
    from .tasks import send_batch

    with transaction.atomic():
        batch = create(company, kind, document_ids, user, email=email)
        send_batch.enqueue(batch.pk)
    return batch


class OutcomeRecorded(Exception):
    """Another run recorded the item's outcome first: this send is rolled back."""


def send_item(item_id, model, user, email, *, document_id=None) -> SendBatchItem | None:
    """
    Send one item's draft and record its outcome. Returns the item, or None when it has an
    outcome already. ``document_id`` is the item's draft, when the caller read it with the
    item (it is read otherwise).

    The draft is issued by ``send_document`` with the item's outcome written last in that
    same transaction, as a top-level transaction: no savepoint, the fewest round trips
    beside a send one by one. An issued draft so always has its outcome, and an item
    without one was never issued. A send that fails is rolled back whole, and its reason is
    then recorded in a transaction of its own, unless another run recorded an outcome first.
    Two runs sending one item queue on the draft's row lock: the second finds it issued and
    its item recorded, and leaves it.
    """
    from .services import send_document

    if document_id is None:
        document_id = (SendBatchItem.objects.filter(pk=item_id, outcome=Outcome.PENDING)
                       .values_list("document_id", flat=True).first())
        if document_id is None:
            return None

    def record_issued(document):
        if not SendBatchItem.objects.filter(pk=item_id, outcome=Outcome.PENDING).update(
                outcome=Outcome.ISSUED, number=document.number, finished_at=timezone.now()):
            raise OutcomeRecorded

    try:
        document = send_document(model(pk=document_id), user=user, email=email,
                                 on_issued=record_issued)
    except OutcomeRecorded:
        return None
    except model.DoesNotExist:
        reason = _("The draft no longer exists.")
    except (ValidationError, DatabaseError) as error:
        reason = " ".join(getattr(error, "messages", None) or [str(error)])
    else:
        return SendBatchItem(pk=item_id, document_id=document_id, outcome=Outcome.ISSUED,
                             number=document.number)
    with transaction.atomic():
        item = (SendBatchItem.objects.select_for_update()
                .filter(pk=item_id, outcome=Outcome.PENDING).first())
        if item is None:
            return None
        item.outcome, item.reason, item.finished_at = Outcome.FAILED, reason, timezone.now()
        item.save(update_fields=["outcome", "reason", "finished_at"])
    return item


def pending(batch):
    """The (id, document id) of the batch's items without an outcome, in order."""
    return batch.items.filter(outcome=Outcome.PENDING).order_by("pk").values_list(
        "pk", "document_id")


def time_budget() -> float:
    """How long one job works before it queues its continuation: well within the lease."""
    return max(min(settings.FOLIO_JOB_LEASE / 4, 60), 1)


def run(batch_id: int, budget: float | None = None) -> str:
    """The job: send the run's pending items for ``budget`` seconds at most."""
    from .tasks import send_batch

    batch = SendBatch.objects.select_related("created_by").filter(pk=batch_id).first()
    if batch is None or batch.state == SendBatch.State.DONE:
        return "done"
    user, model = batch.created_by, MODELS[batch.kind]
    if user is not None and not user_can(user, batch.company_id, Action.SEND):
        # Their role changed since they started it: what is left is not sent in their name.
        batch.items.filter(outcome=Outcome.PENDING).update(
            outcome=Outcome.FAILED, finished_at=timezone.now(),
            reason=_("The role of the person who started the run no longer allows sending."))
        return finish(batch)
    deadline = time.monotonic() + (time_budget() if budget is None else budget)
    held = set()  # items another run of this job is sending: theirs to finish
    while items := list(pending(batch).exclude(pk__in=held)[:CHUNK]):
        for item_id, document_id in items:
            if send_item(item_id, model, user, batch.email, document_id=document_id) is None:
                held.add(item_id)
            if time.monotonic() >= deadline and pending(batch).exclude(pk__in=held).exists():
                send_batch.enqueue(batch.pk)  # the rest, by the next job
                return "continued"
    if pending(batch).exists():
        # Held by another run: if it dies before their outcome, a later job sends them.
        send_batch.using(run_after=timezone.now() + timedelta(seconds=time_budget())) \
            .enqueue(batch.pk)
        return "held"
    return finish(batch)


def finish(batch) -> str:
    SendBatch.objects.filter(pk=batch.pk, state=SendBatch.State.RUNNING).update(
        state=SendBatch.State.DONE, finished_at=timezone.now())
    return "done"


def progress(batch) -> dict:
    """How many items are issued, failed and remaining, with the total and a percentage."""
    counts = dict(batch.items.values_list("outcome").annotate(n=Count("pk")).order_by())
    total = sum(counts.values())
    done = counts.get(Outcome.ISSUED, 0) + counts.get(Outcome.FAILED, 0)
    return {"issued": counts.get(Outcome.ISSUED, 0), "failed": counts.get(Outcome.FAILED, 0),
            "remaining": counts.get(Outcome.PENDING, 0), "total": total,
            "percent": int(100 * done / total) if total else 100}
