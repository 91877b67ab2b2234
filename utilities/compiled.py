"""Querysets compiled to SQL once, for the API's hot reads.

Compiling a queryset with a few joins costs Django more than PostgreSQL needs to run it. A
`CompiledQuery` compiles its queryset once per thread, then each call binds only its
parameters and reads the rows through Django's own iterable (model instances, `select_related`
objects and annotations as usual). Nothing but the SQL text is kept: every call reads the
database.
"""

import threading
from collections.abc import Callable

from django.db import connections
from django.db.models import QuerySet

# Stand-ins for the parameters while compiling: values no query here would ever bind.
_PLACEHOLDERS = tuple(-(7**20) - i for i in range(4))


class CompiledQuery:
    def __init__(self, build: Callable[..., QuerySet]):
        """`build(*parameters)` makes the queryset; it is called once per thread, with
        placeholder integers, so parameters must be integers used as lookup values."""
        self._build = build
        self._local = threading.local()

    def __call__(self, *parameters: int) -> list:
        compiled = getattr(self._local, "compiled", None)
        if compiled is None:
            compiled = self._local.compiled = self._compile(len(parameters))
        queryset, compiler, sql, slots = compiled
        bound = tuple(parameters[i] if isinstance(i, int) else value for i, value in slots)
        # Django's compiler of this thread (its connection is this thread's), answering the SQL
        # it already wrote; its column map from that compile still describes the rows.
        compiler.as_sql = lambda *args, **kwargs: (sql, bound)
        run = queryset.all()
        run.query.get_compiler = lambda *args, **kwargs: compiler
        return list(run)

    def _compile(self, arity: int):
        queryset = self._build(*_PLACEHOLDERS[:arity])
        compiler = queryset.query.get_compiler(connection=connections[queryset.db])
        sql, params = compiler.as_sql()
        # Each parameter: the index of the caller's value it stands for, or (None) a constant.
        slots = [
            (_PLACEHOLDERS.index(p), None) if type(p) is int and p in _PLACEHOLDERS else (None, p)
            for p in params
        ]
        if {i for i, _ in slots if i is not None} != set(range(arity)):
            raise ValueError("a parameter of the compiled query is not a lookup value")
        return queryset, compiler, sql, slots
