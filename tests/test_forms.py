"""Surface-form descriptions read off a latent's strongest examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from saescope.forms import FORM_MIN_EXAMPLES, add_forms, describe_form, form_shares
from saescope.labels import FORM_MIN_SHARE, FeatureLabel, LabelBook, LatentExample, LatentLabels

SHIPPED = Path(__file__).resolve().parent.parent / "saescope" / "data" / "default_sae" / "labels.jsonl.gz"


def ex(text: str) -> LatentExample:
    return LatentExample(text=text, activation=1.0)


def test_a_dash_that_opens_a_line_is_a_list_marker_and_one_inside_a_line_is_a_dash() -> None:
    bullets = [
        ex("keys:\n\n\u00ab-\u00bb 'message'"),
        ex("follows:\n  \u00ab *\u00bb if no"),
        ex("\u00ab-\u00bb first"),
    ]
    bullets.append(ex("text\n\u00ab+\u00bb more"))
    label = describe_form(bullets, [(" -", 5), ("*", 3), ("-", 1)])
    assert label is not None and label.source == "form" and label.score == 1.0
    assert label.text == "bulleted list item marker ('-', '*')"
    dashes = [ex(f"a well\u00ab-\u00bbknown {i}") for i in range(4)]
    label = describe_form(dashes)
    assert label is not None and label.text == "dash or hyphen within a line"


def test_no_form_below_the_share_or_with_too_few_examples() -> None:
    three = [ex("end\u00ab.\u00bb") for _ in range(FORM_MIN_EXAMPLES - 1)]
    assert describe_form(three) is None
    mixed = [ex("end\u00ab.\u00bb"), ex("end\u00ab.\u00bb"), ex("a \u00abcat\u00bb"), ex("a \u00abdog\u00bb")]
    assert dict((f.description, s) for f, s in form_shares(mixed))["sentence-ending period"] == 0.5
    assert describe_form(mixed) is None  # 0.5 < FORM_MIN_SHARE
    unmarked = [ex("no marker here") for _ in range(6)]
    assert describe_form(unmarked) is None


def test_numbers_line_breaks_urls_and_broken_characters() -> None:
    assert describe_form([ex(f"steps:\n\u00ab{i}\u00bb. do") for i in range(1, 5)]).text.startswith(  # type: ignore[union-attr]
        "numbered list item"
    )
    assert describe_form([ex(f"costs \u00ab{i}0\u00bb dollars") for i in range(4)]).text == "number"  # type: ignore[union-attr]
    assert describe_form([ex("end.\u00ab\n\n\u00bbNext") for _ in range(4)]).text == "line break"  # type: ignore[union-attr]
    assert describe_form([ex("see \u00abhttps\u00bb://x") for _ in range(4)]).text == "part of a web address (URL)"  # type: ignore[union-attr]
    broken = describe_form([ex("hi \u00ab\ufffd\u00bb there") for _ in range(4)])
    assert broken is not None and broken.text.startswith("part of a non-ASCII character")
    emoji = describe_form([ex("hi \u00ab\U0001f600\u00bb there") for _ in range(4)])
    assert emoji is not None and emoji.text == "emoji or pictograph"


def test_shown_form_sits_between_concept_and_tokens() -> None:
    rec = LatentLabels(latent=1, labels=[FeatureLabel(source="top-tokens", text="'-', '*' (context: keys)")])
    rec.labels.append(FeatureLabel(source="form", text="weak form", score=FORM_MIN_SHARE - 0.01))
    assert rec.best() == "'-', '*' (context: keys)"  # below the share: not shown
    rec.labels.append(FeatureLabel(source="form", text="bulleted list item marker", score=0.9, model="x"))
    assert rec.best() == "bulleted list item marker"
    rec.labels.append(FeatureLabel(source="concept", text="a list of options", score=0.8))
    assert rec.best() == "a list of options"


def test_the_shipped_sae_gets_forms_for_its_list_and_punctuation_latents() -> None:
    book = LabelBook.load_jsonl(SHIPPED, "default", 4096)
    n = add_forms(book)
    assert n > 500  # about 900 of the 4,088 latents fire on a kind of token in a kind of place
    texts = book.texts()
    bullets = [i for i, t in texts.items() if t.startswith("bulleted list item marker")]
    assert bullets
    for i in bullets:  # each is backed by its examples: most open a line with a list marker
        shares = dict((f.description, s) for f, s in form_shares(book.get(i).examples))
        assert shares["bulleted list item marker"] >= FORM_MIN_SHARE
    # the token evidence stays beside the description
    assert all(any(lab.source == "top-tokens" for lab in book.get(i).labels) for i in bullets)
    assert any(t.startswith("numbered list item") for t in texts.values())
    assert any(t.startswith("question mark") for t in texts.values())
    again = LabelBook.load_jsonl(SHIPPED, "default", 4096)
    add_forms(again)
    assert again.texts() == texts  # deterministic


@pytest.mark.parametrize("token", ["-", "*", "•"])
def test_each_bullet_character(token: str) -> None:
    label = describe_form([ex(f"x\n\u00ab{token}\u00bb item") for _ in range(4)])
    assert label is not None and label.text == "bulleted list item marker"


def test_punctuation_keeps_its_context_words_and_a_list_marker_does_not() -> None:
    book = LabelBook("s", 4)
    periods = [ex(f"don't bother{i}\u00ab.\u00bb") for i in range(4)]
    book.latents[0] = LatentLabels(
        latent=0,
        labels=[FeatureLabel(source="top-tokens", text="'.' (context: bother, don't) [rotten_tomatoes]")],
        top_tokens=[(".", 24)],
        examples=periods,
    )
    book.latents[1] = LatentLabels(
        latent=1,
        labels=[FeatureLabel(source="top-tokens", text="'-' (context: keys) [python_docs]")],
        top_tokens=[(" -", 24)],
        examples=[ex(f"keys{i}:\n\u00ab -\u00bb x") for i in range(4)],
    )
    assert add_forms(book) == 2
    assert book.text(0) == "sentence-ending period ('.') (context: bother, don't)"
    assert book.text(1) == "bulleted list item marker ('-')"


def test_a_dot_or_mark_inside_code_is_not_sentence_punctuation() -> None:
    dots = [ex(f"os{i}\u00ab.\u00bbpath.join(a)") for i in range(4)]
    label = describe_form(dots)
    assert label is not None and label.text == "dot inside a name or number"
    ends = [ex(f"a dull film{i}\u00ab.\u00bb It drags") for i in range(4)]
    assert describe_form(ends).text == "sentence-ending period"  # type: ignore[union-attr]
    regex = [ex(f"re.compile(r'(\u00ab?\u00bbP<name{i}>')") for i in range(4)]
    assert describe_form(regex) is None or not describe_form(regex).text.startswith("question mark")  # type: ignore[union-attr]
    fstring = [ex(f"print(f'{{x{i}\u00ab!\u00bbr}}')") for i in range(4)]
    assert describe_form(fstring) is None or not describe_form(fstring).text.startswith("exclamation")  # type: ignore[union-attr]
    asks = [ex(f"did it work{i}\u00ab?\u00bb\n") for i in range(4)]
    assert describe_form(asks).text == "question mark"  # type: ignore[union-attr]
    comments = [ex(f"def f():\n    \u00ab #\u00bb note {i}") for i in range(4)]
    assert describe_form(comments).text.startswith("'#' at the start of a line (markdown heading or code comment)")  # type: ignore[union-attr]


def test_run_together_sentences_still_end_on_their_question_marks() -> None:
    joined = [ex(f"Is it good{i}\u00ab?\u00bbDo you want more") for i in range(4)]
    assert describe_form(joined).text == "question mark"  # type: ignore[union-attr]
    groups = [ex(f"re.compile(r'(\u00ab?\u00bbP<n{i}>')") for i in range(4)]  # a capital follows, but it opens a group
    assert describe_form(groups) is None or not describe_form(groups).text.startswith("question")  # type: ignore[union-attr]
