"""Examples for the schema."""

DEPLOYMENT = {
    "id": 19,
    "release": 7,
    "environment": "pre",
    "image_tag": "v1.2.4",
    "status": "pending",
    "current": True,
    "config": {"namespace": "shop-pre"},
    "job_name": "",
    "job_namespace": "",
    "error": "",
    "created_by": "alice",
    "created_at": "2026-11-27T10:05:00Z",
    "started_at": None,
    "finished_at": None,
    "superseded_at": None,
    "superseded_by": None,
    "cleanup_pending": False,
}
