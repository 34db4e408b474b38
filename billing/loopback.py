"""
Serve Folio with gunicorn on 127.0.0.1 for benchmarks, load runs and tests: never another
address, always stopped afterwards.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from django.conf import settings
from django.db import connection


def database_url():
    """The URL of the database this process uses, for a server to use the same one."""
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return (f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:"
            f"{s['PORT'] or 5432}/{s['NAME']}")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def gunicorn(workers=2, threads=1, timeout=60):
    """Serve this process's database with gunicorn; yield the base URL; stop it after."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url(), "ALLOWED_HOSTS": "127.0.0.1",
           "DEBUG": "0"}
    # With DEBUG off, pages name their static files through the collected manifest: collect
    # them with the server's own settings.
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
                   cwd=settings.BASE_DIR, env=env, check=True, timeout=300)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "billing.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "--timeout", str(timeout),
         "--log-level", "warning"],
        cwd=settings.BASE_DIR, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/health/", timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.1)  # polling until gunicorn listens
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
