"""
Background jobs for real: `manage.py worker` processes on a database of their own (a SQLite
file; PostgreSQL too when DATABASE_URL names one), a worker SIGKILLed in the middle of a
delivery, another one started. Synchronisation is by polling the database, never by sleeping
a guessed time.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from billing import jobs

from .conftest import ON_POSTGRES

ROOT = Path(__file__).resolve().parent.parent
SEND = ("from billing import services; from tests.factories import InvoiceFactory; "
        "services.send_document(InvoiceFactory(), email=True)")


class Database:
    """A fresh, migrated database that subprocesses share, and SQL to look into it."""

    def __init__(self, kind, tmp_path):
        self.kind = kind
        if kind == "sqlite":
            self.url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
        else:
            import psycopg

            self.name = f"folio_jobs_{uuid.uuid4().hex[:10]}"
            base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
            self.admin = f"{base}/postgres"
            with psycopg.connect(self.admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            self.url = f"{base}/{self.name}"

    def rows(self, sql):
        if self.kind == "sqlite":
            with sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=20) as conn:
                return conn.execute(sql).fetchall()
        import psycopg

        with psycopg.connect(self.url) as conn:
            return conn.execute(sql).fetchall()

    def drop(self):
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(self.admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request, tmp_path):
    if request.param == "postgres" and not ON_POSTGRES:
        pytest.skip("needs DATABASE_URL on PostgreSQL")
    database = Database(request.param, tmp_path)
    yield database
    database.drop()


def manage(env, *args, **kwargs):
    return subprocess.Popen([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            **kwargs)


def run(env, *args):
    process = manage(env, *args)
    _out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err


def wait_for(condition, what, timeout=60, processes=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        for process in processes:
            assert process.poll() is None, f"worker exited while waiting for {what}: " \
                                           f"{process.stderr.read()}"
        time.sleep(0.1)  # a polling interval, not a guess at how long anything takes
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("attempts, outcome", [(5, "sent"), (1, "failed")])
def test_a_worker_killed_in_the_middle_of_a_delivery_loses_nothing(
        database, tmp_path, attempts, outcome):
    mails, hang = tmp_path / "mails", tmp_path / "hanging"
    env = {**os.environ, "DATABASE_URL": database.url,
           "EMAIL_BACKEND": "tests.jobs.HangingEmailBackend", "EMAIL_FILE_PATH": str(mails),
           "FOLIO_JOB_LEASE": "2", "FOLIO_EMAIL_ATTEMPTS": str(attempts)}
    run(env, "migrate", "--noinput", "-v0")
    run(env, "shell", "-c", SEND)  # issued with e-mail: the delivery and its job committed
    delivery = "SELECT status, attempts, error FROM billing_emaildelivery"
    # The e-mail's job (the workers also write and run the periodic one, billing.scheduling).
    job = ("SELECT status FROM django_tasks_database_dbtaskresult "
           "WHERE task_path LIKE '%deliver_email'")
    assert database.rows(delivery) == [("pending", 0, "")]
    assert database.rows(job) == [("READY",)]

    first = manage({**env, "FOLIO_TEST_HANG_FILE": str(hang)}, "worker", "--interval", "0.1")
    try:
        wait_for(hang.exists, "the first worker to start sending", processes=[first])
        assert database.rows(delivery) == [("pending", 1, "")]
        assert database.rows(job) == [("RUNNING",)]
    finally:
        first.send_signal(signal.SIGKILL)  # in the middle of the delivery
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    assert not mails.exists() or not list(mails.iterdir())

    second = manage(env, "worker", "--interval", "0.1")
    try:
        status, tries, error = wait_for(
            lambda: [row for row in database.rows(delivery) if row[0] != "pending"],
            "the second worker to finish the delivery", processes=[second])[0]
        wait_for(lambda: database.rows(job) != [("RUNNING",)], "the job to end")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    sent = list(mails.iterdir()) if mails.exists() else []
    if outcome == "sent":
        assert (status, tries, error) == ("sent", 2, "")
        assert len(sent) == 1 and "INV-" in sent[0].read_text()  # exactly one e-mail
    else:  # its only attempt died with its worker: failed, and said why
        assert (status, tries, error) == ("failed", 1, "the worker stopped during the attempt")
        assert sent == []
    assert database.rows(job) == [("SUCCESSFUL",)]
    assert second.returncode == 0  # SIGTERM: a clean stop


@pytest.mark.django_db
def test_abandoned_jobs_are_taken_back_after_the_lease(settings):
    from datetime import timedelta

    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from billing.tasks import deliver_email

    running = DBTaskResult.objects.get(pk=deliver_email.enqueue(1).id)
    fresh = DBTaskResult.objects.get(pk=deliver_email.enqueue(2).id)
    for result, minutes in ((running, 11), (fresh, 1)):
        DBTaskResult.objects.filter(pk=result.pk).update(
            status="RUNNING", started_at=timezone.now() - timedelta(minutes=minutes))
    settings.FOLIO_JOB_LEASE = 600
    assert jobs.reclaim_abandoned() == 1
    assert DBTaskResult.objects.get(pk=running.pk).status == "READY"
    assert DBTaskResult.objects.get(pk=fresh.pk).status == "RUNNING"  # may still be at work


@pytest.mark.django_db
def test_the_periodic_work_prunes_old_finished_jobs_and_expired_idempotency_keys(settings):
    from datetime import timedelta

    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from billing import scheduling
    from billing.api.models import IdempotencyKey
    from billing.tasks import deliver_email, run_schedules

    from .factories import CompanyFactory

    settings.FOLIO_JOB_RETENTION_DAYS = 30
    now = timezone.now()

    def job(task, status, days_ago):
        result = DBTaskResult.objects.get(pk=task.enqueue(*task_args(task)).id)
        if status != "READY":
            DBTaskResult.objects.filter(pk=result.pk).update(
                status=status, finished_at=now - timedelta(days=days_ago))
        return result.pk

    def task_args(task):
        return (1,) if task is deliver_email else ()

    old_done, old_failed = job(deliver_email, "SUCCESSFUL", 31), job(run_schedules, "FAILED", 45)
    recent_done = job(deliver_email, "SUCCESSFUL", 29)
    waiting = job(deliver_email, "READY", 0)
    DBTaskResult.objects.filter(pk=waiting).update(enqueued_at=now - timedelta(days=90))
    # An e-mail job that crashed (its worker's database went away): a worker takes it back
    # and runs it again, however long none ran; pruned, its delivery would wait for ever.
    crashed = job(deliver_email, "FAILED", 45)
    company = CompanyFactory()
    expired, kept = (IdempotencyKey.objects.create(company=company, key=key, method="POST",
                                                   path="/", body_hash="")
                     for key in ("expired", "kept"))
    IdempotencyKey.objects.filter(pk=expired.pk).update(created_at=now - timedelta(days=2))

    scheduling.run()

    left = set(DBTaskResult.objects.values_list("pk", flat=True))
    assert {recent_done, waiting, crashed} <= left
    assert not {old_done, old_failed} & left
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["kept"]
    assert jobs.reclaim_abandoned() == 1  # the crashed one, ready again


def test_a_job_retention_under_a_day_is_refused_at_start():
    """0 could be read as "keep for ever"; it would prune a crashed job before its lease."""
    env = {**os.environ, "FOLIO_JOB_RETENTION_DAYS": "0"}
    process = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert process.returncode != 0
    assert "FOLIO_JOB_RETENTION_DAYS is a number of days, at least 1." in process.stderr
