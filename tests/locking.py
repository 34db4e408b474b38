"""Helpers for tests that need a lock held by another connection (PostgreSQL)."""

import threading
from contextlib import contextmanager

from django.db import connection, connections, transaction


@contextmanager
def held_in_another_transaction(action):
    """
    Run ``action`` in a transaction on another thread (its own connection) and keep that
    transaction open, with the locks it took, until the ``with`` block ends; then commit.
    """
    done, release, errors = threading.Event(), threading.Event(), []

    def hold():
        try:
            with transaction.atomic():
                action()
                done.set()
                assert release.wait(timeout=30)
        except BaseException as error:  # noqa: BLE001 - re-raised by the test's thread
            errors.append(error)
            done.set()
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert done.wait(timeout=30), "the other transaction did not get its locks"
        if errors:
            raise errors[0]
        yield
    finally:
        release.set()
        holder.join(timeout=30)
    assert not holder.is_alive(), "the other transaction hung"


def lock_timeout(duration):
    """In the current transaction, fail on any lock wait longer than ``duration``."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{duration}'")
