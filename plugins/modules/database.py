#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: database
short_description: Make sure an application's login role and database exist, with its extensions
version_added: 0.1.0
description:
  - The first step of setting up a new database - an application login role (optional) and a
    database owned by it, with the extensions the application needs. Missing things are created;
    settings that differ (the owner, the role's login, connection limit and password) are changed;
    nothing is ever dropped, and an existing database's encoding or locale, which cannot change,
    fails the task with the difference instead.
  - The module connects as an administrator (a superuser, or a role with CREATEROLE and CREATEDB)
    to O(login_db), by default C(postgres) - not to O(name), which may not exist yet - and to
    O(name) for the extensions. Runs on one server are serialised by an advisory lock.
  - The password is sent only as a SCRAM-SHA-256 verifier that libpq computes on the host running
    the module, inside the SQL over the module's connection; it never appears on a command line, in
    a result or in a message. With a superuser login the stored verifier is compared with
    O(role_password), so a second run changes nothing; without one it cannot be read, and
    O(update_password=always) sets the password again on every run (with a warning).
options:
  name:
    description: The database.
    type: str
    required: true
  owner:
    description:
      - The database's owner. Defaults to O(role) when given, else the login user (for a new database).
      - An existing database whose owner differs gets this owner (C(ALTER DATABASE ... OWNER TO)).
    type: str
  encoding:
    description:
      - The encoding of a new database. An existing database with another encoding fails the task.
    type: str
    default: UTF8
  lc_collate:
    description:
      - The collation of a new database (for example C(C.UTF-8)); the template's when unset.
        When set, an existing database with another one fails the task.
    type: str
  lc_ctype:
    description:
      - The character classification of a new database; the template's when unset.
        When set, an existing database with another one fails the task.
    type: str
  template:
    description:
      - The template a new database is copied from. C(template0) gives a clean database in which
        any encoding and locale may be chosen.
    type: str
    default: template0
  extensions:
    description:
      - Extensions to create in the database (C(CREATE EXTENSION IF NOT EXISTS)) when missing.
        One the server does not offer is refused before anything changes.
    type: list
    elements: str
    default: []
  role:
    description:
      - The application's login role, created with LOGIN when missing. An existing one is given
        LOGIN and O(role_connection_limit) when they differ; its other attributes and memberships are left alone.
    type: str
  role_password:
    description:
      - The password of O(role), sent as a SCRAM-SHA-256 verifier. Without it a new role has no
        password (it then logs in only by another method, such as certificates).
    type: str
  role_connection_limit:
    description: How many connections O(role) may hold at once; C(-1) is no limit.
    type: int
    default: -1
  update_password:
    description:
      - C(always) gives an existing O(role) the password O(role_password) when its stored one
        differs (the password rotated in the vault is the one the server gets); C(on_create) sets it
        only when the role is created.
    type: str
    choices: [ always, on_create ]
    default: always
extends_documentation_fragment:
  - pgops.runbook.connection
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the server and returns the actions it would take; changes nothing.
  diff_mode:
    support: full
    details: The role, database and extensions before and after (never a password or verifier).
  platform:
    platforms: posix
author:
  - pgops.runbook maintainers (@pgops)
'''

EXAMPLES = r'''
- name: Create the application's role and database
  pgops.runbook.database:
    login_host: db1.example.internal
    login_user: postgres
    login_password: "{{ vault_postgres_password }}"
    ssl_mode: verify-full
    ca_cert: /etc/pki/pg-ca.crt
    name: healthcare_db
    role: healthcare_app
    role_password: "{{ vault_healthcare_app_password }}"
    role_connection_limit: 50
    extensions: [pgcrypto]
'''

RETURN = r'''
actions:
  description: What was done (or would be, in check mode), one sentence each; empty when nothing differed.
  returned: success
  type: list
  elements: str
  sample: ["create role healthcare_app (LOGIN, CONNECTION LIMIT 50, with a password)",
           "create database healthcare_db (owner healthcare_app, UTF8, template template0)"]
actions_done:
  description:
    - When a statement failed, the actions of RV(actions) that were done before it (each ran on its own, so they
      stay done; the next run does only what is still missing).
  returned: when applying an action failed
  type: list
  elements: str
  sample: ["create role healthcare_app (LOGIN, CONNECTION LIMIT 50, with a password)"]
role:
  description: The role after the run - name, login, connection_limit, created, password_changed. Null without O(role).
  returned: success
  type: dict
  sample: {name: healthcare_app, login: true, connection_limit: 50, created: true, password_changed: false}
database:
  description: The database after the run - name, owner, encoding, lc_collate, lc_ctype, created.
  returned: success
  type: dict
  sample: {name: healthcare_db, owner: healthcare_app, encoding: UTF8, lc_collate: C.UTF-8, lc_ctype: C.UTF-8, created: true}
extensions:
  description: The extensions in the database after the run.
  returned: success
  type: list
  elements: str
  sample: [pgcrypto]
msg:
  description: One sentence saying what was done.
  returned: always
  type: str
  sample: "Did create role healthcare_app (LOGIN, CONNECTION LIMIT 50, with a password); create database healthcare_db
    (owner healthcare_app, UTF8, template template0)."
'''

from ansible_collections.pgops.runbook.plugins.module_utils.module_base import pgops_module, run_engine
from ansible_collections.pgops.runbook.plugins.module_utils.provision import ProvisionRequest, provision


def main():
    module = pgops_module(
        dict(
            name=dict(type="str", required=True),
            owner=dict(type="str"),
            encoding=dict(type="str", default="UTF8"),
            lc_collate=dict(type="str"),
            lc_ctype=dict(type="str"),
            template=dict(type="str", default="template0"),
            extensions=dict(type="list", elements="str", default=[]),
            role=dict(type="str"),
            role_password=dict(type="str", no_log=True),
            role_connection_limit=dict(type="int", default=-1),
            update_password=dict(type="str", choices=["always", "on_create"], default="always", no_log=False),
        ),
        supports_check_mode=True,
    )
    p = module.params

    def engine(settings):
        request = ProvisionRequest(
            p["name"], owner=p["owner"], encoding=p["encoding"], lc_collate=p["lc_collate"], lc_ctype=p["lc_ctype"],
            template=p["template"], extensions=p["extensions"], role=p["role"], role_password=p["role_password"],
            role_connection_limit=p["role_connection_limit"], update_password=p["update_password"],
            check_mode=module.check_mode)
        result = provision(settings, request)
        if not module._diff:
            result.pop("diff")
        for warning in result.pop("warnings", []):
            module.warn(warning)
        return result

    run_engine(module, engine)


if __name__ == "__main__":
    main()
