#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: pgbouncer
short_description: Pause and resume a database in PgBouncer, so clients wait instead of failing
version_added: 0.1.0
description:
  - Talks to PgBouncer's admin console (the database C(pgbouncer) on PgBouncer's port) with the shared connection
    options - O(login_host), O(login_port), O(login_user) (one of PgBouncer's C(admin_users); C(stats_users) may
    only use O(command=show)), O(login_password).
  - "O(command=pause) sends C(PAUSE <database>): PgBouncer stops handing out server connections for the database,
    waits until the ones in use are released (at the end of the transaction in transaction pool mode; only when the
    client disconnects in session pool mode), closes them, and holds every new query until C(RESUME). Clients wait
    rather than fail - up to PgBouncer's C(query_wait_timeout) (default 120 s) - which suits a short migration."
  - PAUSE waits at most O(timeout) seconds for the server connections to be released. When they are not, the module
    sends C(RESUME) and fails, so a failed call never leaves the pool paused.
  - The migrations themselves must connect straight to PostgreSQL, not through the paused PgBouncer - their queries
    would wait behind the pause like every other client's.
  - Idempotent - C(SHOW DATABASES) tells whether the database is paused; pausing a paused database or resuming one
    that is not paused changes nothing.
  - If the process running the module is killed while the database is paused, the database stays paused until
    someone runs C(RESUME <database>) on the admin console (the migrate role resumes it in an C(always) section).
options:
  command:
    description:
      - C(pause) pauses O(database), C(resume) resumes it, C(show) reads C(SHOW DATABASES) and changes nothing.
    type: str
    choices: [ pause, resume, show ]
    required: true
  database:
    description:
      - The database as PgBouncer names it (its C([databases]) entry, or a name its C(*) entry serves).
      - Required with O(command=pause) and O(command=resume); with O(command=show) it selects RV(database).
    type: str
  timeout:
    description:
      - Seconds PAUSE may wait for the database's server connections to be released before the module resumes the
        database and fails.
    type: float
    default: 30
notes:
  - O(login_db) may be left unset; any value other than C(pgbouncer) is refused.
  - PgBouncer's admin console speaks the simple query protocol only; the module sends nothing else.
extends_documentation_fragment:
  - pgops.runbook.connection
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads C(SHOW DATABASES) and C(SHOW POOLS) and says whether PAUSE or RESUME would change anything (and how
      many busy server connections PAUSE would wait for); sends neither.
  diff_mode:
    support: none
  platform:
    platforms: posix
author:
  - pgops.runbook maintainers (@pgops)
'''

EXAMPLES = r'''
- name: Pause the database in PgBouncer, so clients wait during the migration
  pgops.runbook.pgbouncer:
    login_host: pgbouncer.internal
    login_port: 6432
    login_user: pgbouncer_admin
    login_password: "{{ vault_pgbouncer_admin_password }}"
    command: pause
    database: healthcare_db
    timeout: 20

- name: Resume it
  pgops.runbook.pgbouncer:
    login_host: pgbouncer.internal
    login_port: 6432
    login_user: pgbouncer_admin
    login_password: "{{ vault_pgbouncer_admin_password }}"
    command: resume
    database: healthcare_db
'''

RETURN = r'''
database:
  description: The row of C(SHOW DATABASES) for O(database) (after the change); null when none was named or PgBouncer
    has no pool for it yet.
  returned: always
  type: dict
  sample: {name: healthcare_db, host: 10.0.0.5, port: 5432, database: healthcare_db, pool_mode: transaction, paused: 1}
databases:
  description: Every row of C(SHOW DATABASES).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: healthcare_db, host: 10.0.0.5, port: 5432, database: healthcare_db, pool_mode: transaction, paused: 0}
paused:
  description: Whether O(database) is paused after the call.
  returned: always
  type: bool
  sample: true
waited_s:
  description: Seconds PAUSE waited for the server connections to be released.
  returned: always
  type: float
  sample: 0.012
msg:
  description: One sentence saying what was done.
  returned: always
  type: str
  sample: "Paused healthcare_db in 0.012s: its server connections are released and its clients wait until RESUME."
'''

from ansible_collections.pgops.runbook.plugins.module_utils.module_base import pgops_module, run_engine
from ansible_collections.pgops.runbook.plugins.module_utils.pgbouncer import run_pgbouncer


def main():
    module = pgops_module(
        dict(
            command=dict(type="str", choices=["pause", "resume", "show"], required=True),
            database=dict(type="str"),
            timeout=dict(type="float", default=30),
        ),
        supports_check_mode=True,
    )
    p = module.params

    def engine(settings):
        return run_pgbouncer(settings, p["command"], database=p["database"], timeout=p["timeout"],
                             check_mode=module.check_mode)

    run_engine(module, engine)


if __name__ == "__main__":
    main()
