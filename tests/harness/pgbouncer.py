"""A real PgBouncer (the Debian package's binary) in front of the test cluster's primary.

    bouncer = PgBouncer(pg).start()      # free port, own ini/userlist in a temp dir, scram auth
    bouncer.admin_vars()                 # module options for the admin console
    bouncer.client_dsn_parts("appdb")    # psycopg2 keywords for a client going through it
    bouncer.stop()

It runs as the `postgres` OS user when we are root (like the cluster), in the
foreground as our child, so stop() ends exactly this process. Pool mode is
transaction by default: a client that keeps its connection open still lets PAUSE
complete between its transactions, as it would in production.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

from tests.harness.network import free_port

ADMIN_USER = "pgb_admin"
ADMIN_PASSWORD = "pgb-Adm1n-Pa55word-xyz"
CLIENT_USER = "pgops_app"


def pgbouncer_binary():
    """The pgbouncer program (the Debian package puts it in /usr/sbin)."""
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None)
    if not found:
        raise RuntimeError("pgbouncer is not installed: tests/quality/system-packages.sh installs it (apt-get install pgbouncer)")
    return found


class PgBouncer:
    """One PgBouncer process serving the primary's `databases` (default every one, through `*`)."""

    def __init__(self, pg, pool_mode="transaction", query_wait_timeout=120, databases=None):
        self.pg = pg
        self.databases = databases  # None: every database, through the `*` entry
        self.pool_mode = pool_mode
        self.query_wait_timeout = query_wait_timeout
        self.port = free_port()
        self.host = "127.0.0.1"
        self.dir = tempfile.mkdtemp(prefix="pgops-pgbouncer-")
        self.ini = os.path.join(self.dir, "pgbouncer.ini")
        self.log = os.path.join(self.dir, "pgbouncer.log")
        self.process = None

    def _write_config(self):
        with open(os.path.join(self.dir, "userlist.txt"), "w") as handle:
            # Plain-text secrets let PgBouncer log in to PostgreSQL with scram for the client.
            handle.write('"%s" "%s"\n' % (ADMIN_USER, ADMIN_PASSWORD))
            for user in (CLIENT_USER, "pgops_admin"):
                handle.write('"%s" "%s"\n' % (user, self.pg["passwords"][user]))
        server = "host=%s port=%d" % (self.pg["host"], self.pg["port"])
        entries = "".join("%s = %s dbname=%s\n" % (name, server, name) for name in self.databases) if self.databases \
            else "* = %s\n" % server
        with open(self.ini, "w") as handle:
            handle.write(
                "[databases]\n" + entries +
                "[pgbouncer]\n"
                "listen_addr = %(host)s\n"
                "listen_port = %(port)d\n"
                "unix_socket_dir =\n"
                "auth_type = scram-sha-256\n"
                "auth_file = %(dir)s/userlist.txt\n"
                "admin_users = %(admin)s\n"
                "pool_mode = %(pool_mode)s\n"
                "default_pool_size = 5\n"
                "query_wait_timeout = %(qwt)d\n"
                "server_reset_query = DISCARD ALL\n"
                "ignore_startup_parameters = extra_float_digits,options\n"
                "logfile = %(log)s\n"
                "pidfile = %(dir)s/pgbouncer.pid\n"
                % dict(host=self.host, port=self.port, dir=self.dir,
                       admin=ADMIN_USER, pool_mode=self.pool_mode, qwt=self.query_wait_timeout, log=self.log))
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            for root, dirs, files in os.walk(self.dir):
                os.chown(root, entry.pw_uid, entry.pw_gid)
                for name in files:
                    os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
        os.chmod(self.dir, 0o700)

    def start(self):
        self._write_config()
        kwargs = {}
        if os.geteuid() == 0:  # like PostgreSQL, PgBouncer refuses to run as root
            kwargs = dict(user="postgres", group="postgres", extra_groups=[])
        self.process = subprocess.Popen([pgbouncer_binary(), self.ini], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, **kwargs)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("pgbouncer exited with %s: %s" % (self.process.returncode, self.log_text()[-2000:]))
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("pgbouncer did not listen on %d within 15 s: %s" % (self.port, self.log_text()[-2000:]))

    def log_text(self):
        try:
            with open(self.log) as handle:
                return handle.read()
        except OSError:
            return ""

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: immediate shutdown
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def admin_vars(self, **extra):
        """Module options for the admin console."""
        opts = dict(login_host=self.host, login_port=self.port, login_user=ADMIN_USER, login_password=ADMIN_PASSWORD,
                    ssl_mode="disable")
        opts.update(extra)
        return opts

    def client_keywords(self, db, user=CLIENT_USER):
        """psycopg2.connect keywords for a client reaching `db` through PgBouncer."""
        return dict(host=self.host, port=self.port, user=user, password=self.pg["passwords"][user], dbname=db,
                    sslmode="disable", connect_timeout=10)

    def admin_rows(self, command):
        """Run one admin-console command; its rows as dicts."""
        import psycopg2
        conn = psycopg2.connect(host=self.host, port=self.port, user=ADMIN_USER, password=ADMIN_PASSWORD,
                                dbname="pgbouncer", sslmode="disable")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(command)
                if cur.description is None:
                    return []
                names = [c[0] for c in cur.description]
                return [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            conn.close()

    def paused(self, db):
        """Whether SHOW DATABASES says `db` is paused."""
        return any(row["name"] == db and int(row["paused"]) for row in self.admin_rows("SHOW DATABASES"))
