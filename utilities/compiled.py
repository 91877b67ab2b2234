"""Querysets compiled to SQL once, for the API's hot reads.

Compiling a queryset with a few joins costs Django more than PostgreSQL needs to run it. A
`CompiledQuery` compiles its queryset once per thread, then each call binds only its
parameters and reads the rows through Django's own iterable (model instances, `select_related`
objects and annotations as usual). Nothing but the SQL text is kept: every call reads the
database.
"""

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from django.db import connections
from django.db.models import QuerySet

# Stand-ins for the parameters while compiling, by type: values no query here would ever bind.
_PLACEHOLDERS = {
    int: tuple(-(7**20) - i for i in range(4)),
    datetime: tuple(datetime(1, 1, 1, 0, 0, 0, 7**7 + i, tzinfo=UTC) for i in range(4)),
    str: tuple(f"\x1fcompiled-query-placeholder-{i}" for i in range(4)),
}
_AS_USUAL = object()


class CompiledQuery:
    def __init__(self, build: Callable[..., QuerySet]):
        """`build(*parameters)` makes the queryset; it is called once per thread, with
        placeholders of the parameters' types, so parameters must be integers, strings or aware
        datetimes used as lookup values."""
        self._build = build
        self._local = threading.local()

    def __call__(self, *parameters) -> list:
        compiled = getattr(self._local, "compiled", None)
        if compiled is None:
            compiled = self._local.compiled = self._compile(tuple(map(type, parameters)))
        if compiled is _AS_USUAL:
            return list(self._build(*parameters))
        queryset, compiler, sql, slots = compiled
        bound = tuple(parameters[i] if isinstance(i, int) else value for i, value in slots)
        # Django's compiler of this thread (its connection is this thread's), answering the SQL
        # it already wrote; its column map from that compile still describes the rows.
        compiler.as_sql = lambda *args, **kwargs: (sql, bound)
        run = queryset.all()
        run.query.get_compiler = lambda *args, **kwargs: compiler
        return list(run)

    def _compile(self, types: tuple[type, ...]):
        stand_ins = [_PLACEHOLDERS[kind][i] for i, kind in enumerate(types)]
        queryset = self._build(*stand_ins)
        connection = connections[queryset.db]
        if datetime in types and connection.vendor != "postgresql":
            # Other backends bind datetimes as text of their own making (the demo's SQLite):
            # compiled each time, as usual.
            return _AS_USUAL
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        # Each parameter: the index of the caller's value it stands for, or (None) a constant.
        slots = [(_index(stand_ins, p), p) for p in params]
        if {i for i, _ in slots if i is not None} != set(range(len(types))):
            raise ValueError("a parameter of the compiled query is not a lookup value")
        return queryset, compiler, sql, slots


def _index(stand_ins: list, value) -> int | None:
    return next((i for i, s in enumerate(stand_ins) if type(s) is type(value) and s == value), None)
