"""
Settings for ``manage.py bench_numbering``: Folio's own, plus django-sequences (the "bench"
extra), the peer that the benchmark compares Folio's send with. Folio's app list never
depends on which packages are installed; only this module adds the peer's app and its table:

    python manage.py migrate --settings=billing.settings_bench
    python manage.py bench_numbering --settings=billing.settings_bench
"""

from .settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "sequences"]  # noqa: F405
