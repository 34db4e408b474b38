"""
A fixed-window counter in the cache, for what must not be done too often: password reset
e-mails per address and per client address. (Login throttling is django-axes'.)

With the default per-process cache each web worker counts for itself; set CACHES to a
shared cache (Redis, database) to count across workers.
"""

import hashlib

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.dispatch import receiver

HOUR = 3600
LOGIN_WINDOW = 15 * 60


def _name(scope, key):
    return f"folio-throttle:{scope}:{hashlib.sha256(key.encode()).hexdigest()}"


def count(scope: str, key: str) -> int:
    """How many ``scope`` events ``key`` has in the current window."""
    return cache.get(_name(scope, key), 0)


def allow(scope: str, key: str, limit: int, window: int = HOUR) -> bool:
    """Count one more ``scope`` event for ``key``; False once ``limit`` is passed."""
    name = _name(scope, key)
    cache.add(name, 0, timeout=window)
    try:
        count = cache.incr(name)
    except ValueError:  # expired between add and incr
        cache.add(name, 1, timeout=window)
        count = 1
    return count <= limit


def client_address(request) -> str:
    """The client's address (behind a proxy, make REMOTE_ADDR the client's, as axes does)."""
    return request.META.get("REMOTE_ADDR", "")


def login_failures_limit() -> int:
    return getattr(settings, "FOLIO_LOGIN_FAILURES_PER_CLIENT", 30)


@receiver(user_login_failed, dispatch_uid="folio-count-login-failure")
def count_login_failure(sender, credentials, request=None, **kwargs):
    """Every failed log-in counts against its client address, whatever the username."""
    if request is not None:
        allow("login-client", client_address(request), login_failures_limit(),
              window=LOGIN_WINDOW)


def login_client_locked(request) -> bool:
    return count("login-client", client_address(request)) >= login_failures_limit()
