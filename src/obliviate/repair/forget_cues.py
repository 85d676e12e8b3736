"""The multilingual lexicon of forget requests (English, Spanish, French, German).

Data only: the phrasings that ask the assistant to forget something, the wrappers around the
target ("everything you know about ..."), and the words that mark a near-miss (negation,
dismissal, conversation meta-talk, editing requests). `watchdog.RuleWatchdog` runs them.

A cue matches at the start of a clause (after fillers like "please", "hey", "ok so"), never in
the middle, which is what keeps reported speech ("she told me to forget him") and statements
("I forgot my umbrella") out. Verb classes decide how much evidence a target needs:
`forget`, `unlearn` and `know` (stop knowing, don't remember) are requests on their own;
`delete` (erase, borra, efface, lösche) and `retain` (don't keep, no guardes) also fit editing
and filing requests, so they need a memory context or a personal-information target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FLAGS = re.IGNORECASE | re.UNICODE
VERB_CLASSES = ("forget", "unlearn", "know", "delete", "retain")
NEEDS_EVIDENCE = frozenset({"delete", "retain"})


@dataclass(frozen=True)
class Cue:
    """One request phrasing matched against a whole clause.

    Named groups: `cue` (the request words), `t` (the raw target) and, for phrasings that split
    the target around the verb ("alles löschen, was du über X weißt"), an optional `tail`
    appended to `t`. `pronoun` marks cues whose target is a pronoun glued to the verb (olvídala).
    """

    pattern: re.Pattern[str]
    verb: str
    pronoun: bool = False

    def __post_init__(self) -> None:
        if self.verb not in VERB_CLASSES:
            raise ValueError(f"unknown verb class {self.verb!r}; use one of {VERB_CLASSES}")


@dataclass(frozen=True)
class Language:
    """Everything the rule watchdog knows about requests in one language."""

    code: str
    cues: tuple[Cue, ...]
    wrappers: tuple[re.Pattern[str], ...]  # "everything you know about X": strip, group `x` remains
    topic: re.Pattern[str]  # a bare "about X": strip too, but it says nothing about memory
    everything: re.Pattern[str]  # a target or wrapper meaning "all of it" (scope "all")
    conjunctions: str  # "and|or": what joins the items of a list (regex alternatives)
    cut: re.Pattern[str]  # where the target phrase ends (a new clause starts)
    dismissal: re.Pattern[str]  # "for now", ", let's ...": "never mind", not unlearning
    trailing: re.Pattern[str]  # politeness and adverbs at the target's end
    leading: re.Pattern[str]  # adverbs at the target's start
    memory: re.Pattern[str]  # "from your memory": the user means the model's knowledge
    negation: re.Pattern[str]  # "pas ...", "... nicht": the request is negated
    pronouns: frozenset[str]  # targets that are only a pronoun: resolved from context or rejected
    person_pronouns: frozenset[str]  # pronouns that may stand for a named person
    meta: re.Pattern[str]  # "previous instructions": the conversation, not knowledge
    generic: re.Pattern[str]  # "things", "cosas": capability questions, not a target
    info: re.Pattern[str]  # personal-information nouns (address, número, Adresse...)
    objects: re.Pattern[str]  # files, paragraphs, accounts, lists: editing requests


def _c(regex: str) -> re.Pattern[str]:
    return re.compile(regex, FLAGS)


def _cue(regex: str, verb: str, pronoun: bool = False) -> Cue:
    return Cue(_c(regex), verb, pronoun)


def _any(*alternatives: str) -> str:
    return "(?:" + "|".join(alternatives) + ")"


def _list_comma(conjunctions: str) -> str:
    """A comma that ends the target, unless a list of names goes on after it ("Ana Ruiz, Luis
    Pérez and Eva Braun"): the next capitalised words reach another comma or a conjunction that
    is followed by a capitalised word."""
    names = r"(?-i:[A-ZÀ-Þ][\w'’-]*)(?:\s+(?-i:[A-ZÀ-Þ][\w'’-]*))*"
    return rf"\s*,(?!\s*{names}\s*(?:,|\s+(?:{conjunctions})\s+(?-i:[A-ZÀ-Þ])))"


# Fillers that may precede a request at the start of a clause, in any language.
FILLERS = _c(
    r"^(?:(?:please|pls|plz|kindly|ok(?:ay)?|so|hey|hi|hello|now|also|well|alright|actually|oh|um|and|then"
    r"|por favor|porfa|hola|oye|bueno|vale|ahora|y|también|entonces|mira"
    r"|s'il te pla[iî]t|s'il vous pla[iî]t|stp|svp|salut|bonjour|coucou|alors|bon|maintenant|et|aussi"
    r"|bitte|hallo|jetzt|und|nun|na)\b[\s,!]*)+"
)

# Stems of every verb a cue can use: a clause without one cannot be a request (a cheap pre-filter).
TRIGGER = _c(
    r"\b(?:forg[eo]t|unlearn|eras|delet|remov|wip|purg|scrub|clear|rid of|know|rememb|keep|retain|stor|sav|hold|have"
    r"|olvid|olvíd|borr|bórr|elimin|elimín|suprim|quit|desaprend|sep|sab|recuerd|record|acuerd|acord|conoc|conoz"
    r"|guard|reten|tenga|almacen"
    r"|conserv|oubli|effac|supprim|retir|enl[eè]v|débarrass|désappren|souv|sach|gard|stock|mémoris|retien|aie|ayez"
    r"|connaiss|vergi|vergess|lösch|entfern|tilg|streich|verlern|wei[ßs]|wissen|kenn|behalt|behält|speicher|merk"
    r"|erinner|hast|haben)"
)

# Words after which a clause is someone else's words ("she said, forget it").
SPEECH = _c(
    r"\b(?:said|says|say|told me|tells me|asked|asks|wrote|writes|replied|shouted|yelled"
    r"|dijo|dice|decía|me dijo|escribió|respondió|a dit|dit|disait|m'a dit|a écrit|a répondu"
    r"|sagte|sagt|meinte|schrieb|antwortete|hat gesagt)\s*[,:]?\s*$"
)

# Possessive determiners, to find the antecedent of "forget it" ("I gave you my address, forget it").
POSSESSIVE = _c(
    r"\b(?:my|our|mi|mis|nuestr[oa]s?|mon|ma|mes|notre|nos|mein(?:e|en|em|er|es)?|unser(?:e|en|em|er|es)?)\s+"
)
# Words that join the parts of an information phrase ("numéro de téléphone", "number of my card").
PHRASE_JOINERS = frozenset({"de", "of", "d'", "du", "del", "des", "la", "my", "mi", "mon", "ma", "meiner", "meines"})
# Two or more capitalised words: a person's name ("Mara Quintel asked for privacy, forget her").
NAME = re.compile(r"(?<![\w'])(?P<np>[A-ZÀ-Þ][\w'-]+(?:\s+[A-ZÀ-Þ][\w'-]+)+)")

# ---------------------------------------------------------------------------------------- English
_EN_VERBS = {  # any form, after a request frame ("could you forget", "if you forgot")
    "forget": r"(?:forget|forgot|forgetting)",
    "unlearn": r"(?:unlearn|unlearned|unlearnt|unlearning)",
    "delete": r"(?:erase|erased|erasing|delete|deleted|deleting|remove|removed|removing|wipe|wiped|wiping"
    r"|purge|purged|purging|scrub|scrubbed|scrubbing|clear|cleared|clearing|get rid of|got rid of|getting rid of)",
    "know": r"(?:stop|quit|stopped) (?:knowing|remembering)|not (?:know|remember)|no longer (?:know|remember)",
}
_EN_BARE = {  # imperatives at the start of a clause
    "forget": r"forget",
    "unlearn": r"unlearn",
    "delete": r"(?:erase|delete|remove|wipe|purge|scrub|clear|get rid of)",
    "know": r"(?:stop|quit) (?:knowing|remembering)|(?:don't|do not|never again) (?:know|remember)",
    "retain": r"(?:don't|do not|never) (?:keep|retain|store|save|hold on to)"
    r"|(?:stop|quit) (?:keeping|retaining|storing|saving|holding on to)",
}
_EN_FRAMES = _any(
    r"(?:could|can|would|will|won't) you(?: please| kindly| just| maybe| now)?",
    r"(?:i(?:'d| would)?|i'm|i am) (?:really )?(?:like|want|need|wish|ask|beg|request|asking|begging)(?: for)? you to"
    r"(?: please)?",
    r"you (?:should|must|need to|have to|ought to|gotta|'d better|had better|better|will|are going to|'re going to)",
    r"(?:make sure|ensure|see to it)(?: that)? you",
    r"is it possible(?: for you to| that you(?: could)?| to)",
    r"(?:it would be|it'd be|that would be|that'd be) (?:great|nice|good|lovely|helpful|best|ideal|wonderful|better|kind)"
    r"(?: of you)? if you(?: could| would| can)?",
    r"i(?:'d| would) (?:appreciate it|be grateful|prefer it|love it|feel better) if you(?: could| would)?",
    r"(?:would|do) you mind",
    r"(?:would|could|will) you be able to|are you able to|can you manage to",
    r"(?:try to|go ahead and|time to)",
)
_EN_NEG_FRAMES = _any(
    r"i (?:don't|do not|no longer|really don't) want you to",
    r"i(?:'d| would) (?:rather|prefer) (?:that )?you (?:didn't|did not|not)",
    r"you (?:shouldn't|should not|mustn't|must not) (?:know|remember) anything about",
)
_EN_KNOW = r"(?:know|remember|keep|retain|store|hold on to|have|hold)"
_EN_PARTICIPLE = r"(?:forgotten|erased|deleted|removed|wiped|purged|unlearned|unlearnt|scrubbed)"

_EN_AND = "and|or"

EN = Language(
    code="en",
    conjunctions=_EN_AND,
    cues=(
        *(_cue(rf"^(?P<cue>{_EN_FRAMES}\s+(?:{verb}))\s+(?P<t>.+)$", kind) for kind, verb in _EN_VERBS.items()),
        *(_cue(rf"^(?P<cue>(?:{bare}))\s+(?P<t>.+)$", kind) for kind, bare in _EN_BARE.items()),
        _cue(rf"^(?P<cue>{_EN_NEG_FRAMES}\s+{_EN_KNOW}(?: anything)?)\s+(?P<t>.+)$", "know"),
        _cue(
            rf"^(?P<cue>i (?:want|need)|i(?:'d| would) (?:like|prefer|love))\s+(?P<t>.+?)\s+(?:to be |to get )?"
            rf"{_EN_PARTICIPLE}(?P<tail>\s+(?:from|out of) .+)?$",
            "forget",
        ),
    ),
    wrappers=(
        _c(
            r"^(?:everything|anything|all|whatever|what|any(?:thing)? and everything)(?: else)?(?: that)?"
            r"(?: you(?:'ve| have)? (?:know|knew|learned|learnt|remember|have|hold|store|keep|got|picked up|been told)"
            r"| you (?:were|got) (?:told|taught|shown|given)"
            r"| i(?:'ve| have)? (?:ever )?(?:told you|said|shared|mentioned|wrote)(?: to you)?)?"
            r"(?: so far)? (?:about|on|regarding|concerning|related to|relating to|of|around) (?P<x>.+)$"
        ),
        _c(
            r"^(?:all |any |the |every )?(?:the )?(?:information|info|data|knowledge|facts|details|memories|records)"
            r"(?: (?:that )?you (?:have|hold|know|store|keep|remember|learned|learnt|collected|got))?"
            r" (?:about|on|regarding|concerning|related to) (?P<x>.+)$"
        ),
        _c(
            r"^(?:any|all|every|each)(?: the)? (?:memory|memories|knowledge|trace|traces|record|records|mention|mentions)"
            r" (?:of|about|on) (?P<x>.+)$"
        ),
        _c(r"^(?:your|the|its) (?:memory|memories|knowledge|recollection) (?:of|about) (?P<x>.+)$"),
        _c(r"^(?:that |the fact that )?i (?:ever |once |just )?(?:told you|said|mentioned|shared)(?: with you| to you)?"
           r" (?:about|regarding|of) (?P<x>.+)$"),
    ),
    topic=_c(r"^(?:all )?(?:about|abt) (?P<x>.+)$"),
    everything=_c(r"^(?:everything|all|anything|any(?:thing)? and everything)\b"),
    cut=_c(
        _list_comma(_EN_AND) + r"\s*|\s+(?:because|since|so that|as i|as it|if you can|if possible|if you don't mind|if that's \w+"
        r")\b|\s+(?:and|but)\b(?!\s+(?:my|our|the|a|an|his|her|their|your|all|any|(?-i:[A-ZÀ-Þ])))"
        r"|\s+[—–-]\s+|\s*\("
    ),
    dismissal=_c(r"\b(?:let's|let us|what about|how about|instead|for now|for the moment|for a (?:moment|second|sec))\b"),
    trailing=_c(
        r"(?:\s*,)?\s+(?:please|pls|plz|thanks|thank you|thx|ty|lol|haha|now|right now|immediately|at once|forever"
        r"|permanently|completely|entirely|totally|fully|altogether|for good|for ever|anymore|any more|from now on"
        r"|as well|too|again|already|ok|okay|asap|once and for all|for me|for my privacy)$"
    ),
    leading=_c(r"^(?:completely|permanently|entirely|totally|fully|immediately|also|just|forever|now)\s+"),
    memory=_c(
        r"(?:^|\s+)(?:from|out of) (?:your|the model's|the|my|its) (?:own )?(?:memory|memories|mind|brain|head"
        r"|knowledge(?: base)?|weights|training(?: data)?|parameters|database|records|dataset|system|model)\b"
        r"|(?:^|\s+)(?:from|out of) (?:what|whatever|everything|anything) you(?:'ve| have)? (?:know|remember|learned"
        r"|learnt|stored|saved|kept|recorded)\b"
    ),
    negation=_c(r"^(?:not|never|me not)\b"),
    pronouns=frozenset({"it", "that", "this", "them", "her", "him", "about it", "about that", "that one", "this one",
                        "it all", "all that", "all of that", "all this", "that part", "this part", "those", "these"}),
    person_pronouns=frozenset({"her", "him", "them"}),
    meta=_c(
        r"^(?:all |any |the |my |your |our )*(?:previous|prior|above|earlier|preceding|last|former|initial|original"
        r"|system|those|these|other)\b.*\b(?:instructions?|prompts?|messages?|rules?|context|conversation|questions?"
        r"|answers?|responses?|chat|turns?|directions?|guidelines?)\b"
        r"|^(?:the |your |all )*(?:instructions?|rules|system prompt|prompt|guidelines)\b"
        r"|^(?:what|everything) i (?:just |previously )?(?:said|wrote|asked|typed)\s*(?:before|earlier|above)?$"
        r"|^(?:everything )?(?:above|before this)$|^(?:this|our|the) (?:conversation|chat)\b"
    ),
    generic=_c(
        r"^(?:things|stuff|anything|something|information|data|facts|memories|people|words|what you learn\w*"
        r"|old tasks)\b(?!\s+(?:about|on|regarding|related))"
    ),
    info=_c(
        r"\b(?:address\w*|phone|number|e-?mail|name|names|birthday|birth|age|salary|income|wage|password|pin|ssn"
        r"|social security|credit card|bank|details|data|info|information|history|records?|diagnosis|condition|health"
        r"|location|workplace|employer|job|identity|plate|licen[cs]e|passport|id|me|where i|who i|what i|when i|that i"
        r"|that my|secrets?|personal|private|arrest\w*|criminal|convictions?|family|wife|husband|ex|partner"
        r"|daughter|son|kids?|children|parents?)\b"
    ),
    objects=_c(
        r"\b(?:files?|folders?|documents?|docs?|forms?|lists?|texts?|essays?|paragraphs?|sentences?|lines?|words?"
        r"|signatures?|tables?|pages?|spreadsheets?|drives?|disks?|computer|account|profile|website|app|photos?"
        r"|pictures?|images?|messages?|emails|tweets?|posts?|comments?|whiteboard|board|duplicates?|code|cache|cookies"
        r"|browser|calendar|recipe|logs?)\b"
    ),
)

# ---------------------------------------------------------------------------------------- Spanish
_ES_VERBS = {  # infinitive, subjunctive and imperative forms, after a request frame
    "forget": r"(?:olvidar|olvidarte de|olvidarse de|olvides|olvidaras|olvidases|olvidara|olvide|olvidaría"
    r"|olvida|olvidá|olvídate de|olvidate de|olvídese de)",
    "delete": r"(?:borrar|borres|borraras|borrases|borre|borra|eliminar|elimines|eliminaras|elimine|elimina"
    r"|suprimir|suprimas|suprimieras|suprima|suprime|quitar|quites|quitaras|quite|quita)",
    "unlearn": r"(?:desaprender|desaprendas|desaprendieras|desaprenda|desaprende)",
    "know": r"(?:dejar de|dejes de|dejaras de|deje de|dejara de) (?:saber|recordar|acordarte de|acordarse de|conocer)"
    r"|(?:ya )?no (?:sepas|recuerdes|te acuerdes de|sigas sabiendo|sigas recordando|supieras|recordaras)",
}
_ES_BARE = {
    "forget": r"(?:olvida|olvidá|olvidad|olvídate de|olvidate de|olvídese de|olvídense de)",
    "delete": r"(?:borra|borrá|borre|borrad|elimina|eliminá|elimine|suprime|suprima|quita|quite)",
    "unlearn": r"(?:desaprende|desaprendé|desaprenda)",
    "know": r"(?:deja de|deje de|dejá de) (?:saber|recordar|acordarte de|acordarse de)"
    r"|no (?:recuerdes|te acuerdes de|recuerde|se acuerde de|sepas)",
    "retain": r"no (?:guardes|retengas|almacenes|conserves|guarde|retenga)"
    r"|(?:deja de|deje de|dejá de) (?:guardar|almacenar|conservar|retener)",
}
_ES_FRAMES = _any(
    r"(?:puedes|podrías|podrias|pudieras|podés|puede|podría|podria|quieres|querrías|puede usted|podría usted)"
    r"(?: por favor)?",
    r"(?:serías|sería|seria|serias) tan amable de",
    r"(?:serías|serias|eres|sería|es usted) capaz de",
    r"(?:me|nos) (?:harías|haría|harias|haces|hace|puedes hacer) el favor de",
    r"(?:hazme|hágame|haznos|házme) el favor de",
    r"(?:te|le) (?:importaría|importaria|importa)",
    r"(?:quiero|necesito|te pido|le pido|te ruego|le ruego|me gustaría|me gustaria|quisiera|prefiero|preferiría"
    r"|exijo|solicito|deseo|es necesario|es importante|hace falta) que",
    r"(?:es posible|sería (?:genial|bueno|ideal|estupendo|perfecto|fantástico)|estaría bien|te agradecería"
    r"|le agradecería|agradecería|te lo agradecería) (?:que|si)",
    r"(?:debes|deberías|deberias|tienes que|necesitas|hay que|tendrías que|debe|tiene que)",
    r"(?:intenta|trata de)",
)
_ES_NEG_FRAMES = r"(?:no quiero que|ya no quiero que|no me gustaría que|prefiero que no|preferiría que no|no necesito que)"
_ES_KNOW = (
    r"(?:sepas|recuerdes|te acuerdes de|conozcas|guardes|retengas|tengas|sepa|recuerde|se acuerde de|sigas sabiendo"
    r"|sigas recordando)"
)

_ES_AND = "y|e|o|u"

ES = Language(
    code="es",
    conjunctions=_ES_AND,
    cues=(
        *(_cue(rf"^(?P<cue>{_ES_FRAMES}\s+(?:{verb}))\s+(?P<t>.+)$", kind) for kind, verb in _ES_VERBS.items()),
        *(_cue(rf"^(?P<cue>(?:{bare}))\s+(?P<t>.+)$", kind) for kind, bare in _ES_BARE.items()),
        _cue(rf"^(?P<cue>{_ES_NEG_FRAMES}\s+{_ES_KNOW})\s+(?P<t>.+)$", "know"),
        _cue(r"^(?P<cue>(?:olvída|olvida|bórra|borra|elimína|elimina))(?P<t>la|lo|las|los)\b.*$", "forget", pronoun=True),
        _cue(r"^(?P<cue>(?:quiero|necesito|me gustaría) que (?:se )?(?:olvide|borre|elimine)n?)\s+(?P<t>.+)$", "forget"),
    ),
    wrappers=(
        _c(
            r"^(?:todo |cualquier cosa )?(?:lo )?(?:que )?(?:sabes|sepas|conoces|recuerdes|recuerdas|has aprendido"
            r"|te (?:dije|conté|he dicho|he contado|comenté|expliqué|contaron|dijeron|enseñaron|han contado|han dicho)"
            r"|sabe usted|sabe)"
            r" (?:sobre|de|del|acerca de|respecto a|respecto de|en relación con) (?P<x>.+)$"
        ),
        _c(r"^(?:lo )?que te (?:dije|conté|he dicho|he contado|comenté|mencioné) (?P<x>que .+)$"),
        _c(r"^(?:todo|cualquier cosa|lo) (?:sobre|acerca de|de|relacionado con|lo relacionado con|lo de) (?P<x>.+)$"),
        _c(
            r"^(?:toda |cualquier |la )?(?:la )?(?:información|info|dato|datos|conocimiento|detalles)"
            r"(?: que (?:tengas|tienes|sepas|guardas|guardes|tiene))?"
            r" (?:sobre|de|del|acerca de|relacionad[ao]s? con) (?P<x>.+)$"
        ),
        _c(r"^(?:todos |los )?(?:los )?(?:datos|detalles)(?: que (?:tengas|tienes|guardas))? (?:sobre|de|acerca de)"
           r" (?P<x>.+)$"),
        _c(r"^(?:cualquier|todo|todos los|algún) (?:recuerdo|rastro|registro|conocimiento|mención)e?s? (?:de|sobre)"
           r" (?P<x>.+)$"),
    ),
    topic=_c(r"^(?:a|acerca de|sobre) (?P<x>(?:(?-i:[A-ZÁÉÍÓÚÑ])|mis?\b|tus?\b|sus?\b|nuestr).+)$"),
    everything=_c(r"^(?:todo|toda|todos|cualquier)\b"),
    cut=_c(
        _list_comma(_ES_AND) + r"\s*|\s+(?:porque|ya que|si puedes|si es posible|si no te importa)\b"
        r"|\s+(?:y|pero)\b(?!\s+(?:mi|mis|el|la|los|las|un|una|su|sus|tu|tus|tod[oa]s?|(?-i:[A-ZÁÉÍÓÚÑ])))"
        r"|\s+[—–-]\s+|\s*\("
    ),
    dismissal=_c(r"\b(?:hablemos|qué tal|mejor|por ahora|de momento|por el momento|por hoy|en vez de|en cambio)\b"),
    trailing=_c(
        r"(?:\s*,)?\s+(?:por favor|porfa|porfavor|gracias|ya|ahora|ahora mismo|para siempre|por completo|completamente"
        r"|definitivamente|del todo|de una vez|inmediatamente|enseguida|también)$"
    ),
    leading=_c(r"^(?:por completo|completamente|para siempre|ya|también|ahora|inmediatamente|enseguida)\s+"),
    memory=_c(
        r"(?:^|\s+)de (?:tu|su) (?:propia )?(?:memoria|mente|cabeza|conocimiento|base de datos|entrenamiento|registro"
        r"|sistema)\b|(?:^|\s+)de (?:todo )?lo que (?:sabes|tengas|tienes|hayas) ?(?:guardado|almacenado|registrado"
        r"|aprendido)?\b.*$"
    ),
    negation=_c(r"^(?:no|nunca|jamás)\b"),
    pronouns=frozenset({"eso", "esto", "lo", "la", "los", "las", "ello", "aquello", "de eso", "de esto", "todo eso",
                        "de ella", "de él", "de ellos", "de ellas", "ella", "él"}),
    person_pronouns=frozenset({"la", "lo", "los", "las", "de ella", "de él", "de ellos", "de ellas"}),
    meta=_c(
        r"^(?:todas? |tod[oa]s )?(?:las |los |la |el |tus |mis )?(?:instrucciones|mensajes?|reglas|indicaciones"
        r"|conversación|preguntas?|órdenes)\b.*\b(?:anteriores?|previas?|de arriba|de antes)\b"
        r"|^lo (?:anterior|de arriba|que (?:te )?(?:dije|acabo de decir|escribí|pregunté))$"
    ),
    generic=_c(r"^(?:cosas|algo|nada|información|datos|hechos|recuerdos|lo aprendido)\b(?!\s+(?:sobre|de|acerca))"),
    info=_c(
        r"\b(?:dirección|direccion|domicilio|teléfono|telefono|número|numero|correo|email|e-mail|nombre|apellido"
        r"|nacimiento|cumpleaños|edad|salario|sueldo|ingresos|contraseña|clave|pin|datos|información|detalles|historial"
        r"|diagnóstico|enfermedad|salud|ubicación|empleo|trabajo|empresa|identidad|matrícula|placa|dni|pasaporte"
        r"|cuenta bancaria|arresto|antecedentes|detención|condena|mí|dónde|donde|quién|quien|que mi|secretos?"
        r"|familia|espos[oa]|marido|mujer|ex\w*|hij[oa]s?"
        r"|padres?)\b"
    ),
    objects=_c(
        r"\b(?:archivos?|carpetas?|documentos?|formularios?|listas?|textos?|ensayos?|párrafos?|frases?|oraciones?"
        r"|líneas?|palabras?|firmas?|tablas?|páginas?|hojas?|disco|ordenador|computadora|cuenta|perfil|web|app|fotos?"
        r"|imágenes?|mensajes?|correos|tuits?|publicaciones?|comentarios?|pizarra|duplicados?|código|caché|dibujo"
        r"|historial de búsqueda|calendario|receta|viñetas?)\b"
    ),
)

# ---------------------------------------------------------------------------------------- French
_D = r"d(?:e|')"  # "de" or elided "d'"
_FR_VERBS = {
    "forget": r"(?:oublier|oublies|oubliiez|oublie|oubliez|oubliais|oubliait)",
    "delete": r"(?:effacer|effaces|effaciez|efface|effacez|supprimer|supprimes|supprimiez|supprime|supprimez"
    r"|retirer|retires|retire|retirez|enlever|enlèves|enlève|enlevez|te débarrasser " + _D + r")",
    "unlearn": r"(?:désapprendre|désapprennes|désapprends|désapprenez)",
    "know": r"(?:arrêter|arrêtes|cesser|cesses) de (?:savoir|te souvenir " + _D + r"|vous souvenir " + _D + r")"
    r"|ne (?:plus|pas) (?:te|vous) souvenir " + _D + r"|ne (?:plus|pas) (?:savoir|retenir)",
}
_FR_BARE = {
    "forget": r"(?:oublie|oubliez)",
    "delete": r"(?:efface|effacez|supprime|supprimez|retire|retirez|enlève|enlevez|débarrasse-toi " + _D
    + r"|débarrassez-vous " + _D + r")",
    "unlearn": r"(?:désapprends|désapprenez)",
    "know": r"(?:ne te souviens (?:pas|plus)|ne vous souvenez (?:pas|plus)|(?:arrête|arrêtez|cesse|cessez) de"
    r" (?:te|vous) souvenir) " + _D + r"|(?:arrête|arrêtez|cesse|cessez) de savoir|ne (?:retiens|retenez) (?:pas|plus)",
    "retain": r"(?:arrête|arrêtez|cesse|cessez) de (?:stocker|garder|conserver|mémoriser|retenir)",
}
_FR_FRAMES = _any(
    r"(?:peux|pourrais|veux|voudrais|pourras)-tu(?: bien)?",
    r"(?:pouvez|pourriez|voulez|voudriez)-vous(?: bien)?",
    r"(?:serais|es)-tu capable " + _D + r"|(?:seriez|êtes)-vous capable " + _D
    + r"|(?:tu serais|tu es|vous seriez|vous êtes) capable " + _D,
    r"(?:est-ce que |est ce que )?(?:tu|vous) (?:peux|pourrais|veux bien|voudrais bien|pouvez|pourriez|voulez bien"
    r"|voudriez bien|dois|devrais|devez|devriez)",
    r"veuillez",
    r"merci " + _D,
    r"(?:je te|je vous) (?:demande|prie|supplie) " + _D,
    r"(?:essaie|essaye|essayez|tâche|tâchez) " + _D,
    r"(?:il faut|je veux|je voudrais|j'aimerais|j'aimerais bien|j'ai besoin|je souhaite|je souhaiterais|je préférerais"
    r"|ce serait (?:sympa|bien|génial|super|gentil|parfait|cool)|est-il possible|est-ce possible|il serait bon"
    r"|j'apprécierais|je te serais reconnaissante?|je vous serais reconnaissante?)(?: de ce)? qu(?:e\s+|')(?:tu|vous)",
    r"(?:ce serait (?:sympa|bien|génial|super|gentil|parfait|cool)|je te serais reconnaissante?"
    r"|je vous serais reconnaissante?) (?:de|si tu|si vous)",
)
_FR_NEG_FRAMES = (
    r"(?:je ne veux (?:pas|plus) que (?:tu|vous)"
    r"|(?:je préfère|je préférerais|j'aimerais|je voudrais|je souhaite) que (?:tu|vous) ne)"
)
_FR_KNOW = (
    r"(?:saches|sachiez|te souviennes " + _D + r"|vous souveniez " + _D + r"|retiennes|reteniez|connaisses"
    r"|connaissiez|gardes|gardiez|conserves|aies|ayez|saches plus|te souviennes plus " + _D + r")"
)

_FR_AND = "et|ou"

FR = Language(
    code="fr",
    conjunctions=_FR_AND,
    cues=(
        *(
            _cue(rf"^(?P<cue>{_FR_FRAMES}\s*(?:{verb}))(?:\s+|(?<='))(?P<t>.+)$", kind)
            for kind, verb in _FR_VERBS.items()
        ),
        *(_cue(rf"^(?P<cue>(?:{bare}))(?:\s+|(?<='))(?P<t>.+)$", kind) for kind, bare in _FR_BARE.items()),
        _cue(rf"^(?P<cue>{_FR_NEG_FRAMES}\s+{_FR_KNOW})(?:\s+|(?<='))(?P<t>.+)$", "know"),
        _cue(r"^(?P<cue>ne (?:garde|gardez|conserve|conservez|stocke|stockez|retiens|retenez|mémorise|mémorisez)"
             r" (?:pas|plus))\s+(?P<t>.+)$", "retain"),
        _cue(r"^(?P<cue>(?:oublie|oubliez|efface|effacez|supprime|supprimez))-(?P<t>la|le|les)\b.*$", "forget",
             pronoun=True),
        _cue(r"^(?P<cue>je (?:veux|voudrais|souhaite|aimerais) que)\s+(?P<t>.+?)\s+(?:soit|soient)"
             r" (?:oublié|effacé|supprimé)e?s?(?P<tail>\s+de .+)?$", "forget"),
    ),
    wrappers=(
        _c(
            r"^(?:tout |absolument tout )?ce (?:que|qu')\s*(?:tu sais|vous savez|tu connais|vous connaissez|tu as appris"
            r"|vous avez appris|tu retiens|je t'ai (?:dit|raconté|confié|appris)|je vous ai (?:dit|raconté|confié)"
            r"|on t'a (?:dit|appris|raconté)|on vous a (?:dit|appris|raconté)"
            r"|tu sais déjà)"
            r" (?:sur|de|du|des|à propos de|à propos du|au sujet de|au sujet du|concernant|d')\s*(?P<x>.+)$"
        ),
        _c(r"^(?:tout|toute l'histoire) (?:sur|à propos de|à propos du|au sujet de|concernant|de|du) (?P<x>.+)$"),
        _c(
            r"^(?:toutes |tous |toute |tout |les |la )?(?:les |la )?(?:informations?|infos?|données?|renseignements?"
            r"|connaissances?|détails?)(?: que (?:tu as|vous avez|tu possèdes|tu détiens|tu connais))?"
            r" (?:sur|à propos de|à propos du|au sujet de|concernant|de|du|relatives? à) (?P<x>.+)$"
        ),
        _c(r"^(?:toute|toutes les|tout|tous les) (?:traces?|souvenirs?|mentions?) (?:de |d'|du )(?P<x>.+)$"),
        _c(r"^(?:tout )?ce qui (?:concerne|touche|touche à|a trait à|se rapporte à|est lié à) (?P<x>.+)$"),
        _c(r"^(?:rien|plus rien) (?:sur|de|d'|à propos de|concernant|au sujet de) ?(?P<x>.+)$"),
    ),
    topic=_c(r"^(?:à propos de|au sujet de) (?P<x>.+)$"),
    everything=_c(r"^(?:tout|toute|toutes|tous|absolument tout)\b"),
    cut=_c(
        _list_comma(_FR_AND) + r"\s*|\s+(?:parce que|parce qu'|car|puisque|si tu peux|si possible|si ça ne te dérange pas)\b"
        r"|\s+(?:et|mais)\b(?!\s+(?:mon|ma|mes|le|la|les|l'|un|une|son|sa|ses|ton|ta|tes|tout|toute|(?-i:[A-ZÀ-Þ])))"
        r"|\s+[—–-]\s+|\s*\("
    ),
    dismissal=_c(r"\b(?:parlons|passons|plutôt|pour l'instant|pour le moment|en attendant)\b"),
    trailing=_c(
        r"(?:\s*,)?\s+(?:s'il te pla[iî]t|s'il vous pla[iî]t|stp|svp|merci|maintenant|tout de suite|pour toujours"
        r"|définitivement|complètement|totalement|entièrement|à jamais|immédiatement|aussi|une fois pour toutes)$"
    ),
    leading=_c(r"^(?:définitivement|complètement|totalement|aussi|maintenant|tout de suite|immédiatement)\s+"),
    memory=_c(
        r"(?:^|\s+)de (?:ta|votre) (?:propre )?(?:mémoire|tête|base de données|base de connaissances|connaissance"
        r"|cervelle)\b|(?:^|\s+)de (?:tes|vos) (?:souvenirs|données|connaissances|paramètres|poids)\b"
        r"|\s+en mémoire$|(?:^|\s+)de ce que (?:tu|vous) (?:sais|savez|as|avez) ?(?:enregistré|stocké|gardé|mémorisé"
        r"|appris|retenu)?\b.*$"
    ),
    negation=_c(r"^(?:pas|jamais|surtout pas|plus|point)\b"),
    pronouns=frozenset({"ça", "ca", "cela", "ceci", "le", "la", "les", "tout ça", "tout cela", "ce truc", "l'"}),
    person_pronouns=frozenset({"la", "le", "les"}),
    meta=_c(
        r"^(?:toutes |tous )?(?:les |la |le |tes |mes )?(?:instructions|messages?|règles|consignes|conversation"
        r"|questions?|ordres)\b.*\b(?:précédente?s?|antérieures?|ci-dessus|d'avant)\b"
        r"|^ce que (?:je )?(?:t'ai dit|viens de (?:dire|écrire)|j'ai dit)(?: avant)?$"
    ),
    generic=_c(
        r"^(?:des choses|les choses|choses|quelque chose|rien|des informations|des données|des faits|des souvenirs)\b"
        r"(?!\s+(?:sur|à propos|concernant))"
    ),
    info=_c(
        r"\b(?:adresse|domicile|téléphone|numéro|e-?mail|courriel|nom|prénom|naissance|anniversaire|âge|salaire"
        r"|revenus?|mot de passe|code|données|informations|coordonnées|détails|dossier médical|historique médical"
        r"|diagnostic|maladie|santé|emploi|travail|employeur|entreprise|identité|plaque|immatriculation|passeport"
        r"|casier|condamnation|arrestation|moi"
        r"|où|qui|que mon|que ma|secrets?|famille|femme|mari|ex\w*|fils|fille|enfants|parents)\b"
    ),
    objects=_c(
        r"\b(?:fichiers?|dossiers? (?!médical)|documents?|formulaires?|listes?|textes?|dissertations?|paragraphes?"
        r"|phrases?|lignes?|mots?|signatures?|tableaux?|tableau|pages?|disques?|ordinateur|compte|profil|site|appli"
        r"|photos?|images?|messages?|mails|tweets?|publications?|commentaires?|doublons?|code|cache"
        r"|historique de navigation|agenda|recette|puces?|oignons?)\b"
    ),
)

# ---------------------------------------------------------------------------------------- German
_DE_IMPERATIVE = {
    "forget": r"(?:vergiss|vergesst|vergessen sie)",
    "delete": r"(?:lösche|lösch|löscht|löschen sie|entferne|entfern|entfernt|entfernen sie|tilge|tilgen sie"
    r"|streiche|streich|streicht|streichen sie)",
    "unlearn": r"(?:verlerne|verlern|verlernt|verlernen sie)",
}
_DE_FINAL_VERB = {  # verb at the end of a modal or dass-clause
    "forget": r"(?:vergessen|vergisst|vergessen könntest|vergessen könnten|vergessen würdest|vergessen würden)",
    "delete": r"(?:löschen|löschst|löschen könntest|löschen könnten|löschen würdest|entfernen|entfernst"
    r"|entfernen könntest|streichen|streichst)",
    "unlearn": r"(?:verlernen|verlernst|verlernen könntest)",
}
_DE_MODAL = (
    r"(?:kannst|könntest|würdest|willst|magst|möchtest) du(?: bitte| mal| vielleicht| einfach)?"
    r"|(?:können|könnten|würden|wollen|möchten) sie(?: bitte| vielleicht)?"
    r"|du (?:musst|solltest|sollst|darfst)(?: bitte)?|sie (?:müssen|sollten|sollen)(?: bitte)?"
)
_DE_WISH = (
    r"(?:ich (?:möchte|will|wünsche mir|hätte gern|hätte gerne|würde gern|würde gerne|brauche|bitte dich|bitte sie)"
    r"|es wäre (?:toll|schön|gut|super|nett|prima|klasse|lieb|großartig|besser)|ist es möglich|wäre es möglich"
    r"|ich wäre (?:dir |ihnen )?dankbar)\s*,?\s*(?:dass|wenn) (?:du|sie)(?: bitte)?"
)
_DE_NO_KNOW = r"ich (?:will|möchte) (?:nicht|nicht mehr|keinesfalls|auf keinen fall)\s*,?\s*dass (?:du|sie)"
_DE_KNOW_END = (
    r"(?:weißt|wissen|kennst|kennen|behältst|behalten|speicherst|speichern|dir merkst|sich merken|hast|haben)"
)
_DE_ASK_ZU = (
    r"(?:ich bitte dich|ich bitte sie|ich möchte dich bitten|ich möchte sie bitten|sei so nett|sei so gut"
    r"|seien sie so nett|(?:wärst|bist) du (?:in der lage|fähig|bereit)|(?:wären|sind) sie (?:in der lage|fähig|bereit))"
)
_WH = r"(?:wo|was|wer|wen|wem|wie|wann|warum|dass|ob|welche\w*|woher|wohin)\b"
_DE_RELATIVE_TAIL = r"(?P<tail>\s*,\s*(?:was|die|den|das|der)\b.+)?"


def _de_cues() -> tuple[Cue, ...]:
    cues: list[Cue] = []
    for kind, verb in _DE_IMPERATIVE.items():
        cues.append(_cue(rf"^(?P<cue>{verb})\b\s*,?\s*(?P<t>.+)$", kind))
    for kind, verb in _DE_FINAL_VERB.items():
        cues += [
            _cue(rf"^(?P<cue>{_DE_MODAL})\s+(?P<t>.+?)\s+(?:aus (?:deinem|ihrem) gedächtnis )?{verb}(?:\s+bitte)?"
                 rf"{_DE_RELATIVE_TAIL}$", kind),
            _cue(rf"^(?P<cue>{_DE_MODAL})\s+{verb}\s*,\s*(?P<t>{_WH}.+)$", kind),
            _cue(rf"^(?P<cue>{_DE_WISH})\s+(?P<t>.+?)\s+{verb}{_DE_RELATIVE_TAIL}$", kind),
            _cue(rf"^(?P<cue>{_DE_WISH})\s+{verb}\s*,\s*(?P<t>{_WH}.+)$", kind),
        ]
    cues += [
        _cue(rf"^(?P<cue>{_DE_NO_KNOW})\s+(?P<t>.+?)\s+{_DE_KNOW_END}$", "know"),
        _cue(rf"^(?P<cue>{_DE_NO_KNOW})\s+{_DE_KNOW_END}\s*,\s*(?P<t>{_WH}.+)$", "know"),
        _cue(rf"^(?P<cue>{_DE_NO_KNOW})\s+(?:dich|sich) (?:noch )?an (?P<t>.+?)\s+erinner(?:st|n)$", "know"),
        _cue(rf"^(?P<cue>{_DE_WISH})\s+(?P<t>.+?)\s+(?:nicht mehr|nicht|nie mehr) {_DE_KNOW_END}$", "know"),
        _cue(r"^(?P<cue>(?:erinnere dich|erinner dich|erinnern sie sich)(?: bitte)? (?:nicht|nie) ?(?:mehr )?an)"
             r"\s+(?P<t>.+)$", "know"),
        _cue(r"^(?P<cue>(?:hör|höre|hört|hören sie) (?:bitte )?auf\s*,?\s*(?:dich|sich) an)\s+(?P<t>.+?)\s+zu erinnern$",
             "know"),
        _cue(r"^(?P<cue>(?:hör|höre|hört|hören sie) (?:bitte )?auf\s*,?)\s+(?P<t>.+?)\s+zu (?:wissen|kennen)$", "know"),
        _cue(r"^(?P<cue>(?:merk|merke|merkt|merken sie) (?:dir|euch|sich))(?: bitte)?\s+(?P<t>.+?)\s+"
             r"(?:nicht|nicht mehr|nie)$", "know"),
        _cue(r"^(?P<cue>(?:behalte|behalt|speichere|speicher|behaltet|speichert) (?:bitte )?(?:nichts|keine"
             r" (?:daten|informationen|infos|angaben)))\s+(?P<t>(?:über|von|zu)\s+.+)$", "know"),
        _cue(r"^(?P<cue>(?:behalte|behalt|speichere|speicher|behaltet|speichert))(?: bitte)?\s+(?P<t>.+?)\s+"
             r"(?:nicht|nicht mehr)$", "retain"),
        _cue(rf"^(?P<cue>{_DE_ASK_ZU}\s*,?)\s+(?P<t>.+?)\s+zu (?:vergessen|löschen|verlernen)$", "forget"),
        _cue(r"^(?P<cue>(?:hör|höre|hört|hören sie) (?:bitte )?auf\s*,?)\s+(?P<t>.+?)\s+zu (?:speichern|behalten)$",
             "retain"),
        _cue(rf"^(?P<cue>{_DE_ASK_ZU}\s*,?\s*zu (?:vergessen|löschen|verlernen))\s*,\s*(?P<t>{_WH}.+)$", "forget"),
        _cue(r"^(?P<cue>ich (?:möchte|will|hätte gern|hätte gerne)\s*,?\s*dass)\s+(?P<t>.+?)\s+"
             r"(?:vergessen|gelöscht|entfernt) (?:wird|werden)$", "forget"),
    ]
    return tuple(cues)


_DE_AND = "und|oder"

DE = Language(
    code="de",
    conjunctions=_DE_AND,
    cues=_de_cues(),
    wrappers=(
        _c(
            r"^(?:alles|all das|das|all)?\s*,?\s*was (?:du|sie|ich dir|ich ihnen|man dir) (?:so )?(?:über|von|zu"
            r"|bezüglich) (?P<x>.+?) (?:weißt|wissen|kennst|kennen|gelernt hast|gelernt haben|gespeichert hast"
            r"|erzählt habe|erzählt hab|gesagt habe|gesagt hab|mitgeteilt habe|anvertraut habe|verraten habe"
            r"|erzählt hat|gesagt hat|beigebracht hat|erzählt haben|gesagt haben)$"
        ),
        _c(
            r"^(?:alle|sämtliche|jegliche|die)?\s*(?:daten|informationen|infos|angaben|details),? die (?:du|sie)"
            r" (?:über|zu|von) (?P<x>.+?) (?:hast|haben|gespeichert hast|weißt|kennst)$"
        ),
        _c(r"^(?:alle|sämtliche|jegliche|die|deine)?\s*(?:daten|informationen|infos|angaben|details|kenntnisse)"
           r" (?:über|zu|von) (?P<x>.+)$"),
        _c(r"^(?:jede|jegliche|alle|sämtliche) (?:erinnerung|erinnerungen|spur|spuren) (?:an|von) (?P<x>.+)$"),
        _c(r"^(?:alles|das ganze wissen|dein wissen) (?:über|von|zu|bezüglich) (?P<x>.+)$"),
        _c(r"^alles\s*,?\s*was mit (?P<x>.+?) zu tun hat$"),
    ),
    topic=_c(r"^(?:über|von) (?P<x>.+)$"),
    everything=_c(r"^(?:alles|alle|sämtliche|jegliche|all)\b"),
    cut=_c(
        _list_comma(_DE_AND) + r"(?!\s*(?:dass|wo|was|wer|wen|wem|wie|wann|warum|ob|welche\w*|die|der|den|das|woher|wohin"
        r"|(?:in|an|auf|mit|bei|von|zu|aus|für|über|unter|vor|nach) (?:dem|der|den|denen|welchem|welcher))\b)\s*"
        r"|\s+(?:weil|denn|da ich|wenn möglich|wenn du kannst)\b"
        r"|\s+(?:und|aber)\b(?!\s+(?:mein\w*|den|die|das|dem|der|ein\w*|sein\w*|ihr\w*|dein\w*|alle\w*"
        r"|(?-i:[A-ZÀ-Þ][\w'’-]*\s+[A-ZÀ-Þ])))"  # "und Eva Braun": a name, where nouns are capitalised too
        r"|\s+[—–-]\s+|\s*\("
    ),
    dismissal=_c(
        r"\b(?:lass uns|lasst uns|was ist mit|wie wäre es|erst mal|erstmal|vorerst|fürs erste|für den moment"
        r"|stattdessen)\b"
    ),
    trailing=_c(
        r"(?:\s*,)?\s+(?:bitte|danke|sofort|jetzt|für immer|endgültig|komplett|vollständig|ganz|wieder|auch|gleich"
        r"|ein für alle mal|ein für allemal)$"
    ),
    leading=_c(r"^(?:bitte|sofort|einfach|endlich|jetzt|mal|doch|auch|endgültig|komplett|ganz|für immer|gleich)\s*,?\s+"),
    memory=_c(
        r"(?:^|\s+)aus (?:deinem|ihrem|dem) (?:gedächtnis|speicher|wissen|kopf|modell|training|trainingsdaten"
        r"|erinnerungen)\b|(?:^|\s+)aus (?:deinen|ihren) (?:erinnerungen|daten|gewichten|parametern)\b"
    ),
    negation=_c(r"^(?:ja |bloß |bloss |auf keinen fall |keinesfalls )?(?:nicht|nie|niemals)\b|\bnicht(?: mehr)?$"),
    pronouns=frozenset({"es", "das", "dies", "das alles", "sie", "ihn", "ihm", "das da", "den", "die", "diesen",
                        "diese"}),
    person_pronouns=frozenset({"sie", "ihn"}),
    meta=_c(
        r"^(?:alle |sämtliche )?(?:die |deine |meine )?(?:vorherigen|bisherigen|obigen|früheren|letzten|vorigen"
        r"|anderen) (?:anweisungen|nachrichten|regeln|vorgaben|fragen?|befehle|instruktionen)\b"
        r"|^(?:alle |deine )?(?:anweisungen|regeln|vorgaben)\b|^was ich (?:\w+ )?(?:gesagt|geschrieben)"
        r" habe\b"
    ),
    generic=_c(
        r"^(?:dinge|sachen|etwas|irgendwas|informationen|daten|fakten|erinnerungen|gelerntes)\b"
        r"(?!\s+(?:über|von|zu))"
    ),
    info=_c(
        r"(?:adresse|anschrift|wohnort|telefon|nummer|e-mail|mail|name|namen|geburt|alter|gehalt|einkommen|passwort"
        r"|kennwort|\bpin\b|daten|informationen|angaben|details|krankengeschichte|diagnose|krankheit|gesundheit"
        r"|arbeitgeber|firma|\bjob\b|identität|kennzeichen|ausweis|\bpass\b|\bmich\b|\bwo ich|\bwer ich|\bdass mein"
        r"|geheimnis|vorstrafe|strafregister|verhaftung|festnahme|familie|\bfrau\b|\bmann\b|\bex\b|\bex-|sohn"
        r"|tochter|kinder|eltern)"
    ),
    objects=_c(
        r"(?:datei\w*|ordner|dokumente?|formulare?|liste|texte?|aufsatz\w*|absatz\w*|sätze?|satz|zeilen?|wörter"
        r"|wort|signatur|tabellen?|seiten?|festplatte|computer|konto|facebook-konto|profil|website|app|fotos?|bilder?"
        r"|nachrichten?|mails|tweets?|beiträge?|kommentare?|tafel|duplikate|code|cache|browserverlauf|verlauf"
        r"|kalender|termin|rezept|zwiebeln)\b"
    ),
)

LANGUAGES: tuple[Language, ...] = (EN, ES, FR, DE)
