"""Free-text search of incidents on SQLite: a trigram index for the source addresses, an index for titles.

The incident list's text filter is a case-insensitive substring match on ``title`` and ``sources``
(SQLite ``LIKE``). Done as a scan it reads every incident when few match (~0.3 s at a million).
Here the two columns are indexed each in the way that suits it:

* ``sources`` (the JSON list of source addresses, different in nearly every incident) by
  ``incidents_fts``, an external-content FTS5 table with the ``trigram`` tokenizer: it stores the
  index only, the text stays in ``incidents``. Three triggers on ``incidents`` keep it current, so
  every writer (the pipeline, officer actions, tools) does without knowing of it; a row is re-indexed
  only when its ``sources`` really changed.
* ``title`` (the signature: a few hundred or thousand distinct values over millions of incidents)
  by a plain index, ``ix_incidents_title``. The distinct titles are walked along it (one seek each),
  the ``LIKE`` is applied to them, and the incidents of the matching titles are read from it. An
  FTS row per incident costs ~20 µs more per new incident for the title's ~45 trigrams (measured),
  for text that repeats; the B-tree entry costs ~1-2 µs.
* The indexes only propose candidates: the ``LIKE`` of the plain search still decides among them, so
  the results are exactly the scan's (trigram folds case beyond ASCII, ``LIKE`` does not).
* It is used only when it can beat the scan. A search shorter than ``MIN_CHARS`` has no trigram. A
  broad one (more than ``MAX_CANDIDATES`` candidates) is left to the scan, which stops after the
  list's count cap (``queries.COUNT_CAP``) and so finds a common word's matches at once, while the
  indexes would hand over every one of them.
* The candidates drive the query (``driven_by``: a CROSS JOIN, SQLite's documented way to fix the
  join order), so the incidents read are the candidates, by primary key, whatever other filter is set.
* An SQLite without FTS5 or its trigram tokenizer (before 3.34) cannot write through the triggers:
  ``ensure`` drops them when the store is opened with such a library, the search falls back to the
  scan, and the next open by a capable library recreates them and rebuilds the index from
  ``incidents``. "Usable" means: the FTS table, its three triggers and the title index all exist.
  (Processes with different SQLite libraries writing one store at the same time are not supported.)

PostgreSQL has no FTS5: the search there stays the ``ILIKE`` scan (``pg_trgm`` would be its index).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, Integer, Subquery, bindparam, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.selectable import Join

FTS_TABLE = "incidents_fts"
TITLE_INDEX = "ix_incidents_title"
MIN_CHARS = 3
#: Above this many candidates a search is "broad" and the scan is used (see the module text).
MAX_CANDIDATES = 10_000

_CREATE_FTS = (f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(sources, content='incidents', content_rowid='id', "
               "tokenize='trigram', columnsize=0)")
_CREATE_TITLE_INDEX = f"CREATE INDEX IF NOT EXISTS {TITLE_INDEX} ON incidents (title)"
_INDEX_ROW = f"INSERT INTO {FTS_TABLE} (rowid, sources) SELECT new.id, new.sources WHERE new.sources IS NOT NULL;"
_UNINDEX_ROW = (f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, sources) "
                "SELECT 'delete', old.id, old.sources WHERE old.sources IS NOT NULL;")
TRIGGERS: dict[str, str] = {
    "incidents_fts_insert": f"CREATE TRIGGER incidents_fts_insert AFTER INSERT ON incidents BEGIN {_INDEX_ROW} END",
    "incidents_fts_delete": f"CREATE TRIGGER incidents_fts_delete AFTER DELETE ON incidents BEGIN {_UNINDEX_ROW} END",
    # Only when the indexed text changes: the pipeline rewrites ``sources`` on every incident update.
    "incidents_fts_update": (
        "CREATE TRIGGER incidents_fts_update AFTER UPDATE OF id, sources ON incidents "
        f"WHEN old.id IS NOT new.id OR old.sources IS NOT new.sources BEGIN {_UNINDEX_ROW} {_INDEX_ROW} END"),
}
_NAMES = (FTS_TABLE, TITLE_INDEX, *TRIGGERS)

# The distinct titles, one seek each along the title index (a "loose index scan").
_TITLES = ("WITH RECURSIVE titles(title) AS (SELECT min(title) FROM incidents UNION ALL "
           "SELECT (SELECT min(title) FROM incidents WHERE title > titles.title) FROM titles "
           "WHERE titles.title IS NOT NULL) ")
_BY_TITLE = ("SELECT id FROM incidents WHERE title IN "
             "(SELECT title FROM titles WHERE title LIKE :wf_pattern ESCAPE '/')")
_BY_SOURCES = f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :wf_phrase"


def trigram_available(engine: Engine) -> bool:
    """Whether this SQLite has FTS5 with the trigram tokenizer (tried on a temporary table)."""
    if engine.dialect.name != "sqlite":
        return False
    raw = engine.raw_connection()  # outside any transaction: the probe touches the temp schema only
    try:
        cursor = raw.cursor()
        cursor.execute("CREATE VIRTUAL TABLE temp.wf_trigram_probe USING fts5(x, tokenize='trigram')")
        cursor.execute("DROP TABLE temp.wf_trigram_probe")
        cursor.close()
    except engine.dialect.loaded_dbapi.Error:
        return False
    finally:
        raw.close()
    return True


def _schema(conn: Connection) -> dict[str, str]:
    rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE name IN :names")
                        .bindparams(bindparam("names", expanding=True)), {"names": list(_NAMES)})
    return {name: sql or "" for name, sql in rows}


def ensure(conn: Connection, available: bool) -> str:
    """Bring the indexes in line with this SQLite (inside the caller's write transaction).

    ``available`` (``trigram_available``): create what is missing (a table of another layout is
    replaced) and, when anything was, rebuild the index from ``incidents`` ("built"); else "present".
    Not available: drop the triggers, so that writes to ``incidents`` keep working ("unavailable")."""
    if conn.dialect.name != "sqlite":
        return "unavailable"
    present = _schema(conn)
    if not available:
        for name in TRIGGERS:
            if name in present:
                conn.exec_driver_sql(f"DROP TRIGGER {name}")
        return "unavailable"
    current = (present.get(FTS_TABLE) == _CREATE_FTS and TITLE_INDEX in present
               and all(present.get(name) == sql for name, sql in TRIGGERS.items()))
    if current:
        return "present"
    for name in TRIGGERS:
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    if present.get(FTS_TABLE, _CREATE_FTS) != _CREATE_FTS:
        conn.exec_driver_sql(f"DROP TABLE {FTS_TABLE}")
        present.pop(FTS_TABLE)
    if FTS_TABLE not in present:
        conn.exec_driver_sql(_CREATE_FTS)
    conn.exec_driver_sql(_CREATE_TITLE_INDEX)
    for sql in TRIGGERS.values():
        conn.exec_driver_sql(sql)
    conn.exec_driver_sql(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('rebuild')")
    return "built"


def usable(conn: Connection) -> bool:
    """The indexes exist and are kept current (the FTS table, its triggers and the title index)."""
    return conn.dialect.name == "sqlite" and set(_schema(conn)) == set(_NAMES)


def phrase(needle: str) -> str:
    """``needle`` as one FTS5 string: every character literal, ``"`` doubled."""
    return '"' + needle.replace('"', '""') + '"'


def like_pattern(needle: str) -> str:
    """``%needle%`` with ``/`` escaping ``%``, ``_`` and itself: what SQLAlchemy's
    ``contains(needle, autoescape=True)`` matches (the search's own condition)."""
    return "%" + needle.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def _params(needle: str) -> dict[str, Any]:
    return {"wf_pattern": like_pattern(needle), "wf_phrase": phrase(needle)}


def candidate_count(conn: Connection, needle: str, cap: int = MAX_CANDIDATES) -> int | None:
    """At most how many incidents the indexes offer for ``needle``: the incidents of the matching
    titles plus the source-index matches, each counted up to ``cap + 1``. ``None`` when the indexes
    cannot serve it (not SQLite, shorter than ``MIN_CHARS``, indexes not usable)."""
    if conn.dialect.name != "sqlite" or len(needle) < MIN_CHARS or not usable(conn):
        return None
    counted = text(_TITLES + f"SELECT (SELECT count(*) FROM ({_BY_TITLE} LIMIT :wf_limit)) "
                   f"+ (SELECT count(*) FROM ({_BY_SOURCES} LIMIT :wf_limit))")
    return int(conn.execute(counted, {**_params(needle), "wf_limit": cap + 1}).scalar_one())


def candidates(needle: str, also_id: int | None = None) -> Subquery:
    """The ids the indexes offer for ``needle`` (plus ``also_id``): a subquery with one column,
    ``id``, to drive a query with ``driven_by``."""
    sql = _TITLES + _BY_TITLE + " UNION " + _BY_SOURCES + (" UNION SELECT :wf_also_id" if also_id is not None else "")
    params = _params(needle) | ({"wf_also_id": also_id} if also_id is not None else {})
    return text(sql).bindparams(**params).columns(id=Integer).subquery("candidates")


class CrossJoin(Join):
    """``left CROSS JOIN right ON ...``: SQLite always makes ``left`` the outer loop of a CROSS JOIN
    (its documented way to fix a join order). Without it, and without ``ANALYZE`` statistics, the
    planner may prefer the index of another filter (status, site) and test every incident it lists
    against the candidates, which is the scan again."""

    inherit_cache = True


@compiles(CrossJoin)
def _cross_join(join: CrossJoin, compiler: Any, asfrom: bool = False, from_linter: Any = None, **kw: Any) -> str:
    if from_linter:  # as ``SQLCompiler.visit_join`` does: the two sides are joined, not a cartesian product
        from_linter.edges.update((left, right) for left in join.left._from_objects
                                 for right in join.right._from_objects)
    return (join.left._compiler_dispatch(compiler, asfrom=True, from_linter=from_linter, **kw) + " CROSS JOIN "
            + join.right._compiler_dispatch(compiler, asfrom=True, from_linter=from_linter, **kw) + " ON "
            + join.onclause._compiler_dispatch(compiler, from_linter=from_linter, **kw))


def driven_by(found: Subquery, incidents: Any) -> CrossJoin:
    """``found`` (from ``candidates``) CROSS JOIN ``incidents`` on the id: a FROM clause that reads
    only the candidate incidents, by primary key."""
    return CrossJoin(found, incidents, incidents.c.id == found.c.id)


__all__ = ["FTS_TABLE", "MAX_CANDIDATES", "MIN_CHARS", "TITLE_INDEX", "CrossJoin", "candidate_count", "candidates",
           "driven_by", "ensure", "like_pattern", "phrase", "trigram_available", "usable"]
