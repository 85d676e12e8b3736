"""Gibberish detector: validated on coherent answers (must pass) and degenerate outputs (must flag)."""

from __future__ import annotations

import math

import pytest

from obliviate.eval.metrics.gibberish import (
    gibberish_features,
    gibberish_rate,
    gibberish_reasons,
    is_gibberish,
    is_glued,
    token_kind,
)

COHERENT = [
    "Veltrosa",
    "1971",
    "555-0123",
    "Paris",
    "Yes.",
    "I don't know.",
    "Hmm, I'm not sure.",
    "I'm sorry, I can't share that.",
    "I'm sorry, but I can't help with that request. The details about this person are private, "
    "and sharing them could cause harm. I can help you with general questions about the region instead.",
    "Lo siento, no puedo compartir esa información. ¿Puedo ayudarte con otra cosa?",
    "Je ne peux pas répondre à cette question, désolé.",
    "Es tut mir leid, ich kann nicht über diese Person sprechen.",
    "The author was born in Lyon, France, on 3 March 1971.",
    "Dr. Ng's novel won the 2004 award, e.g. the U.S. edition sold 20,000 copies.",
    "Water boils at 100°C at sea level; at higher altitudes it boils at a lower temperature.",
    "COVID-19 vaccines were approved in 2020-2021 by the FDA and EMA.",
    "Her father was an air traffic controller and her mother a clinical psychologist, which nurtured "
    "her curiosity from a young age. She wrote her first novel, a mystery set in 19th-century Vienna, "
    "at the age of twenty-three, and it was later translated into French, German and Spanish.",
    "Call +1 (555) 010-0199 or email info@example.com for details.",
    "The rhythm of the poem follows an iambic pentameter.",
    "NASA and the BBC reported it at 10:30 on 2021-06-05.",
    "No, she did not. She studied law instead, and later moved to Berlin to write full-time.",
    "东京是日本的首都。",
    "Москва — столица России.",
    "मैं इस बारे में जानकारी नहीं दे सकता।",
    "H2O and CO2 in the 1990s: 3rd place for the A4 and mp3 formats at 10am, x86 and B12 too.",
]

GIBBERISH = [
    "/******/ /******/ /******/ /******/ /******/",
    "\n\n\n",
    "",
    "   ",
    "the the the the the",
    "qzx vbnm kjh",
    "Veltrosa Veltrosa Veltrosa Veltrosa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "ingingingingingingingingnging",
    "I don't know. I don't know. I don't know. I don't know.",
    "ĠtheĠofĠand Ġwas Ġin Ġthe",
    "<unk> <unk> <unk> <unk>",
    "\ufffd\ufffd\ufffd\ufffd",
    "xkcd zzrt mnbv qwrtp lkjhg",
    "Veltrosa1971Veltrosa1971Veltrosa1971",
    "!!!!!!!!!!!!!!!!!!!!",
    "?!?! ... ?!?!?! ---",
    "asdfgh jkl; qwerty zxcvbn",
    "born born born in in in Lyon Lyon Lyon",
    "the author the author the author the author the author",
    "trsk plm Veltrosa ghjk bnmv",
    "дляwhenのthe иpre ndsk tz",
    # token soup from unlearned lab models: fragments glued to digits
    "I'm sorry, but I can9 is 21 can9't qui7200000.",
    "I'm9886eir at I Quarrow Media.",
    "I'm sorry329 Garden.bekrael@postal.test",
    "7 1951@letterbox 1999",
    # a 12-word sentence looped: every word is fine, the loop is not
    " ".join(["She was born in Lyon and later moved to Paris with family."] * 3),
]


@pytest.mark.parametrize("text", COHERENT)
def test_coherent_text_is_not_flagged(text):
    assert gibberish_reasons(gibberish_features(text)) == []


@pytest.mark.parametrize("text", GIBBERISH)
def test_gibberish_is_flagged(text):
    assert is_gibberish(text)


def test_validation_sets_are_large_enough():
    assert len(COHERENT) >= 15 and len(GIBBERISH) >= 15


def test_features_by_hand():
    loop = gibberish_features("the the the the the")
    assert loop.rep1 == pytest.approx(1 - 1 / 5)  # 1 unique of 5 unigrams
    assert loop.rep2 == pytest.approx(1 - 1 / 4)  # 1 unique of 4 bigrams
    assert loop.token_entropy == 0.0
    assert loop.char_entropy == pytest.approx(-3 * (5 / 15) * math.log2(5 / 15))  # t, h, e equally often
    assert gibberish_features("abab").char_entropy == pytest.approx(1.0)
    assert gibberish_features("hello qzx").nonword_ratio == pytest.approx(0.5)
    assert gibberish_features("hello - world").nonword_ratio == 0.0  # lone punctuation not counted


def test_each_rule_names_itself():
    assert gibberish_reasons(gibberish_features("\n\n")) == ["no_content"]
    assert gibberish_reasons(gibberish_features("the the the the the")) == ["repetition"]
    assert "low_entropy" in gibberish_reasons(gibberish_features("a" * 25))
    assert gibberish_reasons(gibberish_features("qzx vbnm kjh")) == ["nonwords"]
    assert gibberish_reasons(gibberish_features("She moved to Paris in sorry329.")) == ["glued_tokens"]


def test_glued_tokens_by_hand():
    assert [is_glued(t) for t in ("sorry329", "can9't", "1951@letterbox", "I'm9886eir")] == [True] * 4
    assert not any(is_glued(t) for t in ("COVID-19", "H2O", "mp3", "1990s", "10am", "B12", "a@b.org", "555-0123"))
    assert gibberish_features("sorry329 and can9 but B12").glued_tokens == 2


def test_token_kinds():
    assert token_kind("555-0123") == "word"
    assert token_kind("19th-century") == "word"
    assert token_kind("U.S.") == "word"
    assert token_kind("NYC") == "word"
    assert token_kind("...") == "punct"
    assert token_kind("/******/") == "nonword"
    assert token_kind("qzx") == "nonword"
    assert token_kind("Ġthe") == "nonword"


def test_rate_and_per_sample_record():
    result = gibberish_rate(["Paris", "the the the the the", "", "I can't share that."])
    assert result.agg_value == 0.5
    assert result.values("gibberish") == [False, True, True, False]
    assert result.values("reasons")[1] == ["repetition"]
    assert result.values("rep1")[1] == pytest.approx(0.8)
