# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every pgops module shares on the Ansible side: the connection options
merged into its argument spec, and the one place a PgopsError becomes fail_json."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.pgops.runbook.plugins.module_utils.connection import (
    HAS_PSYCOPG2,
    PSYCOPG2_IMPORT_ERROR,
    ConnectionSettings,
    connection_argument_spec,
)
from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError, redact


def pgops_module(argument_spec, needs_connection=True, **kwargs):
    """An AnsibleModule whose spec is the connection options (unless the module
    needs no connection, e.g. backup_info) plus `argument_spec`."""
    spec = connection_argument_spec() if needs_connection else {}
    spec.update(argument_spec)
    module = AnsibleModule(argument_spec=spec, **kwargs)
    if needs_connection and not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib("psycopg2-binary"), exception=str(PSYCOPG2_IMPORT_ERROR))
    return module


def run_engine(module, engine, **result_extra):
    """Call `engine(settings)` and exit with its result dict (failing the task
    when the dict says failed=True, with its msg).

    A PgopsError (bad input or a fault) fails the task with its one sentence;
    anything else is a bug and fails with a short message, its traceback kept
    for -vvv (secrets removed).
    """
    secrets = [module.params.get("login_password"), module.params.get("dsn")]
    try:
        settings = ConnectionSettings.from_params(module.params)
        secrets.extend(settings.secrets)
        result = engine(settings)
    except PgopsError as exc:
        extra = dict(result_extra)
        extra.update(exc.details)
        module.fail_json(msg=redact(exc.message, secrets), **extra)
    except Exception as exc:  # a bug: say so plainly, keep the trace for -vvv
        module.fail_json(msg=redact("Internal error in %s: %s: %s" % (module._name, type(exc).__name__, exc), secrets),
                         exception=redact(traceback.format_exc(), secrets))
    out = dict(result_extra)
    out.update(result)
    if out.pop("failed", False):
        module.fail_json(**out)
    module.exit_json(**out)
