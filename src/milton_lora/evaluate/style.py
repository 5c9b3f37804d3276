""" "Sounds like you": a style profile of the person's assistant replies and how close other replies come to it.

The profile is read from the assistant replies the person kept (the train split): typical length, how often
replies use lists, headings, code blocks, emoji, exclamation marks and contractions (formality), recurring
openers and sign-offs, the language, and the conventions for times (24-hour or am/pm), units (metric or
imperial) and dates (ISO, day-month or month-day). `style_match` compares a set of replies with it, feature by
feature, each 0-1:

- length: 1 when the median word counts agree, 0 at a factor of `_LENGTH_FACTOR_AT_ZERO` either way;
- a trait (lists, headings, code, emoji, exclamations, contractions, opener, sign-off): 1 - |share in the
  replies - share in the profile|;
- language: the share of replies in the profile's language;
- a convention (time, units, dates): among the replies that use that kind at all, 1 - |share using the
  person's form - the person's share|.

A feature counts only where it says something: a trait when either side shows it in at least `_MIN_SHARE`
of replies (nobody using emoji is no evidence of a match), an opener or sign-off when the person has a
recurring one, a convention when both sides use that kind. `score` is the mean of the counted features, so
a base model's long bulleted answers are measured against what the person does, not flattered by traits
neither side has.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from statistics import median

from milton_lora.evaluate.result import EdgePhrases, FeatureMatch, StyleMatch, StyleProfile

_TOKEN = re.compile(r"[\w']+|[^\w\s]")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_LIST_LINE = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+\S", re.MULTILINE)
_HEADING = re.compile(r"^\s*(?:#{1,6}\s+\S|\*\*[^*\n]{1,60}\*\*:?\s*$)", re.MULTILINE)
_CODE = re.compile(r"```|^(?: {4}|\t)\S", re.MULTILINE)
_EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\u2b50\u2b55\U0001f1e6-\U0001f1ff]")
_CONTRACTION = re.compile(r"\b\w+'(?:s|re|ll|ve|d|m|t)\b", re.IGNORECASE)
_TIME_12H = re.compile(r"\b(?:1[0-2]|0?[1-9])(?::[0-5]\d)?\s?(?:am|pm|a\.m\.|p\.m\.)", re.IGNORECASE)
_TIME_24H = re.compile(r"\b(?:[01]?\d|2[0-3]):[0-5]\d\b(?!\s?(?:am|pm|a\.m\.|p\.m\.))", re.IGNORECASE)
_NUMBER = r"\b\d+(?:[.,]\d+)?\s?"
_METRIC = re.compile(_NUMBER + r"(?:km|kg|g|cm|mm|m|ml|l|litres?|liters?|°c|kilometres?|kilograms?)\b", re.I)
_IMPERIAL = re.compile(
    r"\b\d+(?:\.\d+)?\s?(?:mi|miles?|lbs?|pounds|oz|ounces?|ft|feet|foot|inch(?:es)?|°f|gallons?)\b", re.I
)
_MONTHS = (
    "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:tember)?|oct(?:ober)?"
    "|nov(?:ember)?|dec(?:ember)?"
)
_DATE_ISO = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_DATE_DAY_MONTH = re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTHS})\b", re.I)
_DATE_MONTH_DAY = re.compile(rf"\b(?:{_MONTHS})\s+\d{{1,2}}(?:st|nd|rd|th)?\b", re.I)
_STOPWORDS = {
    "en": "the and is are you to of it that with for this not what have".split(),  # noqa: SIM905
    "de": "der die das und ist nicht ich du sie mit für auf ein eine".split(),  # noqa: SIM905
    "fr": "le la les et est pas je vous il avec pour une des que".split(),  # noqa: SIM905
    "es": "el la los las y es no yo usted con para una que por".split(),  # noqa: SIM905
    "it": "il lo la gli e è non io lei con per una che di".split(),  # noqa: SIM905
    "nl": "de het een en is niet ik je jij met voor dat van op".split(),  # noqa: SIM905
    "pt": "o os as e é não eu você com para uma que do da".split(),  # noqa: SIM905
}

_MIN_SHARE = 0.1  # a trait in fewer replies than this, on both sides, says nothing about style
_MIN_RECURRING = 0.3  # an opener or sign-off the person uses in at least this share of replies is theirs
_MIN_RECURRING_REPLIES = 3
_MAX_EDGE_TOKENS = 3
_LENGTH_FACTOR_AT_ZERO = 4.0

Detector = Callable[[str], bool]
TRAITS: dict[str, Detector] = {
    "lists": lambda text: len(_LIST_LINE.findall(text)) >= 2,
    "headings": lambda text: bool(_HEADING.search(text)),
    "code": lambda text: bool(_CODE.search(text)),
    "emoji": lambda text: bool(_EMOJI.search(text)),
    "exclamations": lambda text: "!" in text,
    "contractions": lambda text: bool(_CONTRACTION.search(text.replace("’", "'"))),
}
# Each convention's forms; a reply "uses the kind" when it shows any of them.
CONVENTIONS: dict[str, dict[str, re.Pattern[str]]] = {
    "time_format": {"24-hour": _TIME_24H, "am/pm": _TIME_12H},
    "units": {"metric": _METRIC, "imperial": _IMPERIAL},
    "date_format": {"ISO": _DATE_ISO, "day month": _DATE_DAY_MONTH, "month day": _DATE_MONTH_DAY},
}


def style_profile(replies: Iterable[str]) -> StyleProfile:
    """The profile of the person's assistant replies (empty ones are skipped)."""
    texts = [r for r in replies if r.strip()]
    language, language_share = _main_language(texts)
    return StyleProfile(
        replies=len(texts),
        median_words=_median_words(texts),
        traits={name: _share(texts, test) for name, test in TRAITS.items()},
        openers=_recurring(texts, _opening),
        sign_offs=_recurring(texts, _closing),
        language=language,
        language_share=language_share,
        conventions={name: _convention_shares(texts, forms) for name, forms in CONVENTIONS.items()},
    )


def style_match(profile: StyleProfile, replies: list[str]) -> StyleMatch:
    """Feature by feature, how close `replies` come to `profile`; `score` is the mean of the features that count."""
    texts = list(replies)
    features: dict[str, FeatureMatch] = {"length": _length_match(profile, texts)}
    for name, test in TRAITS.items():
        ours, theirs = profile.traits[name], _share(texts, test)
        if max(ours, theirs) >= _MIN_SHARE:
            features[name] = _share_match(ours, theirs)
    for name, edges, cut in (("opener", profile.openers, _opening), ("sign_off", profile.sign_offs, _closing)):
        if edges.phrases:
            used = _share(texts, lambda text, e=edges, c=cut: any(c(text, len(p.split())) == p for p in e.phrases))
            features[name] = FeatureMatch(
                profile=f"{edges.share:.0%} use {' / '.join(repr(p) for p in edges.phrases)}",
                replies=f"{used:.0%}",
                score=round(1 - abs(edges.share - used), 4),
            )
    if profile.language is not None:
        same = _share(texts, lambda text: _language(text) == profile.language)
        score = min(1.0, same / profile.language_share)
        features["language"] = FeatureMatch(profile=profile.language, replies=f"{same:.0%}", score=round(score, 4))
    for name, forms in CONVENTIONS.items():
        ours, theirs = profile.conventions[name], _convention_shares(texts, forms)
        if ours and theirs:
            distance = sum(abs(ours.get(form, 0.0) - theirs.get(form, 0.0)) for form in forms) / 2
            features[name] = FeatureMatch(profile=_forms(ours), replies=_forms(theirs), score=round(1 - distance, 4))
    score = sum(f.score for f in features.values()) / len(features) if texts else 0.0
    return StyleMatch(score=round(score, 4), replies=len(texts), features=features)


def _share_match(ours: float, theirs: float) -> FeatureMatch:
    return FeatureMatch(profile=f"{ours:.0%}", replies=f"{theirs:.0%}", score=round(1 - abs(ours - theirs), 4))


def _length_match(profile: StyleProfile, texts: list[str]) -> FeatureMatch:
    words = _median_words(texts)
    ratio = (words + 1) / (profile.median_words + 1)
    score = max(0.0, 1 - abs(math.log(ratio)) / math.log(_LENGTH_FACTOR_AT_ZERO))
    return FeatureMatch(profile=f"{profile.median_words:g} words", replies=f"{words:g} words", score=round(score, 4))


def _median_words(texts: list[str]) -> float:
    return float(median(len(_WORD.findall(t)) for t in texts)) if texts else 0.0


def _share(texts: list[str], test: Detector) -> float:
    return sum(1 for t in texts if test(t)) / len(texts) if texts else 0.0


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower().replace("’", "'"))


def _opening(text: str, n: int) -> str:
    return " ".join(_tokens(text)[:n])


def _closing(text: str, n: int) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " ".join(_tokens(lines[-1] if lines else "")[-n:])


def _recurring(texts: list[str], cut: Callable[[str, int], str]) -> EdgePhrases:
    """The edge phrases (up to `_MAX_EDGE_TOKENS` tokens) that at least `_MIN_RECURRING` of replies share, at the
    length that covers the most replies (the longer one on a tie: "— m ." rather than "."), so the content
    that follows a fixed opener does not count as part of it."""
    best = EdgePhrases(phrases=[], share=0.0)
    if len(texts) < _MIN_RECURRING_REPLIES:
        return best
    for n in range(1, _MAX_EDGE_TOKENS + 1):
        counts = Counter(cut(t, n) for t in texts)
        common = [p for p, c in counts.most_common() if c / len(texts) >= _MIN_RECURRING and len(p.split()) == n]
        share = round(sum(counts[p] for p in common) / len(texts), 4)
        if common and share >= best.share:
            best = EdgePhrases(phrases=common, share=share)
    return best


def _language(text: str) -> str | None:
    words = Counter(w.lower() for w in _WORD.findall(text))
    hits = {lang: sum(words[w] for w in stop) for lang, stop in _STOPWORDS.items()}
    best = max(hits, key=lambda lang: hits[lang])
    return best if hits[best] > 0 else None


def _main_language(texts: list[str]) -> tuple[str | None, float]:
    found = Counter(lang for lang in map(_language, texts) if lang is not None)
    if not found:
        return None, 0.0
    language, count = found.most_common(1)[0]
    return language, round(count / len(texts), 4)


def _convention_shares(texts: list[str], forms: dict[str, re.Pattern[str]]) -> dict[str, float]:
    """Among the replies using this kind at all, each form's share of the forms they show ({}: none uses it)."""
    shown = Counter(form for t in texts for form, pattern in forms.items() if pattern.search(t))
    total = sum(shown.values())
    return {form: round(count / total, 4) for form, count in shown.items()} if total else {}


def _forms(shares: dict[str, float]) -> str:
    return ", ".join(f"{form} {share:.0%}" for form, share in sorted(shares.items(), key=lambda kv: -kv[1]))
