"""
The ledger's hash chain. Each entry's hash covers its own content and the hash of the entry
before it in the same sequence (company, series, period), so that changing or removing an
entry, or the document it records, with raw SQL shows when the audit recomputes the chain.

The content is a '|'-joined text that both Python (at issue) and SQL (in the audit) build.
"""

import hashlib

GENESIS = ""  # the previous hash of a sequence's first entry


def entry_content(*, company_id, series, period, value, number, kind, document_id, issue_date,
                  total, currency, previous_hash) -> str:
    return "|".join([
        str(company_id), series, period, str(value), number, str(kind), str(document_id),
        issue_date.isoformat(), f"{total:.2f}", currency, previous_hash,
    ])


def content_around_value(*, company_id, series, period, kind, document_id, issue_date, total,
                         currency) -> tuple[str, str]:
    """
    The content before the value and after the number, for SQL that computes the hash:
    ``head + value + '|' + number + tail + previous_hash``.
    """
    head = f"{company_id}|{series}|{period}|"
    tail = f"|{kind}|{document_id}|{issue_date.isoformat()}|{total:.2f}|{currency}|"
    return head, tail


def entry_hash(**content) -> str:
    return hashlib.sha256(entry_content(**content).encode()).hexdigest()
