# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The connection options every pgops.runbook module accepts. Names follow
    # community.postgresql so playbooks can reuse their variables.
    DOCUMENTATION = r'''
options:
  login_host:
    description:
      - Host name or IP address of the PostgreSQL server.
      - When neither this nor O(login_unix_socket) nor O(dsn) gives a host,
        libpq's E(PGHOST) or its default (the local Unix socket) applies.
    type: str
    aliases: [ host ]
  login_unix_socket:
    description:
      - Directory of the server's Unix socket. Used when O(login_host) is not set.
    type: str
    aliases: [ unix_socket ]
  login_port:
    description:
      - TCP port (or socket file suffix) of the server.
      - When unset, E(PGPORT) or 5432 applies.
    type: int
    aliases: [ port ]
  login_user:
    description:
      - The role to log in as. When unset, E(PGUSER) or the OS user name applies.
    type: str
    aliases: [ login ]
  login_password:
    description:
      - Password of O(login_user). Never logged, never put on a command line;
        client tools receive it through a private password file removed afterwards.
      - When unset, E(PGPASSWORD), E(PGPASSFILE) or C(~/.pgpass) apply as in libpq.
    type: str
  login_db:
    description:
      - Database to connect to. When unset, E(PGDATABASE) or the user name applies.
    type: str
    aliases: [ db ]
  ssl_mode:
    description:
      - libpq C(sslmode). Also passed to the client tools (pg_dump, psql, ...).
      - When unset, E(PGSSLMODE) or libpq's default (C(prefer)) applies.
    type: str
    choices: [ allow, disable, prefer, require, verify-ca, verify-full ]
  ca_cert:
    description:
      - File of certificate authorities that signed the server certificate (libpq C(sslrootcert)).
    type: path
    aliases: [ ssl_rootcert ]
  ssl_cert:
    description:
      - Client certificate file (libpq C(sslcert)).
    type: path
  ssl_key:
    description:
      - Client private key file (libpq C(sslkey)).
    type: path
  connect_timeout:
    description:
      - Seconds to wait for a connection before giving up (libpq C(connect_timeout)).
      - When unset, E(PGCONNECT_TIMEOUT) or 30 seconds applies (libpq alone would wait for ever).
    type: int
  connect_params:
    description:
      - "Further libpq connection parameters, for example C({application_name: nightly, target_session_attrs: read-write})."
      - A password or a connection string must not be given here; use O(login_password) or O(dsn).
    type: dict
    default: {}
  dsn:
    description:
      - A libpq connection URI or key=value string, such as the E(DATABASE_URL) applications
        export (C(postgresql://user:secret@db.example:5432/app?sslmode=require)).
      - The O(login_host), O(login_port), O(login_user), O(login_password), O(login_db) and SSL
        options override the matching parts of it. Never logged, never on a command line.
    type: str
notes:
  - Connects with psycopg2. Libpq environment variables (E(PGHOST), E(PGPORT), E(PGUSER),
    E(PGPASSWORD), E(PGDATABASE), E(PGSSLMODE), ...) apply to every option left unset.
requirements:
  - psycopg2 (C(psycopg2-binary) or C(psycopg2)) on the host the module runs on.
'''
