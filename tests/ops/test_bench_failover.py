"""The failover benchmark's report: its section replaces itself in docs/performance.md, and a
wait that ran out shows as its bound instead of as a number."""

import json
from pathlib import Path

from bench.failover import BEGIN, END, render_section, table
from bench.rollout import write_section

RESULT = json.loads((Path(__file__).parents[2] / "bench" / "results" / "failover.json").read_text())


def test_the_section_replaces_itself_and_keeps_the_rest(tmp_path):
    docs = tmp_path / "performance.md"
    docs.write_text("# Performance\n\nintro\n\n## Analysis of the missed goals\n\nnotes\n")
    block = f"{BEGIN}\n{render_section(RESULT)}\n{END}"

    write_section(docs, BEGIN, END, block)
    once = docs.read_text()
    write_section(docs, BEGIN, END, block)

    assert docs.read_text() == once
    assert once.count("## Reconciler failover") == 1
    assert once.index("intro") < once.index("## Reconciler failover") < once.index("## Analysis")


def test_a_wait_that_ran_out_is_shown_as_its_bound():
    result = json.loads(json.dumps(RESULT))
    result["sides"]["before"].update(restart_s=None, stage_end_s=None)

    [restart] = [row for row in table(result).splitlines() if "restart" in row]
    assert "| > 200 s |" in restart
