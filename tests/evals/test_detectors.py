"""The rule-based detectors on hand-written answers, and on the shared AlpacaEval files against their README."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from evals import detectors as d
from evals.real_responses import DATA_DIR

MARKDOWN = """## Overview

Here is **the plan**:

- first item
- second item

1. step one
2. step two
"""
CODE = """Use this:

```python
# not a header
x = 2 ** 3  # not **bold** either
- not a bullet
- still code
```
"""


def test_markdown_detectors() -> None:
    got = d.detect(MARKDOWN)
    assert got["header"] and got["bold"] and got["bullets"] and got["numbered"]
    plain = d.detect("A plain answer. It has one line - with a dash - and 2. numbers inline.")
    assert not any(plain[n] for n in ("header", "bold", "bullets", "numbered"))


def test_one_item_is_not_a_list_and_hashtag_is_not_a_header() -> None:
    assert not d.has_bullet_list("Intro\n- only one bullet\nthe end")
    assert not d.has_numbered_list("1. only one numbered line")
    assert not d.has_header("#hashtag is not a header")
    assert d.has_header("   ### Indented up to three spaces")
    assert d.has_bold("a **bold** word") and not d.has_bold("x ** 2 and __init__.py and ** alone")


def test_code_blocks_hide_markdown() -> None:
    got = d.detect(CODE)
    assert got["code_block"]
    assert not got["header"] and not got["bold"] and not got["bullets"]
    assert d.prose("a\n```\ncode\n") == "a\n\n"  # an unclosed fence runs to the end


def test_openers() -> None:
    for text in ("Certainly! Here it is.", "Sure, I can help.", "Of course. ", "  Absolutely: yes", "**Sure!**"):
        assert d.opens_with_certainly(text), text
    for text in ("I am sure that it works.", "Surely not.", "Here it is. Certainly it works."):
        assert not d.opens_with_certainly(text), text


def test_closing_offer_apology_and_ai_disclaimer() -> None:
    assert d.offers_more_help("...\n\nLet me know if you need anything else!")
    assert d.offers_more_help("Feel free to ask.") and d.offers_more_help("I hope this helps.")
    assert d.offers_more_help("Don't hesitate to reach out.")
    assert not d.offers_more_help("They let me go home early.")
    assert d.apologises("I'm sorry, but I can't do that.") and d.apologises("My apologies for the confusion.")
    assert d.apologises("I apologize for the error.") and not d.apologises("Sorrow is a theme of the poem.")
    assert d.as_an_ai("As an AI language model, I do not have opinions.")
    assert d.as_an_ai("I'm just an AI, so I can't browse.")
    assert not d.as_an_ai("AI is a field of computer science. As a result, ...")


def test_question_to_the_user() -> None:
    assert d.asks_user("Here is the answer. Would you like more examples?")
    assert d.asks_user('Ask yourself: "What do you want?" Then decide.')
    assert not d.asks_user("Why is the sky blue? Because of Rayleigh scattering.")  # no "you"
    assert not d.asks_user("### What do you need?\nA tent and a stove.")  # a section title
    assert not d.asks_user("```\nprint('are you there?')\n```")  # in code


def test_length_buckets() -> None:
    assert d.is_short("x" * (d.SHORT_MAX_CHARS - 1)) and not d.is_short("x" * d.SHORT_MAX_CHARS)
    assert d.is_long("x" * d.LONG_MIN_CHARS) and not d.is_long("x" * (d.LONG_MIN_CHARS - 1))
    assert d.is_short("  padded  " + " " * 1000)


def test_conclusion() -> None:
    assert d.has_conclusion("Body.\n\nIn conclusion, it works.")
    assert d.has_conclusion("Body.\n\n**In summary**, yes.") and d.has_conclusion("Body.\n\nOverall, fine.")
    assert d.has_conclusion("## In Conclusion\nDone.")
    assert not d.has_conclusion("Overall the results were mixed.")  # no comma: a plain sentence
    assert not d.has_conclusion("The word in conclusion appears mid-sentence.")


def test_detect_all_matches_detect() -> None:
    texts = [MARKDOWN, CODE, "Sure! I hope this helps.", ""]
    flags = d.detect_all(texts)
    assert flags.shape == (4, len(d.DETECTORS)) and flags.dtype == bool
    for i, t in enumerate(texts):
        assert [d.detect(t)[n] for n in d.NAMES] == flags[i].tolist()
    assert tuple(x.name for x in d.DETECTORS) == d.NAMES and all(x.query for x in d.DETECTORS)


def _rates(model: str) -> dict[str, float]:
    with gzip.open(DATA_DIR / f"{model}.jsonl.gz", "rt", encoding="utf-8") as f:
        outputs = [json.loads(line)["output"] for line in f]
    flags = d.detect_all(outputs)
    out = {n: float(v) for n, v in zip(d.NAMES, flags.mean(axis=0), strict=True)}
    out["chars"] = float(np.mean([len(t) for t in outputs]))
    return out


# The README's table of ../shared/data/alpaca_eval: chars, header, bold, bullets, certainly, offer_help.
README_TABLE = {
    "gpt4_0613": (1141, 0.01, 0.09, 0.06, 0.14, 0.04),
    "gpt-4o-2024-05-13": (1873, 0.30, 0.61, 0.41, 0.27, 0.08),
    "claude-2.1": (1097, 0.01, 0.00, 0.54, 0.02, 0.25),
    "llama-2-70b-chat-hf": (1793, 0.01, 0.00, 0.16, 0.29, 0.11),
    "Meta-Llama-3-70B-Instruct": (1919, 0.01, 0.64, 0.36, 0.00, 0.08),
    "text_davinci_003": (308, 0.00, 0.00, 0.01, 0.00, 0.01),
}


@pytest.mark.skipif(
    not DATA_DIR.is_dir(),
    reason=f"the shared AlpacaEval answers are not at {DATA_DIR} (../shared/data/alpaca_eval from the repo root)",
)
@pytest.mark.parametrize("model", sorted(README_TABLE))
def test_readme_table_reproduces(model: str) -> None:
    """Within 0.03 of the README's shares (its header count includes '#' lines inside code; ours does not)."""
    rates = _rates(model)
    chars, header, bold, bullets, certainly, offer = README_TABLE[model]
    assert rates["chars"] == pytest.approx(chars, abs=1)
    for name, want in (
        ("header", header),
        ("bold", bold),
        ("bullets", bullets),
        ("certainly", certainly),
        ("offer_help", offer),
    ):
        assert rates[name] == pytest.approx(want, abs=0.03), (model, name, rates[name], want)


def test_shared_path_is_the_documented_one() -> None:
    assert Path(__file__).resolve().parents[3] / "shared" / "data" / "alpaca_eval" == DATA_DIR
