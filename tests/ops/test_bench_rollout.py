"""The rollout benchmark's report: its section replaces itself in docs/performance.md, and an
unfinished wait shows as such instead of as a number."""

import json
from pathlib import Path

from bench.rollout import docs_block, table, write_docs

RESULT = json.loads((Path(__file__).parents[2] / "bench" / "results" / "rollout.json").read_text())


def test_the_section_replaces_itself_and_keeps_the_rest(tmp_path):
    docs = tmp_path / "performance.md"
    docs.write_text("# Performance\n\nintro\n\n## Analysis of the missed goals\n\nnotes\n")

    write_docs(RESULT, docs)
    once = docs.read_text()
    write_docs(RESULT, docs)

    assert docs.read_text() == once
    assert once.count("## Rollout engine") == 1
    assert once.index("intro") < once.index("## Rollout engine") < once.index("## Analysis")
    assert docs_block(RESULT) in once


def test_a_wait_that_ran_out_is_shown_as_its_bound():
    result = json.loads(json.dumps(RESULT))
    finish = result["sides"]["before"]["finish"]
    finish.update(p95_s=None, max_s=None, not_final=7, jobs=100, bound_s=30.0)

    rows = table(result).splitlines()
    [latency] = [row for row in rows if "deployment is final, p95" in row]
    assert "> 30 / > 30 (7 of 100 not final)" in latency
