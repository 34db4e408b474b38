"""
Checkpoints anchor the hash chains outside the database.

A hash chain shows an entry changed or removed in the middle, but not the last entries of a
series deleted together with their documents (the chain that remains is whole), nor, without
the ledger key, a chain recomputed from an edited entry onward. A checkpoint records the head
of every chain (its last position and hash) at a moment the audit found the books clean,
signed with HMAC-SHA256 under the ledger key (which the database does not hold), and is kept
off the database host. Checking the books against it later reports ``truncated`` for every
chain that no longer reaches its checkpointed head with the same hash.

The format is generic over a list of heads, one entry per chain, each with a ``kind``::

    {"format": "folio-checkpoint/1", "written_at": "2026-12-03T02:00:00+00:00",
     "key_id": "<fingerprint of the key>",
     "chains": [{"kind": "ledger", "company_id": 1, "series": "invoice", "period": "2026",
                 "last": 42, "number": "INV-2026-0042", "hash": "<64 hex>"}, ...],
     "signature": "<HMAC-SHA256 of the canonical JSON of everything but the signature>"}

The canonical JSON is ``json.dumps(..., sort_keys=True, separators=(",", ":"))``, so the
file's own layout does not matter. Each kind of chain is registered once with ``register``:
how to read its current heads, which fields a head has, and how to check heads against the
books. The ledger registers here; another chain (e.g. a per-company event history) registers
the same way and its heads then appear in every checkpoint written.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.utils import timezone

from . import audit, chain

FORMAT = "folio-checkpoint/1"


class CheckpointError(Exception):
    """The checkpoint is malformed, signed with another key, or its signature fails."""


@dataclass(frozen=True)
class ChainKind:
    fields: dict[str, type]  # what a head of this kind holds besides "kind", with its type
    heads: Callable[[], Iterable[dict]]  # the current heads, each a dict of ``fields``
    check: Callable[[list[dict], audit.AuditScope, str], Iterable[audit.Finding]]
    # (checkpointed heads, scope, written_at) -> findings


CHAIN_KINDS: dict[str, ChainKind] = {}


def register(kind: str, *, fields: dict[str, type], heads, check):
    CHAIN_KINDS[kind] = ChainKind(fields=fields, heads=heads, check=check)


register(
    "ledger",
    fields={"company_id": int, "series": str, "period": str, "last": int, "number": str,
            "hash": str},
    heads=audit.ledger_heads,
    check=audit.truncated_findings,
)
register(
    "history",
    fields={"company_id": int, "last": int, "hash": str},
    heads=audit.history_heads,
    check=audit.truncated_history_findings,
)


def canonical(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign(payload: dict, key: bytes) -> str:
    return hmac.digest(key, canonical(payload), "sha256").hex()


def current_heads() -> list[dict]:
    return [{"kind": kind, **head} for kind, spec in CHAIN_KINDS.items() for head in spec.heads()]


def build(heads: list[dict], key: bytes) -> dict:
    """A signed checkpoint document of ``heads`` (from ``current_heads``)."""
    payload = {"format": FORMAT, "written_at": timezone.now().isoformat(timespec="seconds"),
               "key_id": chain.key_id(key), "chains": heads}
    return {**payload, "signature": sign(payload, key)}


def dumps(document: dict) -> str:
    """One head per line, so that two checkpoints diff readably."""
    chains = ",\n".join("  " + json.dumps(head, sort_keys=True) for head in document["chains"])
    head = {k: v for k, v in document.items() if k not in ("chains", "signature")}
    return (json.dumps(head, sort_keys=True)[:-1] + ',\n "chains": [\n' + chains + "\n ],\n"
            f' "signature": {json.dumps(document["signature"])}}}\n')


@dataclass
class Checkpoint:
    written_at: str
    chains: list[dict]

    def findings(self, scope):
        for kind, spec in CHAIN_KINDS.items():
            heads = [c for c in self.chains if c["kind"] == kind]
            if heads:
                yield from spec.check(heads, scope, self.written_at)


def load(text: str, key: bytes) -> Checkpoint:
    """The checkpoint in ``text``, once its signature under ``key`` is verified."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise CheckpointError(f"not JSON ({error})") from None
    if not isinstance(document, dict):
        raise CheckpointError("not a checkpoint (a JSON object is expected)")
    if document.get("format") != FORMAT:
        raise CheckpointError(f"not a checkpoint of format {FORMAT}")
    signature = document.pop("signature", None)
    if not isinstance(signature, str):
        raise CheckpointError("it carries no signature")
    if document.get("key_id") != chain.key_id(key):
        raise CheckpointError(
            f"it was signed with another key (key id {document.get('key_id')!r}; the "
            f"configured key's id is {chain.key_id(key)!r})")
    if not hmac.compare_digest(sign(document, key), signature):
        raise CheckpointError("its signature does not match: it was altered after it was "
                              "written, or not written by Folio")
    chains, written_at = document.get("chains"), document.get("written_at")
    if not isinstance(chains, list) or not isinstance(written_at, str):
        raise CheckpointError("it has no list of chains or no date")
    for head in chains:
        spec = CHAIN_KINDS.get(head.get("kind")) if isinstance(head, dict) else None
        if spec is None:
            raise CheckpointError(f"unknown chain {head!r}")
        for name, kind in spec.fields.items():
            if not isinstance(head.get(name), kind) or isinstance(head.get(name), bool):
                raise CheckpointError(f"chain {head!r}: {name} missing or not a {kind.__name__}")
    return Checkpoint(written_at=written_at, chains=chains)
