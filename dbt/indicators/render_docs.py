"""Render the indicator registry (indicators.yml) into dbt docs blocks: the single source of the docs.

Every indicator becomes a ``{% docs indicator_<id> %}`` block in ``dbt/models/docs/indicators.md``; the
column the indicator lives in uses ``description: "{{ doc('indicator_<id>') }}"`` in its model's YAML, so
dbt docs (and everything reading dbt's manifest) show the registry's text.

    python dbt/indicators/render_docs.py           # rewrite the docs file
    python dbt/indicators/render_docs.py --check   # exit 1 when the docs file is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REGISTRY = HERE / "indicators.yml"
DOCS = HERE.parent / "models" / "docs" / "indicators.md"
DIRECTION = {"up": "higher is better", "down": "lower is better", "none": "neither direction is better"}


def load(path: Path = REGISTRY) -> list[dict]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["indicators"]


def doc_name(indicator_id: str) -> str:
    return f"indicator_{indicator_id}"


def render(indicators: list[dict]) -> str:
    out = ["<!-- Generated from dbt/indicators/indicators.yml by dbt/indicators/render_docs.py: do not edit. -->", ""]
    for ind in indicators:
        basis = "Official indicator." if ind["official"] else "Formula defined by this project (no official one)."
        lines = [
            f"{{% docs {doc_name(ind['id'])} %}}",
            f"**{ind['name_zh']}** ({ind['name_en']}). {ind['definition']}",
            "",
            f"Formula: `{ind['formula']}`. Grain: {ind['grain']}. Owner: {ind['owner']}. "
            f"Direction: {DIRECTION[ind['direction_of_good']]}. {basis}"
            + (f" Note: {ind['note']}" if ind.get("note") else ""),
            "{% enddocs %}",
            "",
        ]
        out += lines
    return "\n".join(out)


def main(argv: list[str]) -> int:
    text = render(load())
    if "--check" in argv:
        if not DOCS.exists() or DOCS.read_text(encoding="utf-8") != text:
            print(f"{DOCS} is out of date: run python dbt/indicators/render_docs.py", file=sys.stderr)
            return 1
        return 0
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text, encoding="utf-8")
    print(f"wrote {len(load())} indicator docs to {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
