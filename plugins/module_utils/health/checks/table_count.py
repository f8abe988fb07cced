# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""table_count: how many tables the database has (user schemas, extensions excluded)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.catalog import not_extension_member, user_namespace
from ansible_collections.pgops.runbook.plugins.module_utils.health.check import object_count_check

SQL = ("SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND "
       + user_namespace("n") + " AND " + not_extension_member("c.oid", "pg_class"))


CHECK = object_count_check("table_count", "tables", SQL)
