"""Django's database sessions, with the read every signed-in request makes compiled once.

SESSION_ENGINE = "utilities.sessions": the same table and rows as `django.contrib.sessions`;
every request still reads its session from the database (a logout or an expiry counts at once).
"""

from django.contrib.sessions.backends import db
from django.utils import timezone

from .compiled import CompiledQuery


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        found = _SESSION(self.session_key, timezone.now())
        if not found:
            self._session_key = None
            return None
        return found[0]


_SESSION = CompiledQuery(
    lambda key, now: SessionStore.get_model_class().objects.filter(
        session_key=key, expire_date__gt=now
    )
)
