"""A throw-away PostgreSQL server for tests, the demo and the benchmarks.

Started from the machine's own binaries (pg_config --bindir) on a free loopback
port, with scram-sha-256 password auth over TCP, SSL on with a CA made for the
run, pg_stat_statements preloaded, WAL archiving on and, on request, a streaming
standby behind a replication slot. When run as root, the server runs as the
`postgres` OS user (initdb and postgres refuse root).

Command line (used by `make demo` and benchmarks):
    python tests/harness/cluster.py start DIR   -> prints JSON with the DSN parts
    python tests/harness/cluster.py stop DIR
"""

import contextlib
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

try:
    from tests.harness.network import free_port
except ImportError:  # imported from tests/harness directly (benchmarks) or run as a script
    from network import free_port

# The login roles, with how their passwords start.
ROLE_PASSWORD_PREFIXES = {
    "pgops_admin": "adm1n-Pa55word-",
    "pgops_monitor": "m0nitor-Pa55word-",
    "pgops_app": "app-Pa55word-",
    "pgops_ssl_only": "ssl0nly-Pa55word-",
    "replicator": "repl-Pa55word-",
}


def _passwords():
    """(superuser password, {role: password}), new for each cluster: two test processes running
    at once (pytest-xdist) each have their own, so a secret one finds in `ps` is its own."""
    return ("harness-super-Secr3t!" + secrets.token_hex(6),
            {role: prefix + secrets.token_hex(6) for role, prefix in ROLE_PASSWORD_PREFIXES.items()})


def pg_bindir():
    """The server binaries' directory, from pg_config."""
    out = subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def _as_postgres():
    return os.geteuid() == 0


def _owner_ids():
    if _as_postgres():
        entry = pwd.getpwnam("postgres")
        return entry.pw_uid, entry.pw_gid
    return os.getuid(), os.getgid()


def run_as_server_user(argv, **kwargs):
    """Run a server binary as the postgres OS user when we are root."""
    if _as_postgres():
        argv = ["runuser", "-u", "postgres", "--"] + list(argv)
    check = kwargs.pop("check", True)
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run(argv, check=check, **kwargs)


def _chown_tree(path):
    uid, gid = _owner_ids()
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid)


def make_certificates(directory):
    """A CA and a server certificate for 127.0.0.1/localhost, signed by it."""
    def openssl(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=directory)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=pgops test CA", "-keyout", "ca.key", "-out", "ca.crt")
    with open(os.path.join(directory, "server.ext"), "w") as ext:
        ext.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "server.key", "-out", "server.csr")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.crt")
    os.chmod(os.path.join(directory, "server.key"), 0o600)
    os.chmod(os.path.join(directory, "ca.crt"), 0o644)


class PostgresServer:
    """One running server (primary or standby) of the throw-away cluster."""

    def __init__(self, base_dir, name, port):
        self.base_dir = base_dir
        self.name = name
        self.port = port
        self.host = "127.0.0.1"
        self.data_dir = os.path.join(base_dir, name)
        self.socket_dir = os.path.join(base_dir, "sockets")
        self.log_file = os.path.join(base_dir, name + ".log")

    def pg_ctl(self, *args):
        return run_as_server_user([os.path.join(pg_bindir(), "pg_ctl"), "-D", self.data_dir] + list(args))

    def start(self):
        self.pg_ctl("-w", "-t", "60", "-l", self.log_file, "start")

    def stop(self, mode="fast"):
        self.pg_ctl("-w", "-m", mode, "stop")

    def is_running(self):
        return run_as_server_user([os.path.join(pg_bindir(), "pg_ctl"), "-D", self.data_dir, "status"],
                                  check=False).returncode == 0

    def reload(self):
        self.pg_ctl("reload")

    def connect(self, dbname="postgres", user="postgres", **kwargs):
        """A superuser connection over the Unix socket (local trust), autocommit."""
        import psycopg2
        conn = psycopg2.connect(host=self.socket_dir, port=self.port, dbname=dbname, user=user, **kwargs)
        conn.autocommit = True
        return conn

    def execute(self, sql, params=None, dbname="postgres"):
        """Run one statement as superuser; returns the rows when it has any."""
        conn = self.connect(dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()


class Cluster:
    """A primary with SSL, test roles and databases, and optionally a standby."""

    def __init__(self, base_dir=None):
        self.base_dir = base_dir or tempfile.mkdtemp(prefix="pgops-pg-")
        os.makedirs(self.base_dir, exist_ok=True)
        os.chmod(self.base_dir, 0o755)
        self.cert_dir = os.path.join(self.base_dir, "certs")
        self.primary = PostgresServer(self.base_dir, "primary", free_port())
        self.standby = None
        self.superuser_password, self.role_passwords = _passwords()

    @property
    def ca_cert(self):
        return os.path.join(self.cert_dir, "ca.crt")

    def _write_conf(self, server, extra):
        conf = os.path.join(server.data_dir, "postgresql.conf")
        with open(conf, "a") as handle:
            handle.write("\n# pgops test harness\n")
            for key, value in extra.items():
                handle.write("%s = %s\n" % (key, value))

    def start_primary(self):
        os.makedirs(self.cert_dir, exist_ok=True)
        os.makedirs(self.primary.socket_dir, exist_ok=True)
        make_certificates(self.cert_dir)
        pwfile = os.path.join(self.base_dir, "pwfile")
        with open(pwfile, "w") as handle:
            handle.write(self.superuser_password + "\n")
        _chown_tree(self.base_dir)
        run_as_server_user([os.path.join(pg_bindir(), "initdb"), "-D", self.primary.data_dir,
                            "-U", "postgres", "--pwfile", pwfile, "-E", "UTF8", "--locale", "C.UTF-8",
                            "--auth-local", "trust", "--auth-host", "scram-sha-256"])
        os.unlink(pwfile)
        self._write_conf(self.primary, {
            "port": self.primary.port,
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": "'%s'" % self.primary.socket_dir,
            "ssl": "on",
            "ssl_cert_file": "'%s'" % os.path.join(self.cert_dir, "server.crt"),
            "ssl_key_file": "'%s'" % os.path.join(self.cert_dir, "server.key"),
            "ssl_ca_file": "'%s'" % self.ca_cert,
            "password_encryption": "'scram-sha-256'",
            "shared_preload_libraries": "'pg_stat_statements'",
            "wal_level": "replica",
            "max_wal_senders": 5,
            "max_replication_slots": 5,
            "archive_mode": "on",
            "archive_command": "'/bin/true'",
            "max_prepared_transactions": 5,
            "deadlock_timeout": "'100ms'",
            "log_connections": "on",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": 60,
        })
        # pgops_ssl_only may connect over SSL only: a refused non-SSL attempt is
        # one of the faults the connection layer must explain.
        with open(os.path.join(self.primary.data_dir, "pg_hba.conf"), "w") as hba:
            hba.write(
                "local     all          all                         trust\n"
                "hostssl   all          pgops_ssl_only 127.0.0.1/32 scram-sha-256\n"
                "hostnossl all          pgops_ssl_only 127.0.0.1/32 reject\n"
                "host      all          all            127.0.0.1/32 scram-sha-256\n"
                "host      replication  replicator     127.0.0.1/32 scram-sha-256\n"
            )
        _chown_tree(self.primary.data_dir)
        self.primary.start()
        self._create_roles()

    def _create_roles(self):
        grants = {
            "pgops_admin": "SUPERUSER",
            "pgops_monitor": "",
            "pgops_app": "",
            "pgops_ssl_only": "",
            "replicator": "REPLICATION",
        }
        conn = self.primary.connect()
        with conn.cursor() as cur:
            for role, attrs in grants.items():
                cur.execute("CREATE ROLE %s LOGIN %s PASSWORD %%s" % (role, attrs), (self.role_passwords[role],))
            cur.execute("GRANT pg_monitor TO pgops_monitor")
            cur.execute("CREATE DATABASE appdb OWNER pgops_app")
        conn.close()
        self.primary.execute("CREATE EXTENSION pg_stat_statements", dbname="appdb")

    def start_standby(self, slot="standby1"):
        """A streaming standby (SSL off) behind a physical replication slot."""
        self.standby = PostgresServer(self.base_dir, "standby", free_port())
        passfile = os.path.join(self.base_dir, "standby.pgpass")
        with open(passfile, "w") as handle:
            handle.write("*:*:*:replicator:%s\n" % self.role_passwords["replicator"])
        os.chmod(passfile, 0o600)
        _chown_tree(self.base_dir)
        run_as_server_user(["env", "PGPASSFILE=" + passfile,
                            os.path.join(pg_bindir(), "pg_basebackup"), "-h", "127.0.0.1",
                            "-p", str(self.primary.port), "-U", "replicator", "-D", self.standby.data_dir,
                            "-R", "-C", "-S", slot, "-X", "stream", "-c", "fast"])
        self._write_conf(self.standby, {
            "port": self.standby.port,
            "ssl": "off",
            "archive_mode": "off",
            "primary_conninfo": "'host=127.0.0.1 port=%d user=replicator passfile=%s application_name=%s'"
                                % (self.primary.port, passfile, slot),
        })
        self.standby.start()
        deadline = time.time() + 30
        while time.time() < deadline:
            rows = self.primary.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
            if rows[0][0] >= 1:
                return
            time.sleep(0.2)
        raise RuntimeError("the standby did not start streaming within 30 s")

    @contextlib.contextmanager
    def tablespace_directory(self, size):
        """A directory for a test's tablespace on a tmpfs of `size` (e.g. "6m"), owned by the
        server user; the block must drop the tablespace. The standby runs on this machine, so
        it would replay the tablespace into this same directory, writing the primary's files
        (and die of the full disk a test makes): its replay is paused while the block runs,
        then resumed into an empty directory at the same place, removed once it caught up."""
        location = tempfile.mkdtemp(prefix="pgops-ts-")  # in /tmp, where the postgres user can reach it
        paused = self.standby is not None and self.standby.is_running()
        if paused:
            self.standby.execute("SELECT pg_wal_replay_pause()")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs", location], check=True)
        try:
            os.chown(location, *_owner_ids())
            yield location
        finally:
            subprocess.run(["umount", location], check=True)
            os.chown(location, *_owner_ids())
            if paused:
                self.standby.execute("SELECT pg_wal_replay_resume()")
                self.wait_for_standby_replay()
            shutil.rmtree(location, ignore_errors=True)

    def wait_for_standby_replay(self, timeout=60):
        """Wait until the standby has replayed everything the primary has written so far."""
        target = self.primary.execute("SELECT pg_current_wal_lsn()")[0][0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,))[0][0]:
                return
            time.sleep(0.1)
        raise RuntimeError("the standby did not replay up to %s within %d s" % (target, timeout))

    def describe(self):
        """Connection facts for tests and the demo (passwords of test roles only)."""
        info = {
            "base_dir": self.base_dir,
            "host": self.primary.host,
            "port": self.primary.port,
            "socket_dir": self.primary.socket_dir,
            "ca_cert": self.ca_cert,
            "superuser_password": self.superuser_password,
            "passwords": dict(self.role_passwords),
        }
        if self.standby:
            info["standby_port"] = self.standby.port
        return info

    def stop(self, keep_logs=None):
        """Stop both servers and remove everything; with `keep_logs` (a directory), copy the
        servers' logs there first, named <keep_logs>/<base_dir name>-<server>.log."""
        for server in (self.standby, self.primary):
            if server and os.path.isdir(server.data_dir) and server.is_running():
                server.stop("immediate")
        if keep_logs:
            os.makedirs(keep_logs, exist_ok=True)
            for server in (self.standby, self.primary):
                if server and os.path.exists(server.log_file):
                    shutil.copyfile(server.log_file, os.path.join(
                        keep_logs, "%s-%s.log" % (os.path.basename(self.base_dir), server.name)))
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        sys.stderr.write(__doc__)
        return 2
    base_dir = os.path.abspath(argv[2])
    if argv[1] == "start":
        cluster = Cluster(base_dir)
        cluster.start_primary()
        with open(os.path.join(base_dir, "cluster.json"), "w") as handle:
            json.dump(cluster.describe(), handle)
        print(json.dumps(cluster.describe()))
        return 0
    with open(os.path.join(base_dir, "cluster.json")) as handle:
        info = json.load(handle)
    cluster = Cluster.__new__(Cluster)
    cluster.base_dir = base_dir
    cluster.primary = PostgresServer(base_dir, "primary", info["port"])
    cluster.standby = PostgresServer(base_dir, "standby", info["standby_port"]) if "standby_port" in info else None
    cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
