import os
from datetime import date
from unittest import mock

import pytest
from django.db.backends.sqlite3 import base as sqlite3_base

from counters.dbguards import guards_lifted

ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres", "postgresql"))


def pytest_collection_modifyitems(config, items):
    """PostgreSQL-only tests are deselected (not skipped) when the suite runs on SQLite."""
    if ON_POSTGRES:
        return
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("postgres") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


SQLiteOperations = sqlite3_base.DatabaseOperations
_flush = SQLiteOperations.execute_sql_flush


def _flush_past_guards(self, sql_list):
    """
    Transactional tests empty the tables between tests. PostgreSQL's TRUNCATE does not fire
    row triggers; SQLite's DELETE does, and the append-only guards would refuse it.
    """
    with guards_lifted(self.connection):
        _flush(self, sql_list)


SQLiteOperations.execute_sql_flush = _flush_past_guards


@pytest.fixture
def issue_on():
    """Freeze "today" for issuing and previews: ``issue_on(date(2026, 12, 31))``."""
    patches = []

    def freeze(day: date):
        patcher = mock.patch("django.utils.timezone.localdate", return_value=day)
        patcher.start()
        patches.append(patcher)

    yield freeze
    for patcher in reversed(patches):
        patcher.stop()


@pytest.fixture(autouse=True)
def plain_static_files(settings):
    """Tests render pages without running collectstatic first."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_AUTOREFRESH = True


@pytest.fixture(autouse=True)
def empty_cache():
    """Throttle counters live in the cache: each test starts without another's."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def run_jobs():
    """Run the background jobs that are due, in this process (what `manage.py worker`
    does), for tests that are not about durability: ``run_jobs()``."""
    from billing.jobs import run_ready_jobs

    return run_ready_jobs
