# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQL fragments that say which catalog objects are the user's (not PostgreSQL's,
not an extension's). Fixed text, never built from input."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def user_namespace(alias="n"):
    """Predicate on pg_namespace `alias`: not a system, toast or temporary schema."""
    return ("{a}.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND {a}.nspname !~ '^pg_(toast|temp_)'").format(a=alias)


def not_extension_member(oid_expression, catalog="pg_class"):
    """Predicate: the object is not part of an extension (e.g. pg_stat_statements' views)."""
    return ("NOT EXISTS (SELECT 1 FROM pg_depend ext WHERE ext.classid = '{cat}'::regclass "
            "AND ext.objid = {oid} AND ext.deptype = 'e')").format(cat=catalog, oid=oid_expression)
