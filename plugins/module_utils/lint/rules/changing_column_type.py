# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""changing-column-type: ALTER COLUMN ... TYPE rewrites the whole table (and rebuilds its
indexes) under ACCESS EXCLUSIVE, unless the old type converts to the new one without
touching the rows. Those cases (PostgreSQL's length-coercion support functions):
- varchar(n) -> varchar(m >= n), varchar(n) -> varchar (no limit) or text, text -> varchar (no limit);
- numeric(p, s) -> numeric(q >= p, same s), numeric(p, s) -> numeric (no limit);
- varbit(n) -> varbit(m >= n) or varbit; timestamp, timestamptz and time precision raised or removed;
- the same type again.
timestamp <-> timestamptz skips the rewrite only when the session TimeZone is UTC (PostgreSQL 12+):
counted as a rewrite, the detail says so. int -> bigint is a rewrite. A USING expression counts
as a rewrite; a COLLATE keeps the rows but rebuilds the column's indexes (still reported).

The old type is only known when this source declared it (ADD COLUMN, or an earlier ALTER COLUMN
TYPE): this module remembers those in an attribute of the engine's per-source state. A known
no-rewrite change is not reported; otherwise the detail says which current types would avoid
the rewrite. ALTER FOREIGN TABLE changes no stored data and is not reported."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pglast import ast
    from pglast.enums import AlterTableType, ObjectType
except ImportError:  # the module reports the missing library (engine.require_pglast)
    ast = None

from ansible_collections.pgops.runbook.plugins.module_utils.lint.rule import ACCESS_EXCLUSIVE, WARNING, Hit, Rule, table_name

# This rule's memory in the engine's LintState: {(table, column): type spec} declared earlier in the source.
RULE_NAME = "changing-column-type"
# How PostgreSQL's internal names read in a message.
SHOWN = dict(int2="smallint", int4="integer", int8="bigint", float4="real", float8="double precision", bool="boolean",
             bpchar="char")
ALIASES = dict(serial="int4", serial4="int4", bigserial="int8", serial8="int8", smallserial="int2", serial2="int2")
MAX_TIME_PRECISION = 6
TIME_TYPES = ("timestamp", "timestamptz", "time")
LENGTH_TYPES = ("varchar", "varbit")


class TypeSpec:
    """A column type as written: base name (pg_catalog dropped), integer modifiers, array or not."""

    def __init__(self, base, mods, array):
        self.base = base
        self.mods = mods
        self.array = array

    def __eq__(self, other):
        return isinstance(other, TypeSpec) and (self.base, self.mods, self.array) == (other.base, other.mods, other.array)

    def __ne__(self, other):
        return not self == other

    def __str__(self):
        mods = "(%s)" % ", ".join(str(m) for m in self.mods) if self.mods else ""
        return "%s%s%s" % (SHOWN.get(self.base, self.base), mods, "[]" if self.array else "")


def spec(type_node):
    """The TypeSpec of a pglast TypeName, or None when it cannot be reasoned about (%TYPE, odd modifiers)."""
    if type_node is None or type_node.pct_type or not type_node.names:
        return None
    names = [n.sval.lower() for n in type_node.names]
    if len(names) == 2 and names[0] == "pg_catalog":
        names = names[1:]
    base = ALIASES.get(names[0], names[0]) if len(names) == 1 else ".".join(names)
    mods = []
    for mod in type_node.typmods or ():
        value = getattr(mod, "val", None) if isinstance(mod, ast.A_Const) else None
        if not isinstance(value, ast.Integer):
            return None
        mods.append(value.ival)
    return TypeSpec(base, tuple(mods), bool(type_node.arrayBounds))


def _limit(type_spec):
    """The first modifier (length, precision), None for no limit."""
    return type_spec.mods[0] if type_spec.mods else None


def _scale(type_spec):
    """The scale of a numeric (0 when only the precision is given)."""
    return type_spec.mods[1] if len(type_spec.mods) > 1 else 0


def _fits(old_limit, new_limit):
    """Whether a length or precision limit change keeps every value (None: no limit)."""
    return new_limit is None or (old_limit is not None and old_limit <= new_limit)


def no_rewrite(old, new):
    """Whether changing a column from `old` to `new` leaves the rows as they are."""
    if old == new:
        return True
    if old.array or new.array:
        return False
    if old.base in ("varchar", "text") and new.base in ("varchar", "text"):
        if new.base == "text" or not new.mods:
            return True
        return old.base == "varchar" and _fits(_limit(old), _limit(new))
    if old.base == new.base and old.base in LENGTH_TYPES:
        return _fits(_limit(old), _limit(new))
    if old.base == new.base == "numeric":
        if not new.mods:
            return True
        return bool(old.mods) and _scale(old) == _scale(new) and old.mods[0] <= new.mods[0]
    if old.base == new.base and old.base in TIME_TYPES:
        return _limit(new) is None or _limit(new) >= MAX_TIME_PRECISION or _fits(_limit(old), _limit(new))
    return False


def _hint(new):
    """What the current type must be for no rewrite, when the migration does not say what it is."""
    limit = new.mods[0] if new.mods else None
    if new.array:
        return "Every row is rewritten unless the column already is %s." % new
    if new.base == "varchar" and limit is not None:
        return "No rewrite only if the column is varchar(n) with n <= %d today; from text or any other type every row " \
               "is rewritten." % limit
    if new.base in ("varchar", "text"):
        return "No rewrite only if the column is varchar or text today."
    if new.base == "numeric" and new.mods:
        return "No rewrite only if the column is numeric with the same scale and a precision <= %d today." % limit
    if new.base == "numeric":
        return "No rewrite only if the column is numeric today."
    if new.base in ("timestamptz", "timestamp"):
        other = "timestamp" if new.base == "timestamptz" else "timestamptz"
        return "From %s every row is rewritten unless the session TimeZone is UTC (PostgreSQL 12+): count on a " \
               "rewrite." % other
    if new.base == "int8":
        return "From integer or smallint every row is rewritten and the column's indexes rebuilt."
    return "Every row is rewritten and the column's indexes rebuilt unless the current type converts to %s " \
           "without change (binary-coercible)." % new


def _detail(column, old, new, using):
    if using is not None:
        return "Column %s: the USING expression is computed for every row, which rewrites the table." % column
    if new is None:
        return "Column %s: every row is rewritten unless the new type is binary-coercible from the current one." % column
    if old is None:
        return "Column %s becomes %s. %s" % (column, new, _hint(new))
    if set((old.base, new.base)) == set(("timestamp", "timestamptz")) and not (old.array or new.array):
        return "Column %s: %s to %s rewrites every row unless the session TimeZone is UTC (PostgreSQL 12+); count on a " \
               "rewrite." % (column, old, new)
    return "Column %s: %s to %s rewrites every row and rebuilds the column's indexes." % (column, old, new)


def _remember(state):
    return state.memory(RULE_NAME)


def _keys(relation, column):
    return [(table_name(relation), column), (relation.relname, column)]


def _lookup(known, relation, column):
    for key in _keys(relation, column):
        if key in known:
            return known[key]
    return None


def _store(known, relation, column, value):
    for key in _keys(relation, column):
        if value is None:
            known.pop(key, None)
        else:
            known[key] = value


def check(statement, state):
    node = statement.node
    known = _remember(state)
    if isinstance(node, ast.RenameStmt) and node.renameType == ObjectType.OBJECT_COLUMN and node.relation is not None:
        value = _lookup(known, node.relation, node.subname)
        _store(known, node.relation, node.subname, None)
        _store(known, node.relation, node.newname, value)
        return
    if not isinstance(node, ast.AlterTableStmt) or node.objtype == ObjectType.OBJECT_FOREIGN_TABLE:
        return
    for cmd in node.cmds or ():
        if cmd.subtype == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
            _store(known, node.relation, cmd.def_.colname, spec(cmd.def_.typeName))
        elif cmd.subtype == AlterTableType.AT_DropColumn:
            _store(known, node.relation, cmd.name, None)
        elif cmd.subtype == AlterTableType.AT_AlterColumnType and isinstance(cmd.def_, ast.ColumnDef):
            old, new = _lookup(known, node.relation, cmd.name), spec(cmd.def_.typeName)
            _store(known, node.relation, cmd.name, new)
            using = cmd.def_.raw_default
            if old is not None and new is not None and using is None and no_rewrite(old, new):
                if cmd.def_.collClause is not None:
                    yield Hit(table_name(node.relation), ACCESS_EXCLUSIVE, rewrites=True,
                              detail="Column %s: %s to %s keeps the rows, but the new collation rebuilds the column's "
                                     "indexes." % (cmd.name, old, new))
                continue
            yield Hit(table_name(node.relation), ACCESS_EXCLUSIVE, rewrites=True, detail=_detail(cmd.name, old, new, using))


RULE = Rule(
    name=RULE_NAME,
    severity=WARNING,
    why="Changing a column's type rewrites the whole table and rebuilds its indexes while holding ACCESS EXCLUSIVE: "
        "nothing can read or write the table until it is done.",
    fix="Add a column of the new type, keep both in sync (trigger or application), backfill it in batches, then switch "
        "the application over and drop the old column; or pick a change that needs no rewrite (e.g. varchar(n) -> text).",
    check=check,
)
