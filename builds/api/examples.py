"""Examples for the schema."""

DRONE_EXAMPLE = {
    "build_number": 11,
    "build_status": "success",
    "apps": [{"name": "api", "image_tag": "v1.2.4"}, {"name": "web", "image_tag": "v1.2.4"}],
    "repo": "org/shop",
    "commit": "0a1b2c3",
    "branch": "main",
    "link": "https://drone.example.com/org/shop/11",
}

BUILD = {
    "id": 42,
    "repo": "org/shop",
    "number": 11,
    "status": "success",
    "commit": "0a1b2c3",
    "branch": "main",
    "link": "https://drone.example.com/org/shop/11",
    "received_at": "2026-11-27T10:02:00Z",
    "updated_at": "2026-11-27T10:02:00Z",
    "images": [{"app": "api", "image_tag": "v1.2.4"}, {"app": "web", "image_tag": "v1.2.4"}],
}
