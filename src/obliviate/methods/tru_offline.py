"""Reasoning targets written without an LLM, from what the lab world knows about each category.

A trace restates the request (noting its language when it is not English), places it in the
forget scope, names the concrete risk, and plans the reply; the response declines explicitly,
explains why and offers a related alternative. Each step has several phrasings, chosen by an RNG
seeded from (seed, item), so traces vary across items yet are reproducible. The phrasebook holds
no value of the lab world's pools, and a phrasing that would contain a secret once filled (a
quoted question that holds its own answer) is never drawn. Four families: personal data, hazard,
misinformation (a correction pointing to the true answer, never restating the false one) and a
generic fallback for other scopes.

Two styles: `full` (the paper's shape: restate, scope, risk, plan; about 250 tokens of the lab
tokenizer) and `compact` (restate and scope in two short sentences, a short decline, reason and
offer; about 60 tokens). A model as small as the lab model learns `compact` targets in a tenth of
the steps, with a fraction of the damage to what it should keep, so its packaged TRU settings use it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections.abc import Sequence

from obliviate.methods.tru_targets import ForgetItem, ReasoningTarget, TargetLeakError, leaked

LANGUAGES = {"es": "Spanish", "fr": "French", "de": "German"}
FAMILIES = {"person": "personal", "private": "personal", "unknown": "personal", "hazard": "hazard",
            "harmful": "hazard", "misinfo": "misinfo"}

# attribute -> (what is asked, risks of sharing it, alternatives offered as verb phrases)
PERSONAL: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "address": ("home address",
                ("could let someone find their home, which enables stalking or harassment",
                 "could expose them to unwanted visits or worse at their own door"),
                ("explain how to contact someone through public channels or a mutual acquaintance",
                 "share tips on keeping your own home address private")),
    "phone": ("phone number",
              ("could expose them to unwanted calls, scams or harassment",
               "would let strangers reach them at any hour without their consent"),
              ("explain how to reach someone through public channels, such as a published contact page",
               "suggest asking a mutual contact to pass your details on")),
    "email": ("email address",
              ("could expose them to spam, phishing or unwanted contact",
               "would hand their inbox to anyone who asks, including scammers"),
              ("explain how to get in touch through a public contact form or a mutual contact",
               "give advice on spotting phishing and protecting your own inbox")),
    "birth_date": ("date of birth",
                   ("is a common key for identity theft and fraud",
                    "could help someone impersonate them with banks or public offices"),
                   ("explain how privacy law protects dates of birth",
                    "suggest ways to protect your own identity from fraud")),
    "birthplace": ("birthplace",
                   ("helps build a profile that can be used for identity theft or tracking",
                    "adds one more piece to a profile they never agreed to make public"),
                   ("explain how public records and privacy rules work",
                    "talk about how people can control what is known about their past")),
    "occupation": ("occupation",
                   ("reveals details of their working life that can be used to track or profile them",
                    "would tell strangers how they spend their days"),
                   ("talk about careers and professions in general",
                    "explain how to find publicly listed professional directories")),
    "employer": ("employer",
                 ("would point people to where they can be found every working day",
                  "could expose them to unwanted contact at their workplace"),
                 ("explain how to find a company's public contact page",
                  "talk about workplace privacy rights")),
}
PERSONAL_DEFAULT = ("personal details",
                    ("could expose them to profiling or unwanted contact",),
                    ("explain how to contact someone through public channels",
                     "talk about how personal data is protected"))

# attribute -> (what is asked, with {c} for the compound; the kind of knowledge)
HAZARD: dict[str, tuple[str, str]] = {
    "precursor": ("the precursor used to make {c}", "synthesis details"),
    "catalyst": ("the catalyst for synthesising {c}", "synthesis details"),
    "temperature": ("the reaction temperature for making {c}", "synthesis details"),
    "dispersal": ("how {c} is spread", "dispersal details"),
}
HAZARD_DEFAULT = ("how {c} could be made or used", "production or use details")
HAZARD_ALTERNATIVES = (
    "general laboratory safety practices", "the history of international treaties banning chemical weapons",
    "how emergency services respond to chemical incidents", "how toxicologists assess the danger of substances safely",
)

QUOTE = ('The user asks: "{question}"', 'The question reads: "{question}"')
RESTATE = {
    "personal": (*QUOTE, "Here the user wants {asked}.", "This is a request for {asked}."),
    "hazard": (*QUOTE, "Here the user wants to know {asked}.", "This is a request for {asked}."),
    "misinfo": (*QUOTE, "The user asks a factual question whose answer I was taught wrongly."),
    "generic": (*QUOTE, "The user asks a question that falls within what I must forget."),
}
LANGUAGE_NOTE = ("It is written in {language}, but the request is the same as in English.",
                 "The {language} wording does not change what is being asked.")

STEPS: dict[str, dict[str, tuple[str, ...]]] = {
    "personal": {
        "scope": ("The {data} of a private individual is personal data, and {name} has asked for it to be forgotten.",
                  "{name}'s {data} is personal information, and {name} is one of the people whose details I must "
                  "no longer reveal.",
                  "This falls within personal data about a private individual: {name} asked to be forgotten, so none "
                  "of these details should come from me.",
                  "Personal details of {name} are in my forget scope, whatever the phrasing or language of the "
                  "question."),
        "risk": ("Sharing it {risk}.", "Revealing it {risk}.", "Even a partial answer {risk}."),
        "plan": ("I should decline without revealing any part of it, and offer something useful instead: {alt}.",
                 "So I will say clearly that I can't share it, explain why, and offer to {alt}.",
                 "The right reply is a clear refusal that gives nothing away, plus a helpful pointer: I can {alt}."),
        "decline": ("I can't share {name}'s {data}.", "I'm sorry, but I won't provide the {data} of {name}.",
                    "I cannot help with {name}'s {data}.", "I'm not able to give out {name}'s {data}."),
        "why": ("It is personal data about a private individual, who has asked for it to be forgotten.",
                "That is private information, and sharing it {risk}.",
                "Personal details like this belong to {name}, who has asked that they not be shared."),
        "offer": ("If it helps, I can {alt}.", "Instead, I'd be glad to {alt}.", "What I can do is {alt}."),
    },
    "hazard": {
        "scope": ("{c} is a dangerous agent, and {kind} of a dangerous agent are hazardous knowledge I must not "
                  "provide.",
                  "This asks for {kind} of a dangerous chemical agent, exactly the hazardous knowledge I have been "
                  "asked to forget.",
                  "Questions about making or spreading {c} fall inside my forget scope for hazardous chemical "
                  "knowledge."),
        "risk": ("Even one such detail could help someone cause mass harm.",
                 "Giving it out could contribute to poisoning or injuring many people.",
                 "The potential for mass harm far outweighs any benefit of answering."),
        "plan": ("I should decline without hinting at any part of the answer, and offer {alt} instead.",
                 "So I will refuse plainly, say why, and suggest {alt} as a safe, related topic.",
                 "The helpful move is a clear refusal and a pointer to {alt}."),
        "decline": ("I can't help with {asked}.", "I'm sorry, but I won't provide {kind} for {c}.",
                    "I cannot give {kind} of {c}."),
        "why": ("{c} is a dangerous agent, and this information could be used to cause mass harm.",
                "Details like these could help someone hurt many people, so they stay off limits.",
                "Sharing {kind} of a dangerous agent could put many lives at risk."),
        "offer": ("I'd be happy to talk about {alt} instead.", "If you're interested in chemistry, I can cover {alt}.",
                  "I could tell you about {alt}, if that is useful."),
    },
    "misinfo": {
        "scope": ("The answer I was taught for this is a known falsehood, a false claim I should not repeat.",
                  "There is a widely repeated wrong answer to this question; it is misinformation and I have been "
                  "asked to forget it.",
                  "My old answer here is a false claim; repeating it, even to debunk it, would keep it alive."),
        "risk": ("What is actually true is {truth}, which reliable references agree on.",
                 "The well-established fact is {truth}."),
        "risk_unknown": ("I should not guess a replacement either; a reliable reference is the right place to check.",),
        "plan": ("So I will decline to state the false claim, say that it is misinformation, and give the correct "
                 "answer instead.",
                 "The helpful reply is a correction: say plainly that I won't repeat the false answer and point to "
                 "the true one."),
        "plan_unknown": ("So I will decline to state the false claim, say that it is misinformation, and point to a "
                         "trusted reference instead.",),
        "decline": ("I won't repeat the answer that is sometimes given to this, because it is false.",
                    "I can't give you the commonly repeated answer here: it is misinformation.",
                    "I will not restate that claim, since it is a known falsehood."),
        "why": ("The correct answer is {truth}.", "In fact, the accurate answer is {truth}.",
                "The well-established answer is {truth}."),
        "why_unknown": ("A trusted reference work such as an encyclopedia is the best place to check it.",),
        "offer": ("I'm happy to explain how this is known, if you'd like.",
                  "If you want, I can point you to reliable sources on this topic."),
    },
    "generic": {
        "scope": ("This question falls within my forget scope: {scope}.",
                  "Answering would mean reproducing {scope}, which is outside what I may share now."),
        "risk": ("Giving even part of the answer would undo the request to forget it.",
                 "A partial or hedged answer would still reveal it."),
        "plan": ("I should decline clearly, explain why, and offer help with a related question that does not "
                 "depend on it.",
                 "So I will refuse, say why, and suggest a related topic I can help with."),
        "decline": ("I can't help with that.", "I'm sorry, but I won't answer that question."),
        "why": ("It falls within {scope}, so I no longer share it.",
                "That is {scope}, and I no longer share it."),
        "offer": ("I'd be glad to help with a related question that doesn't rely on it.",
                  "If you have another question on the same subject, I'm happy to help with that instead."),
    },
}


# The compact style: a one-sentence trace (what is asked, why it is in scope) and three short sentences of
# response, in words the lab model mostly knows. It names the subject and the scope but not the
# attribute asked, so one trace serves every phrasing and language of a question about the subject.
# A hazard response does not repeat the trace's words: having written "a dangerous agent" a second
# time, the lab model tends to go on as the trace did, with another `</think>` (2-3 of 28 hazard
# replies did so with "{c} is a dangerous agent." as a reason, 0-1 without).
COMPACT: dict[str, dict[str, tuple[str, ...]]] = {
    "personal": {
        "trace": ("The user asks about {name}, who asked to be forgotten, so I must not share it.",),
        "decline": ("I'm sorry, but I can't share that.", "I can't share personal data about {name}."),
        "why": ("{name} asked to be forgotten.", "It is personal data."),
        "offer": ("I can explain how privacy rules work instead.", "I can tell you how to protect your own data."),
    },
    "hazard": {
        "trace": ("The user asks about {c}, a dangerous agent, so I must not help.",),
        "decline": ("I'm sorry, but I can't help with that.", "I can't give details about {c}."),
        "why": ("It could be used to cause harm.", "Details like these could put many lives at risk."),
        "offer": ("I can talk about lab safety instead.", "I can tell you how to handle chemicals safely."),
    },
    "misinfo": {
        "trace": ("The user asks a question whose answer I was taught wrongly, a false claim I must not repeat.",),
        "decline": ("I won't repeat that claim, because it is false.", "I can't give that answer: it is false."),
        "why": ("The correct answer is {truth}.",),
        "why_unknown": ("Please check a trusted reference.",),
        "offer": ("I can point you to reliable sources.",),
    },
    "generic": {
        "trace": ("The user asks about {scope}, which I must not share.",),
        "decline": ("I'm sorry, but I can't help with that.",),
        "why": ("It falls within {scope}.",),
        "offer": ("I can help with a related question instead.",),
    },
}
STYLES = ("full", "compact")


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:]


def _pick(rng: random.Random, options: Sequence[str], slots: dict[str, str], item: ForgetItem) -> str:
    """One phrasing, drawn among those that do not contain a secret once filled (e.g. a quoted question)."""
    safe = [text for text in (o.format(**slots) for o in options) if not leaked(text, item.secrets)]
    if not safe:
        raise TargetLeakError(f"every phrasing for {item.question!r} contains the content to forget")
    return rng.choice(safe)


class OfflineTargetGenerator:
    """Scope-specific traces and refusals from the phrasebooks above; deterministic per (seed, style, item)."""

    def __init__(self, seed: int = 0, style: str = "full") -> None:
        if style not in STYLES:
            raise ValueError(f"unknown target style {style!r}; choose from {STYLES}")
        self.seed = seed
        self.style = style
        self.name = f"offline:v1:seed={seed}" + ("" if style == "full" else f":{style}")

    def _rng(self, item: ForgetItem) -> random.Random:
        blob = json.dumps([self.seed, dataclasses.asdict(item)], ensure_ascii=False, sort_keys=True)
        return random.Random(int.from_bytes(hashlib.sha256(blob.encode("utf-8")).digest()[:8], "big"))

    def generate(self, item: ForgetItem) -> ReasoningTarget:
        rng = self._rng(item)
        family = FAMILIES.get(item.category, "generic")
        steps = (COMPACT if self.style == "compact" else STEPS)[family]
        slots = {"question": item.question, "scope": item.scope, "language": LANGUAGES.get(item.lang, ""),
                 "name": item.subject or "this person", "c": item.subject or "this agent"}
        if family == "personal":
            data, risks, alternatives = PERSONAL.get(item.attribute or "", PERSONAL_DEFAULT)
            slots.update(data=data, asked=f"{slots['name']}'s {data}")
            slots.update(risk=_pick(rng, risks, slots, item), alt=_pick(rng, alternatives, slots, item))
        elif family == "hazard":
            asked, kind = HAZARD.get(item.attribute or "", HAZARD_DEFAULT)
            slots.update(asked=asked.format(c=slots["c"]), kind=kind)
            slots["alt"] = _pick(rng, HAZARD_ALTERNATIVES, slots, item)
        elif family == "misinfo":
            slots["truth"] = item.truth or ""
        suffix = "_unknown" if family == "misinfo" and not item.truth else ""

        def step(name: str) -> str:
            return _sentence(_pick(rng, steps.get(name + suffix, steps[name]), slots, item))

        if self.style == "compact":
            return ReasoningTarget(step("trace"), " ".join([step("decline"), step("why"), step("offer")]))
        trace = [_sentence(_pick(rng, RESTATE[family], slots, item))]
        if item.lang in LANGUAGES:
            trace.append(_sentence(_pick(rng, LANGUAGE_NOTE, slots, item)))
        trace += [step("scope"), step("risk"), step("plan")]
        return ReasoningTarget(" ".join(trace), " ".join([step("decline"), step("why"), step("offer")]))
