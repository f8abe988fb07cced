# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running an application's own migration tool (Alembic, Django, the Prisma CLI) against
the database the connection options name, with the same credentials, never on a
command line: the tool gets a connection URL in `database_url_env` (default
DATABASE_URL) and, for libpq-based drivers, PGOPTIONS with the run's lock_timeout and
statement_timeout (also as the URL's `options` parameter, which node-postgres and
libpq read). Its output is kept short and has every secret removed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import subprocess
import time

try:
    from urllib.parse import quote, urlencode
except ImportError:  # pragma: no cover - Python 2 is not supported by this collection
    quote = urlencode = None

from ansible_collections.pgops.runbook.plugins.module_utils.errors import redact
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.model import MigrationFailed
from ansible_collections.pgops.runbook.plugins.module_utils.migrate.session import as_setting

# libpq keywords a URL carries as query parameters.
_URL_PARAMETERS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "connect_timeout", "application_name",
                   "target_session_attrs", "sslpassword")
_LOCK_TIMEOUT_TEXT = re.compile(r"lock timeout|lock_timeout|55P03", re.IGNORECASE)
OUTPUT_KEEP = 4000


def timeout_options(request):
    """The -c options that put the run's timeouts on every session the tool opens."""
    return "-c lock_timeout=%s -c statement_timeout=%s" % (as_setting(request.lock_timeout or 0),
                                                           as_setting(request.statement_timeout or 0))


def database_url(settings, options=None):
    """postgresql://user:password@host:port/dbname?sslmode=...: the connection the options
    describe, for a tool that reads a URL (the password is percent-encoded)."""
    e = settings.effective()
    keywords = settings.keywords
    user = quote(e["user"], safe="")
    password = ":" + quote(settings.password, safe="") if settings.password else ""
    host = keywords.get("host", "")
    query = []
    netloc_host = ""
    if host.startswith("/"):
        query.append(("host", host))  # a Unix socket directory
    elif host:
        netloc_host = "[%s]" % host if ":" in host else host
    port = ":%s" % keywords["port"] if keywords.get("port") else ""
    for name in _URL_PARAMETERS:
        if keywords.get(name):
            query.append((name, keywords[name]))
    if options:
        query.append(("options", options))
    url = "postgresql://%s%s@%s%s/%s" % (user, password, netloc_host, port, quote(e["dbname"], safe=""))
    return url + ("?" + urlencode(query, quote_via=quote) if query else "")


class ExternalTool:
    """What the Alembic, Django and Prisma-CLI adapters share: the environment, the runner,
    retries of a run that failed on a lock timeout."""

    name = "external"

    def __init__(self, request, session):
        settings = session.settings
        self.request = request
        self.session = session
        self.settings = settings
        options = timeout_options(request)
        self.url = database_url(settings, options)
        env = dict(os.environ)
        env.update(request.environment or {})
        env[request.database_url_env] = self.url
        env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " " + options).strip()
        self.env = env
        self.secrets = [s for s in (settings.password, self.url, quote(settings.password or "", safe="")) if s] + \
            list(settings.secrets)
        self.runs = []

    def redact(self, text):
        return redact(text, self.secrets)

    def run(self, argv, what, check=True, timeout=None):
        """Run `argv` in the project directory; (exit status, stdout, stderr) with secrets removed.
        With check, a non-zero exit raises MigrationFailed naming `what` and the end of the tool's output."""
        started = time.monotonic()
        try:
            done = subprocess.run(argv, cwd=self.request.project_dir, env=self.env, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except FileNotFoundError:
            raise MigrationFailed("Option executable: %s does not exist or cannot be run." % argv[0])
        except PermissionError:
            raise MigrationFailed("Option executable: %s is not executable." % argv[0])
        except subprocess.TimeoutExpired:
            raise MigrationFailed("%s did not finish within %d s." % (what, timeout))
        stdout, stderr = self.redact(done.stdout), self.redact(done.stderr)
        self.runs.append(dict(command=self.redact(" ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(argv))),
                              returncode=done.returncode, seconds=round(time.monotonic() - started, 3)))
        if check and done.returncode != 0:
            raise MigrationFailed("%s failed (exit status %d): %s" % (what, done.returncode, tail(stderr or stdout)),
                                  lock_timeout=bool(_LOCK_TIMEOUT_TEXT.search(stderr + stdout)))
        return done.returncode, stdout, stderr

    def run_with_retries(self, argv, what, label):
        """run(), retried like a native migration when it failed on a lock timeout."""
        return self.session.with_retries(label, lambda: self.run(argv, what))


def tail(text, keep=OUTPUT_KEEP):
    """The last lines of a tool's output that fit in `keep` characters, the error line first."""
    lines = [line.rstrip() for line in (text or "").strip().splitlines() if line.strip()]
    if not lines:
        return "no output"
    errors = [line for line in lines if re.search(r"error|exception|fatal", line, re.IGNORECASE)]
    last = errors[-1] if errors else lines[-1]
    return last[:keep].strip()
