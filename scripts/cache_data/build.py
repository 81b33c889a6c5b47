"""Writes the cache's labelled pairs written for issue 18 (``tests/data/cache_pairs.jsonl``).

Each group is one cached request with several queries against it; ``expect`` follows from the
kind (paraphrase and cosmetic_context must hit; every other kind must miss). A query without its
own context uses the group's; a context swap without its own task uses the cached task.
Run: ``python scripts/cache_data/build.py`` (it also folds in issue 6's development set).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from scripts.cache_data import part_a, part_b, part_c  # noqa: E402

HIT = {"paraphrase", "cosmetic_context"}
KINDS = HIT | {"context_swap", "unrelated", "trap_number", "trap_negation", "trap_direction"}
KINDS |= {"trap_entity", "trap_scope"}
#: Domains split off as the test part before any rule of issue 18 was changed by their results.
TEST_DOMAINS = {
    "hr-payroll", "education-lms", "scientific-computing", "insurance-claims", "event-ticketing",
    "dev-tooling", "game-dev",
    "geo-logistics", "media", "ml-ops", "search-ecommerce",
}  # fmt: skip


def records() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for line in (ROOT / "tests" / "data" / "cache_dev.jsonl").read_text().splitlines():
        if line.strip():
            out.append({**json.loads(line), "domain": "issue-6", "part": "dev"})
    for module, prefix in ((part_a, "nd"), (part_b, "ne"), (part_c, "nf")):
        for g, (domain, context, task, queries) in enumerate(module.GROUPS, start=1):
            group = f"{prefix}-g{g:02d}"
            for q, query in enumerate(queries, start=1):
                kind, text, *rest = query
                assert kind in KINDS, kind
                query_context = rest[0] if rest else context
                out.append(
                    {
                        "id": f"{group}-{q}",
                        "domain": domain,
                        "part": "test" if domain in TEST_DOMAINS else "dev",
                        "group": group,
                        "kind": kind,
                        "expect": "hit" if kind in HIT else "miss",
                        "cached": {"task": task, "context": context},
                        "query": {"task": text or task, "context": query_context},
                    }
                )
    return out


def main() -> None:
    rows = records()
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    extra = sorted((ROOT / "tests" / "data").glob("cache_new_*.jsonl"))
    for path in extra:  # pairs written by others, who never read the rules
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows.append({**row, "part": "test" if row["domain"] in TEST_DOMAINS else "dev"})
    target = ROOT / "tests" / "data" / "cache_pairs.jsonl"
    target.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"{len(rows)} pairs -> {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
