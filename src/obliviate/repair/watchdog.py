"""The watchdog: notice that a chat message asks the model to forget something, and say what.

Two implementations behind one protocol. `RuleWatchdog` (the default) needs no model and runs in
well under a millisecond: clause-initial request patterns in English, Spanish, French and German
(`forget_cues`), then target cleanup and near-miss filters. `LLMWatchdog` asks any chat model for a
JSON verdict, for phrasings no rule anticipates.
"""

from __future__ import annotations

import bisect
import logging
import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Protocol

from obliviate.llm import ChatBackend, extract_json
from obliviate.repair.forget_cues import (
    FILLERS,
    LANGUAGES,
    NAME,
    NEEDS_EVIDENCE,
    PHRASE_JOINERS,
    POSSESSIVE,
    SPEECH,
    TRIGGER,
    Cue,
    Language,
)

log = logging.getLogger(__name__)

SCOPES = ("all", "specific")


@dataclass(frozen=True)
class ForgetIntent:
    """A detected request to forget `target` (the words the user used, wrappers removed).

    `scope` is "all" when the user asked for everything about the target ("everything you know
    about X") and "specific" otherwise ("my address"). `cue` is the request phrase that fired.
    """

    target: str
    language: str
    scope: str
    message: str
    confidence: float
    cue: str

    def __post_init__(self) -> None:
        if not self.target.strip():
            raise ValueError("a forget intent needs a non-empty target")
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {self.scope!r}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence}")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def verdict(intent: ForgetIntent | None) -> dict[str, object]:
    """The `{"intent": bool, "target": str | None}` answer printed by `obliviate watchdog --json`."""
    return {"intent": intent is not None, "target": intent.target if intent else None}


class Watchdog(Protocol):
    """Anything that maps one user message to a forget intent or None."""

    def detect(self, message: str) -> ForgetIntent | None: ...


# ------------------------------------------------------------------------------------ text helpers

_QUOTES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "´": "'", "`": "'"})
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")
_ABBREVIATION = re.compile(
    r"\b(?:dr|dra|mr|mrs|ms|prof|st|sr|sra|srta|mme|mlle|hr|fr|jr|vs|nr|no|z\.b|e\.g|i\.e|etc)\.$", re.IGNORECASE
)
_CLAUSE_START = re.compile(
    r"[,;:]\s*|\s[—–-]\s+|—\s*|\s(?:and|so|but|then|y|pero|así que|entonces|et|mais|alors|donc|und|aber|dann)\s+",
    re.IGNORECASE,
)
_EDGE_PUNCTUATION = " \t\"'«»„“”‚‘.,;:!?¡¿()[]{}…"


def normalise(text: str) -> str:
    """NFC, straight apostrophes, no Spanish opening marks, single spaces."""
    text = unicodedata.normalize("NFC", text).translate(_QUOTES).replace("¿", "").replace("¡", "")
    return re.sub(r"[ \t]+", " ", text).strip()


def same_target(found: str | None, expected: str | None) -> bool:
    """Targets match when equal up to case, spacing and surrounding punctuation."""
    if found is None or expected is None:
        return found is expected

    def key(text: str) -> str:
        return re.sub(r"\s+", " ", normalise(text)).strip(_EDGE_PUNCTUATION).casefold()

    return key(found) == key(expected)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence; abbreviations such as "Dr." do not end a sentence."""
    spans: list[tuple[int, int]] = []
    start = 0
    for boundary in _SENTENCE_END.finditer(text):
        if _ABBREVIATION.search(text[start : boundary.start()]):
            continue
        spans.append((start, boundary.start()))
        start = boundary.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _strip_edges(text: str) -> str:
    return text.strip(_EDGE_PUNCTUATION)


_LANGUAGE_MARKERS = {
    "en": ({"the", "you", "my", "what", "please", "know", "about", "is", "to", "and", "where", "i", "can", "could",
            "your", "me", "it", "of"}, ("forget", "delet", "eras", "unlearn"), ""),
    "es": ({"el", "la", "que", "mi", "mis", "de", "del", "por", "favor", "sobre", "sabes", "lo", "y", "es", "tu",
            "dónde", "puedes", "podrías", "qué", "cómo", "los", "las", "una"}, ("olvid", "borr", "elimin"), "ñ¿¡"),
    "fr": ({"le", "la", "les", "que", "mon", "ma", "mes", "de", "des", "tu", "sur", "ce", "et", "est", "je", "vous",
            "où", "peux", "pas", "une", "du"}, ("oubli", "effac", "supprim"), "çœèêàù"),
    "de": ({"der", "die", "das", "den", "dem", "ich", "du", "mein", "meine", "meinen", "bitte", "über", "und", "ist",
            "was", "wo", "kannst", "nicht", "mich", "dich", "mir", "dir", "ein", "eine"}, ("vergi", "vergess", "lösch"),
           "äöüß"),
}


def guess_language(text: str) -> str:
    """The most likely of en/es/fr/de from function words, verb stems and letters (LLM verdicts do not say)."""
    lowered = normalise(text).casefold()
    words = re.findall(r"[^\W\d_]+", lowered)
    scores = {
        code: sum(w in vocab for w in words)
        + 2 * sum(w.startswith(stems) for w in words)
        + 2 * sum(ch in letters for ch in text.casefold())
        for code, (vocab, stems, letters) in _LANGUAGE_MARKERS.items()
    }
    return max(scores, key=lambda code: scores[code])


# ------------------------------------------------------------------------------------ rule watchdog


@dataclass(frozen=True)
class _Clause:
    text: str  # from the clause start to the end of its sentence (capped), fillers removed
    before: str  # everything in the message before the clause (for antecedents and reported speech)


# Bounds that keep adversarial input (thousands of commas) cheap: a request names its target in far
# fewer characters than this, and no message holds more than a few dozen plausible request clauses.
MAX_CLAUSE_CHARS = 400
MAX_CLAUSES = 64
ANTECEDENT_WINDOW = 300  # how far back "forget it" may point


def _clauses(message: str) -> list[_Clause]:
    """Every place a request may start (sentence starts and clause boundaries) that holds a request verb.

    Ordered by how close the verb is to the clause start (requests lead with their verb or a short
    frame), then left to right; at most MAX_CLAUSES.
    """
    candidates: list[tuple[int, int, int]] = []  # (verb offset in clause, clause start, clause end)
    for start, end in sentence_spans(message):
        triggers = [m.start() for m in TRIGGER.finditer(message, start, end)]
        if not triggers:
            continue
        for position in [start] + [m.end() + start for m in _CLAUSE_START.finditer(message[start:end])]:
            first = bisect.bisect_left(triggers, position)
            stop = min(end, position + MAX_CLAUSE_CHARS)
            if first < len(triggers) and triggers[first] < stop:
                candidates.append((triggers[first] - position, position, stop))
    candidates.sort()
    clauses = []
    for _, position, stop in candidates[:MAX_CLAUSES]:
        text = FILLERS.sub("", message[position:stop].strip()).rstrip(".!?;… ")
        if text:
            clauses.append(_Clause(text=text, before=message[:position].strip()))
    return clauses


class RuleWatchdog:
    """Pattern-based watchdog: no model, deterministic, sub-millisecond per message."""

    def __init__(self, languages: tuple[Language, ...] = LANGUAGES) -> None:
        self.languages = languages

    def detect(self, message: str) -> ForgetIntent | None:
        if not isinstance(message, str):
            raise ValueError(f"message must be a string, got {type(message).__name__}")
        text = normalise(message)
        for clause in _clauses(text):
            if SPEECH.search(clause.before[-40:]):
                continue
            for language in self.languages:
                for cue in language.cues:
                    match = cue.pattern.match(clause.text)
                    if match is None:
                        continue
                    intent = self._intent(message, clause, language, cue, match)
                    if intent is not None:
                        return intent
        return None

    def _intent(
        self, message: str, clause: _Clause, language: Language, cue: Cue, match: re.Match[str]
    ) -> ForgetIntent | None:
        raw = match["t"] + (match.groupdict().get("tail") or "")
        if cue.pronoun:
            target = _antecedent(raw.casefold(), clause.before, language)
            if target is None:
                return None
            return ForgetIntent(target, language.code, "specific", message, 0.7, match["cue"])
        extracted = _extract(raw, language, cue.verb)
        if extracted is None:
            return None
        target, scope, memory = extracted
        if target.casefold() in language.pronouns:
            resolved = _antecedent(target.casefold(), clause.before, language)
            if resolved is None:
                return None
            return ForgetIntent(resolved, language.code, "specific", message, 0.7, match["cue"])
        confidence = 0.95 if memory or cue.verb in ("unlearn", "know") else 0.85
        return ForgetIntent(target, language.code, scope, message, confidence, match["cue"])


def _target_end(text: str, language: Language) -> int:
    """Where the target phrase ends: at the first cut that does not just join more personal
    information to it ("my address and phone number", "where I live and where I work")."""
    joiner = re.compile(rf"[\s,]*(?:(?:{language.conjunctions})\b)?[\s,]*", re.IGNORECASE)
    for cut in language.cut.finditer(text):
        after = text[joiner.match(text, cut.end()).end():]
        if not (joiner.fullmatch(cut.group()) and language.info.match(after)):
            return cut.start()
    return len(text)


def _extract(raw: str, language: Language, verb: str) -> tuple[str, str, bool] | None:
    """Clean the raw words after the cue into (target, scope, memory_context), or None for a near-miss."""
    text = raw.strip().lstrip(", ")  # German "vergiss, wo ich wohne": the comma opens the target clause
    end = _target_end(text, language)
    text, rest = text[:end], text[end:]
    if language.dismissal.search(text) or language.dismissal.search(rest):
        return None
    continued = bool(_strip_edges(language.trailing.sub("", " " + _strip_edges(rest))))
    text = _strip_edges(text)
    if language.negation.search(text):
        return None
    memory = False
    scope = "specific"
    for _ in range(6):  # peel politeness, adverbs and wrappers until nothing changes
        before = text
        text = language.trailing.sub("", text)
        text, n_memory = language.memory.subn("", text)
        memory = memory or n_memory > 0
        text = _strip_edges(language.leading.sub("", text))
        for wrapper in language.wrappers:
            wrapped = wrapper.match(text)
            if wrapped:
                if language.everything.match(text):
                    scope = "all"
                memory = True
                text = _strip_edges(wrapped["x"])
                break
        else:
            topic = language.topic.match(text)
            if topic:
                scope = "all"
                text = _strip_edges(topic["x"])
        if text == before:
            break
    if not text:
        return None
    if language.everything.fullmatch(text):
        scope = "all"
    if language.meta.search(text) or language.generic.match(text) or language.negation.search(text):
        return None
    if verb in NEEDS_EVIDENCE and not memory and (language.objects.search(text) or not language.info.search(text)):
        return None
    if continued and verb == "forget" and not memory and not _names_something(text, language):
        return None  # "forget the meeting, it was cancelled": never mind, not unlearning
    return text, scope, memory


def _names_something(target: str, language: Language) -> bool:
    """Personal information, a possessive phrase, a name or "everything": something one asks to unlearn."""
    return bool(
        language.info.search(target)
        or POSSESSIVE.match(target)
        or NAME.search(target)
        or language.everything.match(target)
        or (language.code != "de" and re.search(r"(?-i:\s[A-ZÀ-Þ])", target))
    )


def _antecedent(pronoun: str, before: str, language: Language) -> str | None:
    """What "it"/"her" points back to: the nearest possessive information phrase, else (for "her"/"him") a name."""
    before = before[-ANTECEDENT_WINDOW:]
    phrase = _possessive_phrase(before)
    if phrase is not None:
        return phrase
    if pronoun in language.person_pronouns:
        names = [m["np"] for m in NAME.finditer(before)]
        if names:
            return names[-1]
    return None


def _possessive_phrase(text: str) -> str | None:
    """The last "my/mi/mon/meine ... <information noun>" phrase in `text`, e.g. "my home address"."""
    found = None
    for possessive in POSSESSIVE.finditer(text):
        span = re.split(r"[,.;:!?]", text[possessive.end() :], maxsplit=1)[0]
        words = span.split()[:6]
        head = next((i for i, w in enumerate(words[:4]) if _is_info_word(w)), None)
        if head is None:
            continue
        while True:  # grow over compounds ("arrest record") and joined nouns ("numéro de téléphone")
            if head + 1 < len(words) and _is_info_word(words[head + 1]):
                head += 1
            elif head + 2 < len(words) and words[head + 1].casefold() in PHRASE_JOINERS and _is_info_word(words[head + 2]):
                head += 2
            else:
                break
        phrase = possessive.group(0) + " ".join(words[: head + 1])
        found = phrase[0].lower() + phrase[1:]
    return found


def _is_info_word(word: str) -> bool:
    return any(lang.info.search(word) for lang in LANGUAGES)


# ------------------------------------------------------------------------------------ LLM watchdog

LLM_SYSTEM_PROMPT = """You are a watchdog inside a chat assistant. Decide whether the user's message asks \
the assistant itself to forget, erase, delete from its memory, unlearn or stop knowing some information, \
in any language.
Reply with one JSON object and nothing else: {"intent": true or false, "target": "<what to forget>" or null}.
- intent is false for: the user talking about their own forgetting ("I forgot my keys"), "don't forget ...", \
questions about how forgetting or unlearning works, someone else's words ("she told me to forget him"), \
requests to delete files, accounts, text or list items, "forget it" meaning "never mind", and \
"forget previous instructions".
- target: the shortest phrase copied from the message that names what to forget, without wrappers such \
as "everything you know about" or "from your memory", in the message's language.
Examples:
"Could you forget where I work?" -> {"intent": true, "target": "where I work"}
"Oublie tout ce que tu sais sur mon ancien employeur" -> {"intent": true, "target": "mon ancien employeur"}
"I forgot my umbrella at work" -> {"intent": false, "target": null}
"Remember to call mom" -> {"intent": false, "target": null}"""


class LLMWatchdog:
    """Asks a chat model for a JSON verdict; unusable replies give None and a logged warning."""

    def __init__(self, backend: ChatBackend, system_prompt: str = LLM_SYSTEM_PROMPT, max_tokens: int = 128) -> None:
        self.backend = backend
        self.system_prompt = system_prompt
        self.max_tokens = max_tokens

    def detect(self, message: str) -> ForgetIntent | None:
        if not isinstance(message, str):
            raise ValueError(f"message must be a string, got {type(message).__name__}")
        reply = self.backend.complete(
            [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": message}],
            max_tokens=self.max_tokens,
            temperature=0.0,
        )
        try:
            answer = extract_json(reply)
        except ValueError:
            log.warning("LLM watchdog: reply holds no JSON object, treating as no intent: %r", reply[:200])
            return None
        intent = _as_bool(answer.get("intent"))
        if intent is None:
            log.warning("LLM watchdog: 'intent' is not a boolean in %r, treating as no intent", answer)
            return None
        if not intent:
            return None
        target = answer.get("target")
        if not isinstance(target, str) or not _strip_edges(target):
            log.warning("LLM watchdog: intent without a usable target in %r, treating as no intent", answer)
            return None
        scope = "all" if _EVERYTHING.search(normalise(message)) else "specific"
        return ForgetIntent(_strip_edges(target), guess_language(message), scope, message, 0.9, "llm")


_EVERYTHING = re.compile(
    r"\b(?:everything|all (?:the )?(?:information|data)|todo lo que|toda la información|tout ce que"
    r"|toutes les informations|alles|alle (?:informationen|daten))\b",
    re.IGNORECASE,
)


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().casefold() in ("true", "false", "yes", "no"):
        return value.strip().casefold() in ("true", "yes")
    return None


_DEFAULT = RuleWatchdog()


def detect(message: str) -> ForgetIntent | None:
    """The default (rule-based) watchdog's verdict on one message."""
    return _DEFAULT.detect(message)
