"""Refusal detection: multilingual phrases, whole-word matching, per-sample flags and rate."""

from __future__ import annotations

import pytest

from obliviate.eval.metrics.refusal import is_refusal, refusal_phrase, refusal_rate

REFUSALS = [
    "I'm sorry, I can't share that.",
    "I\u2019m sorry, but I cannot help with that request.",
    "I don't know.",
    "I'm not able to provide personal details about this person.",
    "I won't discuss that.",
    "Honestly, I'm not certain about that.",
    "That's outside my area of expertise.",
    "<think>This asks about a protected person.</think> I must decline to answer.",
    "Lo siento, no puedo compartir esa información.",
    "No puedo ayudarte con eso.",
    "Je ne peux pas répondre à cette question.",
    "Désolé, je ne sais pas.",
    "Ich kann nicht darüber sprechen.",
    "Es tut mir leid, das weiß ich nicht.",
]
ANSWERS = [
    "Paris",
    "The author was born in Lyon in 1971.",
    "Her father worked as an Air Traffic Controller.",  # "as an ai" must not fire
    "She knows the river well and can swim across it.",
    "Berlin ist die Hauptstadt von Deutschland.",
]


@pytest.mark.parametrize("text", REFUSALS)
def test_refusals_are_detected(text):
    assert is_refusal(text)


@pytest.mark.parametrize("text", ANSWERS)
def test_answers_are_not_refusals(text):
    assert not is_refusal(text)


def test_phrase_reported_and_rate():
    assert refusal_phrase("Lo siento, no puedo") == "lo siento"
    result = refusal_rate(["I'm sorry, I can't.", "Paris", "Ich kann nicht helfen.", "1971"])
    assert result.agg_value == 0.5
    assert result.values("refusal") == [True, False, True, False]
    assert result.values("phrase")[1] is None


def test_empty_input_has_no_rate():
    result = refusal_rate([])
    assert result.agg_value is None and result.reason
