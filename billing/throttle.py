"""
A fixed-window counter in the cache, for what must not be done too often: password reset
e-mails per address and per client address. (Login throttling is django-axes'.)

With the default per-process cache each web worker counts for itself; set CACHES to a
shared cache (Redis, database) to count across workers.
"""

import hashlib

from django.core.cache import cache

HOUR = 3600


def allow(scope: str, key: str, limit: int, window: int = HOUR) -> bool:
    """Count one more ``scope`` event for ``key``; False once ``limit`` is passed."""
    name = f"folio-throttle:{scope}:{hashlib.sha256(key.encode()).hexdigest()}"
    cache.add(name, 0, timeout=window)
    try:
        count = cache.incr(name)
    except ValueError:  # expired between add and incr
        cache.add(name, 1, timeout=window)
        count = 1
    return count <= limit
