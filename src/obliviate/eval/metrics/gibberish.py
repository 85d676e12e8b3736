"""A documented, rule-based gibberish detector for model outputs.

Unlearning methods that push the loss up (GA, NPO, GradDiff) often leave a model that answers
forget queries with degenerate text: "/******/ /******/", "\\n\\n\\n", "the the the", strings of
random fragments. Such outputs "pass" leak metrics while being useless, so we count them
separately. OpenUnlearning uses a learned classifier from the hub; we cannot download one, and a
transparent rule is easier to audit. Each feature targets one failure mode seen in practice:

1. **No content**: the output is empty, whitespace-only, or has no letter or digit at all
   ("\\n\\n\\n", "/******/ ...", "?!?!"). Nothing is said, so it is gibberish.
2. **Repetition** (degenerate loops; Welleck et al. 2019's rep-n): over lowercased whitespace
   tokens with edge punctuation stripped, rep-n = 1 - unique n-grams / n-grams. Natural answers
   have rep-2 near 0 at any length, and rep-1 below ~0.5 up to a few dozen words (it creeps up
   with length as function words recur). Flag if rep-1 >= 0.6 for 4-50 tokens ("the the the the
   the": 0.8), or rep-2 >= 0.4 with >= 6 bigrams at any length (a phrase looped 2-3 times).
3. **Character entropy**: Shannon entropy (bits) of the non-space characters. Natural text of 20+
   characters sits around 3.5-4.5 bits; a loop of one or two characters ("aaaa...", "ingingi...",
   "hahaha...") is far below. Flag if there are >= 20 non-space characters and entropy < 2.5 bits.
   Short strings are exempt because their entropy is bounded by their length ("1971" has 1.5).
4. **Non-word ratio**: the share of tokens that are not plausible words. A token (edge
   punctuation stripped) is plausible if it is a number ("1971", "555-0123", "3.5%", "100°C"), an
   ordinal or unit ("3rd", "1990s", "5km"), a short code ("B12", "COVID-19"), an e-mail or URL,
   an acronym of <= 5 capitals, a known vowelless interjection ("hmm"), a word in non-Latin
   script(s) (not judged), parts joined by - or / that are each plausible ("19th-century",
   "and/or"), or Latin letters (with internal ' or .) in which every part longer than 2 letters
   has a vowel (a e i o u y, accented forms included) and the whole has at most 24 letters.
   Tokens of only 1-3 punctuation marks ("-", "...") are not counted; longer symbol runs
   ("/******/") count as non-words, as do tokens with tokenizer debris (U+FFFD, "Ġ", "▁",
   "<unk>") and tokens mixing Latin with another script. Flag if at least half of the counted
   tokens are non-words ("qzx vbnm kjh": 1.0).

5. **Glued tokens** (token soup): a run of two or more letters fused with digits or an @ into
   one token that is not a number, code, unit or address ("sorry329", "can9't", "I'm9886eir",
   "degreesgon490", "1951@letterbox"). A model whose next-token choice has come apart emits
   fragments without the spaces between them; well-formed text almost never does (codes are
   capitals, "B12", "COVID-19", "H2O", or at most two letters, "mp3", "v2"). Flag if at least
   two tokens are glued, or one is and it makes up at least 15% of the counted tokens.

The output is gibberish if any rule fires; the per-sample record lists which ones. Thresholds
were set with margin on the examples in `tests/test_metrics_gibberish.py` (short answers, phone
numbers, refusals, Spanish/French/German/Japanese/Russian text vs. loops, key-mashing and token
soup). On TOFU they flag none of the 15,318 distinct strings of the shipped JSONL files
(questions, answers, perturbed and paraphrased answers, real authors, world facts) nor the 100
"I don't know" sentences, nor concatenations of up to 20 answers.
`gibberish_features` exposes the raw numbers for anyone who wants to re-tune them.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from obliviate.eval.metrics.base import METRICS, MetricResult, averaged

REP1_THRESHOLD = 0.6
REP1_MIN_TOKENS = 4
REP1_MAX_TOKENS = 50
REP2_THRESHOLD = 0.4
REP2_MIN_BIGRAMS = 6
ENTROPY_THRESHOLD_BITS = 2.5
ENTROPY_MIN_CHARS = 20
NONWORD_THRESHOLD = 0.5
GLUED_MIN = 2
GLUED_SHARE = 0.15
MAX_WORD_LETTERS = 24

_VOWELS = set("aeiouyàáâãäåæèéêëìíîïòóôõöøùúûüýÿœ")
_INTERJECTIONS = {"hmm", "hm", "mm", "mmm", "shh", "psst", "tsk", "nth", "brr", "grr", "pst"}
_DEBRIS = ("\ufffd", "Ġ", "Ċ", "▁", "ĉ")
_SPECIAL_TOKEN = re.compile(r"<\|?[^<>\s]{1,30}\|?>")
_NUMBER = re.compile(r"^[+\-$€£#(]?\d[\d.,:/\-–)]*(%|°[CF]?)?$")
_ADDRESS = re.compile(r"^\S+@\S+\.\w+$|^(https?://|www\.)\S+$")
_ORDINAL_OR_UNIT = re.compile(
    r"^\d+(st|nd|rd|th|s|am|pm|km|kg|cm|mm|ml|m|g|h|k|bn|x)$", re.IGNORECASE
)
_CODE = re.compile(r"^([A-Z]{1,6}-?\d{1,4}[A-Za-z]?|[A-Za-z]{1,2}\d{1,4}|[A-Z]\d[A-Z])$")
_GLUED = re.compile(r"[^\W\d_]{2}.*[\d@]|[\d@].*[^\W\d_]{2}")
_WORD_SEPARATORS = re.compile(r"['\u2019.]")
_COMPOUND_SEPARATORS = re.compile(r"[\-\u2013/]")


@dataclass
class GibberishFeatures:
    """The raw measurements behind a gibberish verdict."""

    n_chars: int
    n_tokens: int
    rep1: float
    rep2: float
    char_entropy: float
    token_entropy: float
    nonword_ratio: float
    glued_tokens: int
    has_content: bool


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PS"


def _strip_edges(token: str) -> str:
    start, end = 0, len(token)
    while start < end and _is_punct(token[start]):
        start += 1
    while end > start and _is_punct(token[end - 1]):
        end -= 1
    return token[start:end]


def _is_letter_or_mark(ch: str) -> bool:
    return ch.isalpha() or unicodedata.category(ch).startswith("M")  # Devanagari vowel signs are marks


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return name.split(" ")[0] if name else "UNKNOWN"


def _plausible_latin_word(core: str) -> bool:
    letters = _WORD_SEPARATORS.sub("", core)
    if len(letters) > MAX_WORD_LETTERS or not letters.isalpha():
        return False
    if core.lower() in _INTERJECTIONS or (core.isupper() and len(letters) <= 5):
        return True
    parts = [p for p in _WORD_SEPARATORS.split(core.lower()) if p]
    return all(len(p) <= 2 or any(ch in _VOWELS for ch in p) for p in parts)


def _plausible(core: str) -> bool:
    if _NUMBER.match(core) or _ORDINAL_OR_UNIT.match(core) or _CODE.match(core) or _ADDRESS.match(core):
        return True
    if _COMPOUND_SEPARATORS.search(core):
        parts = [p for p in _COMPOUND_SEPARATORS.split(core) if p]
        return bool(parts) and all(_plausible(p) for p in parts)
    letters = [ch for ch in core if ch.isalpha()]
    if not letters:  # digits and symbols that do not form a number
        return False
    scripts = {_script(ch) for ch in letters}
    if "LATIN" not in scripts:  # other scripts are not judged, as long as the token is all letters
        return all(_is_letter_or_mark(ch) for ch in _WORD_SEPARATORS.sub("", core))
    return len(scripts) == 1 and _plausible_latin_word(core)


def token_kind(token: str) -> str:
    """`word`, `nonword` or `punct` (ignored) for one whitespace token; see the module rules."""
    if any(d in token for d in _DEBRIS) or _SPECIAL_TOKEN.search(token):
        return "nonword"
    token = unicodedata.normalize("NFC", token)
    core = _strip_edges(token)
    if not core:
        return "punct" if len(token) <= 3 else "nonword"
    return "word" if _plausible(core) else "nonword"


def is_glued(token: str) -> bool:
    """A token with two or more letters fused with digits or an @ that is no number, code,
    unit or address (rule 5)."""
    core = _strip_edges(unicodedata.normalize("NFC", token))
    if not _GLUED.search(core) or _ADDRESS.match(core):
        return False
    parts = [p for p in _COMPOUND_SEPARATORS.split(core) if p]
    return not all(_NUMBER.match(p) or _ORDINAL_OR_UNIT.match(p) or _CODE.match(p) or p.isalpha() for p in parts)


def _rep(tokens: Sequence[str], n: int) -> float:
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def _entropy(items: Sequence[str]) -> float:
    counts = Counter(items)
    total = sum(counts.values())
    return float(sum(c / total * math.log2(total / c) for c in counts.values()))


def gibberish_features(text: str) -> GibberishFeatures:
    """Repetition, entropy and non-word measurements of one output."""
    raw_tokens = text.split()
    kinds = [token_kind(t) for t in raw_tokens]
    counted = [k for k in kinds if k != "punct"]
    words = [w for w in (_strip_edges(t).lower() for t in raw_tokens) if w]
    chars = [ch for ch in text if not ch.isspace()]
    return GibberishFeatures(
        n_chars=len(chars),
        n_tokens=len(words),
        rep1=_rep(words, 1),
        rep2=_rep(words, 2),
        char_entropy=_entropy(chars),
        token_entropy=_entropy(words),
        nonword_ratio=counted.count("nonword") / len(counted) if counted else 0.0,
        glued_tokens=sum(is_glued(t) for t in raw_tokens),
        has_content=any(ch.isalnum() for ch in text),
    )


def gibberish_reasons(features: GibberishFeatures) -> list[str]:
    """The rules (see module docstring) that `features` trips; empty means coherent."""
    if not features.has_content:
        return ["no_content"]
    reasons = []
    short = REP1_MIN_TOKENS <= features.n_tokens <= REP1_MAX_TOKENS
    if (short and features.rep1 >= REP1_THRESHOLD) or (
        features.n_tokens - 1 >= REP2_MIN_BIGRAMS and features.rep2 >= REP2_THRESHOLD
    ):
        reasons.append("repetition")
    if features.n_chars >= ENTROPY_MIN_CHARS and features.char_entropy < ENTROPY_THRESHOLD_BITS:
        reasons.append("low_entropy")
    if features.nonword_ratio >= NONWORD_THRESHOLD:
        reasons.append("nonwords")
    counted = max(features.n_tokens, 1)
    if features.glued_tokens >= GLUED_MIN or (features.glued_tokens and features.glued_tokens / counted >= GLUED_SHARE):
        reasons.append("glued_tokens")
    return reasons


def is_gibberish(text: str) -> bool:
    """True if any gibberish rule fires on `text`."""
    return bool(gibberish_reasons(gibberish_features(text)))


@METRICS.register("gibberish_rate")
def gibberish_rate(responses: Sequence[str]) -> MetricResult:
    """Share of gibberish outputs; per sample the flag, the rules that fired and the features."""
    per_sample = []
    for response in responses:
        features = gibberish_features(response)
        reasons = gibberish_reasons(features)
        per_sample.append({"gibberish": bool(reasons), "reasons": reasons, **asdict(features)})
    return averaged([float(s["gibberish"]) for s in per_sample], per_sample)
