"""
The document models that counters numbers, registered by the app that owns them (billing
does it in ``AppConfig.ready()``). The audit reads their tables through this registry, so
counters never imports that app.

A registered model has the columns ``company_id``, ``state``, ``number``, ``issue_date``,
``total`` and ``currency``; ``draft_state`` is the state of a document not yet issued.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class DocumentKind:
    kind: str
    model: type
    draft_state: str

    @property
    def table(self):
        return self.model._meta.db_table


_kinds: dict[str, DocumentKind] = {}


def register(kind, model, *, draft_state="draft"):
    _kinds[str(kind)] = DocumentKind(str(kind), model, draft_state)


def registered() -> list[DocumentKind]:
    return list(_kinds.values())
