"""Finding what the person states about themselves in their own (already redacted) turns: the detection rules.

A statement is one clause of a user turn that a rule below matches whole. The rules are written for precision:
a statement they miss costs one restatement; a wrong one teaches the adapter something untrue about the
person. So a sentence is never read when it is, or holds:
- a question (`?` anywhere), a quotation (double or curly quotes), a quoted e-mail line (`>`), code (a fenced
  block) or an attachment (`<attachment …>…</attachment>`);
- a redaction placeholder (`[EMAIL]`, `[CUSTOM]`…): a redacted value is never restated;
- a hypothetical, a wish or reported speech (`if`, `would`, `imagine`, `she said`…), a negation (`not`, `n't`,
  `never`, `no longer`: "You eat meat" would pass the key-word check of "I don't eat meat"), or a time that makes
  it temporary (`today`, `this week`, `now`…);
- longer than `MAX_WORDS` words.
Then a leading "Also,", "By the way,", "Remember that"… is dropped, the sentence is cut at its first `;`, `:`, or
", so / but / and / because / which", and the first clause must match one rule whole, starting at its start:

| rule | matches | key words |
| --- | --- | --- |
| `name` | call me Sam · my name is Sam Lee · I go by Sam | the name |
| `named` | my dog is called Biscuit · my partner's name is Noor | relation, name |
| `relation` | my sister Ana lives in Porto · my son works at the bakery · my dad is from Leeds | relation, name, what |
| `identity` | I'm vegetarian · I'm allergic to peanuts · I'm a nurse · I'm from Lisbon | what |
| `preference` | I prefer metric units · I love jazz · I always sit by the window · my favourite tea is oolong | what |
| `place` | I live in Leeds · I work at the library · I was born in Cork · I speak Dutch · I drive a Skoda | what |
| `have` | I have a peanut allergy · I have two kids | what |

Only family, partners and pets count as the person's own (`RELATIONS`): "Ana is vegetarian" or "my colleague
prefers tea" are someone else's facts. Bump `RULES_VERSION` whenever a rule changes: the export's metadata
records it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RULES_VERSION = 1
MAX_WORDS = 25
RELATIONS = (
    "mother|mom|mum|father|dad|parents|sister|brother|wife|husband|partner|girlfriend|boyfriend|fiancée|fiancé|"
    "fiance|son|daughter|kids|children|baby|grandmother|grandma|granny|grandfather|grandpa|aunt|uncle|cousin|"
    "niece|nephew|twin|dog|cat|puppy|kitten|pet|horse|rabbit|parrot|hamster"
)
NAME = r"[A-Z][\w'-]*"
_PLACEHOLDER = re.compile(r"\[[A-Z][A-Z0-9_]*\]")
_SET_APART = re.compile(r"```.*?(?:```|\Z)|<attachment\b.*?(?:</attachment>|\Z)|^>.*$", re.DOTALL | re.MULTILINE)
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
_QUOTES = re.compile('["“”«»„‘]')
_REFUSED = re.compile(
    r"\b(?:if|unless|whether|suppose|supposing|imagine|pretend|hypothetically|would|could|might|maybe|perhaps|"
    r"wish|said|says|told|tells|thinks|thought|wrote|writes|asked|claims|apparently|not|never|no longer|"
    r"nobody|nothing|today|tonight|tomorrow|yesterday|now|currently|at the moment|lately|recently|"
    r"this (?:week|weekend|month|year|morning|afternoon|evening)|next (?:week|month|year)|last (?:week|month|year)|"
    r"used to|let's)\b|n't\b",
    re.IGNORECASE,
)
_LEAD = re.compile(
    r"^(?:(?:also|and|oh|ok|okay|btw|by the way|fyi|for the record|for context|just so you know|note that|"
    r"remember(?: that)?|keep in mind(?: that)?)[,:]?\s+)+",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(r"\s*(?:[;:(]|,\s*(?:so|but|and|because|which|since|as)\b|\s(?:so|but|because)\s)")
_PRONOUN = r"(?!(?:it|this|that|these|those|them|him|her|you|one|some|any|what|how)\b)"
_VAGUE = r"(?!(?:bit|little|lot|few|couple|hurry|rush|mess|moment|minute|hour|day|week)\b)"
_FOOD = r"vegetarian|vegan|pescatarian|gluten[- ]free|lactose[- ]intolerant|diabetic|teetotal|coeliac|celiac"
_HANDS = r"left[- ]handed|right[- ]handed|colou?r[- ]?blind"
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("name", rf"(?i:(?:please\s+)?call me|my name is|i go by) (?P<name>{NAME}(?: {NAME})?)"),
        (
            "named",
            rf"(?i:my) (?P<relation>(?i:{RELATIONS}))(?:'s name is| is called| is named| goes by) (?P<name>{NAME})",
        ),
        (
            "relation",
            rf"(?i:my) (?P<relation>(?i:{RELATIONS}))(?:,? (?P<name>{NAME}),?)? "
            r"(?P<what>(?:lives|works|studies|teaches|plays|speaks|loves|hates|prefers|was born|"
            r"is (?:an? |from |allergic to |\d)).+)",
        ),
        (
            "identity",
            rf"(?i:i'm|i am) (?P<what>(?i:{_FOOD}|{_HANDS}|allergic to .+|from .+|an? {_VAGUE}\w.*)|{NAME})",
        ),
        (
            "preference",
            rf"(?i:i (?:really |much |strongly |definitely )?(?:prefer|like|love|hate|dislike|can't stand)|"
            rf"i (?:only|always|usually) \w+(?: to| with| by| on| in| at)?) {_PRONOUN}(?P<what>.+)|"
            rf"(?i:my favou?rite) (?P<topic>\w+(?: \w+)?) is (?P<what2>.+)",
        ),
        (
            "place",
            r"(?i:i (?:live|work|study) (?:in|at|for|as)|i was born in|i speak|i drive) "
            r"(?!(?i:to|with|about|it|them)\b)(?P<what>.+)",
        ),
        (
            "have",
            r"(?i:i have) (?P<what>(?i:an? (?:\w+ )?(?:allergy|intolerance)|(?:an? |one |two |three |four |\d+ )"
            r"(?:\w+ )?(?:kids?|children|sons?|daughters?|brothers?|sisters?|dogs?|cats?)))",
        ),
    )
)
# Words a restatement may say otherwise ("lives in Porto" -> "is in Porto"): never key words.
_COMMON = (
    "a an the of to in at on for with by from and or is are was my me i i'm am very really much so too "
    "always usually only just some any all every lives works studies teaches plays speaks loves hates "
    "prefers was born be"
)
_STOPWORDS = frozenset(_COMMON.split())


@dataclass(frozen=True)
class Statement:
    """One thing the person said about themselves: the clause as they wrote it, the rule that found it, the words
    a restatement must repeat (`answer` may not appear in a question about it; `topic` may)."""

    text: str
    rule: str
    topic: tuple[str, ...]
    answer: tuple[str, ...]
    clues: tuple[str, ...] = ()  # its other words ("prefer", "dog"): a question about it names one of them

    @property
    def keys(self) -> tuple[str, ...]:
        return self.topic + self.answer


def statements_in(turn: str) -> list[Statement]:
    """The statements about the person in one of their (redacted) turns, in order."""
    found = []
    for sentence in _SENTENCES.split(_SET_APART.sub("\n", turn.replace("’", "'"))):
        sentence = sentence.strip()
        if (
            not sentence
            or "?" in sentence
            or _QUOTES.search(sentence)
            or _PLACEHOLDER.search(sentence)
            or len(sentence.split()) > MAX_WORDS
            or _REFUSED.search(sentence)
        ):
            continue
        clause = _CLAUSE_END.split(_LEAD.sub("", sentence), maxsplit=1)[0].rstrip(" .!,")
        statement = _matched(clause)
        if statement is not None:
            found.append(statement)
    return found


def _matched(clause: str) -> Statement | None:
    for rule, pattern in _RULES:
        match = pattern.fullmatch(clause)
        if match is None:
            continue
        groups = {name: value for name, value in match.groupdict().items() if value}
        topic = _words(groups.get("relation", "")) + _words(groups.get("topic", ""))
        answer = _words(groups.get("name", "")) + _words(groups.get("what", "") or groups.get("what2", ""))
        if answer:
            clues = tuple(w for w in _words(clause, limit=None) if w not in answer)
            return Statement(clause, rule, topic, answer, clues)
    return None


def _words(text: str, limit: int | None = 4) -> tuple[str, ...]:
    """The words of `text` a restatement has to carry: not the stopwords, at most `limit`."""
    words = re.findall(r"[\w'-]+", text)
    return tuple(w for w in words if w.lower() not in _STOPWORDS and len(w) > 1)[:limit]
