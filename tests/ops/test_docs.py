"""The operator's documentation keeps up with the code."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_environment_setting_is_documented():
    read = set()
    for path in [*(ROOT / "config" / "settings").glob("*.py"), ROOT / "config" / "gunicorn.py"]:
        text = path.read_text()
        read |= set(re.findall(r"env(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]+)\"", text))
        read |= set(re.findall(r"os\.environ\.get\(\s*\"([A-Z][A-Z0-9_]+)\"", text))
    documented = (ROOT / "docs" / "operations.md").read_text()

    missing = sorted(
        name
        for name in read
        if f"`{name}`" not in documented
        # Documented as a pair, e.g. `DEPLOY_RECONCILER_METRICS_PORT` / `_ADDR`.
        and f"`_{name.rsplit('_', 1)[-1]}`" not in documented
    )
    assert read and not missing, f"settings missing from docs/operations.md: {missing}"


def test_every_management_command_is_documented():
    commands = {
        path.stem
        for path in ROOT.glob("*/management/commands/*.py")
        if not path.stem.startswith("_")
    }
    documented = (ROOT / "docs" / "operations.md").read_text()

    assert commands and not sorted(c for c in commands if f"`{c}" not in documented)
