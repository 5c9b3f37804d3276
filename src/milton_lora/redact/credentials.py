"""Credentials known by their context: values assigned to secret-looking names (`DB_PASSWORD=...`,
`'PASSWORD': '...'`, `<password>...</password>`), passwords in prose (`password Bill$Yeah4484`,
`user admin, pass inside-i-stage-tonight`, `I reuse ... everywhere`), passwords on command lines
(`mysql -p...`, `sshpass -p`, `curl -u user:...`, `--password ...`) and `Bearer` / `Basic` credentials.

A value is judged by its shape and its context together: after `password is` a plain word is a password,
after `pass` only in a credential context (`user admin, pass ...`) or when it looks like one; `bypass`,
`passport` and `passed` are no cues at all.
"""

from __future__ import annotations

import base64
import binascii
import re
from functools import lru_cache
from typing import NamedTuple

from milton_lora.redact.cues import COPULAS, FOREIGN_COPULAS
from milton_lora.redact.labels import Span
from milton_lora.redact.validators import high_entropy, is_placeholder, looks_like_code

# Names that make the value assigned to them a secret, in the spellings people write them in: a password
# word makes it a PASSWORD, the others an API_KEY when it looks random. Short words count only as a whole
# part of a name (`DB_PASS`, `dbPass`, `api_key`, not `bypass` or `pwm`), which is also how `apiKey`,
# `passPhrase` and `X-Api-Key` are found.
PASSWORD_WORDS = ["password", "passwd", "pwd", "passphrase", "passcode", "pass", "pw", "psk", "passwort",
                  "kennwort", "wachtwoord", "mot de passe", "contraseña", "contrasena", "senha",
                  "palavra-passe"]  # fmt: skip
SECRET_WORDS = ["secret", "token", "auth", "credential", "creds", "key", "apikey", "accesskey", "privatekey",
                "accountkey", "schlüssel"]  # fmt: skip
# `I reuse ... everywhere`, `I keep reusing ... for everything`, `I use ... on every site`.
REUSE_CUES = ["everywhere", "for everything", "for all my accounts", "on all my accounts", "on every site",
              "for every site", "for all my logins"]  # fmt: skip
SHORT_WORDS = frozenset({"pass", "pw", "pwd", "psk", "auth", "key", "creds", "schlüssel"})


class NameKind(NamedTuple):
    is_password: bool
    is_short: bool  # `pass`, `pw`, `key`, `auth`: only a whole part of a name counts (`DB_PASS`, not `bypass`)


# A secret-looking word found by the anchor pass: start, end, and what kind of word it is.
Name = tuple[int, int, NameKind]


# Parts of a name that say the value is not the secret itself (`private_key_id`, `token_url`, `public_key`).
_NOT_SECRET_LAST_PARTS = frozenset(
    """
id ids name names url uri urls endpoint version length len size file path dir type format alias prefix suffix count
expiry expires expiration ttl timeout header field env var arn region label hint policy mode scope scopes provider
strength min max rule rules enabled required reset description
""".split()  # noqa: SIM905
)  # fmt: skip
_NOT_SECRET_PARTS = frozenset(
    """
public publishable primary foreign sort partition cache idempotency csrf xsrf keyboard monkey turkey hotkey
keystroke keyword keypress keycode keyframe keymap keyring keychain keystore keytab keyset passport passenger
compass bypass passthrough passed passing passive author authority
""".split()  # noqa: SIM905
)  # fmt: skip
_WORD_BEFORE = re.compile(r"([A-Za-z]+)[ ]\Z")
_NAME_PARTS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_NAME_CHARS = re.compile(r"[\w.-]*")
# From the end of a secret-looking name: the operator and the value on the same line.
_ASSIGNED_VALUE = re.compile(
    r"""(?x)
    ["'\]]{0,2}[^\S\n]*(?::=|=>|=|==|!=|:|(?<=["'])[^\S\n]+value[^\S\n]*=)[^\S\n]*(?:@(?="))?
    (?:"(?P<dq>[^"\n]{3,})"|'(?P<sq>[^'\n]{3,})'|`(?P<bq>[^`\n]{3,})`|(?P<bare>[^\s"'`,;<]{3,}))
    """
)
# After a secret word in a sentence, up to its value: `secret is `, `key was now `, `token = `, or a space.
_PROSE_SECRET = re.compile(
    rf"[^\S\n]+(?:(?:{COPULAS}|(?:is|was)[^\S\n]+now|=|:)[^\S\n]+)?[\"'`]?(?P<value>[A-Za-z0-9+/=_.~-]{{16,}}?)"
    r"[\"'`]?[.,;:!?)]*(?=\s|\Z)"
)
_XML_VALUE = re.compile(r">(?P<bare>[^<\n]{3,})</")
_FLAG_VALUE = re.compile(r"[^\S\n]+(?:\"(?P<dq>[^\"\n]+)\"|'(?P<sq>[^'\n]+)'|(?P<bare>[^\s\"'-][^\s\"']*))")
# Words after which a prose password comes, up to the value: `password is now`, `password for the NAS is`,
# `passphrase to`, `password's`, `pass -`.
_PROSE_VALUE = re.compile(
    rf"""(?xi)
    (?:'s|[^\S\n]+{COPULAS}(?:[^\S\n]+(?:now|still|just|set[^\S\n]+to|always))?(?=\s)
      |[^\S\n]+(?:for|für|pour|para|per|voor|of|du|de|des|del|della|dello|van|vom|von)[^\S\n]+
        (?:[\w.@'-]+[^\S\n]+){{0,3}}?[\w.@'-]+(?:[^\S\n]+{COPULAS}(?=\s)|[^\S\n]*[:=-])
      |[^\S\n]+\w+[^\S\n]+{FOREIGN_COPULAS}(?=\s)      # `la contraseña nueva es`, `das neue Passwort ist`
      |[^\S\n]+(?:to|now|changed[^\S\n]+to|set[^\S\n]+to|reset[^\S\n]+to)(?=\s))?
    [^\S\n]*(?:-(?=\s))?[^\S\n]*(?P<value>[^\s]+)
    """
)
_FOREIGN_COPULA = re.compile(rf"(?i)(?<!\w){FOREIGN_COPULAS}(?!\w)")
# `the same password, <value>, everywhere`: a value set off by commas right after the password word.
_APPOSITION = re.compile(r",[^\S\n]*(?P<value>[^\s,]{6,64}),")
# `I reuse <value> everywhere`, `I keep using <value> everywhere`: read backwards from `everywhere`.
_REUSED = re.compile(
    r"(?i)(?:re)?us(?:e|es|ed|ing)[^\S\n]+(?P<same>the[^\S\n]+same[^\S\n]+)?(?P<value>\S+)[^\S\n]+(?:almost[^\S\n]+)?\Z"
)
_OWNER_BEFORE = re.compile(r"(?i)[^\S\n](?:is|as)[^\S\n]+(?:my|the|our|your|a)[^\S\n]+(?:\w+[^\S\n]+)?\Z")
_VALUE_BEFORE = re.compile(r"(?P<value>\S+)[^\S\n]+(?:is|as)[^\S\n]+(?:my|the|our|your|a)[^\S\n]+(?:\w+[^\S\n]+)?\Z")
# `is Summer2022! a strong password?`, `would <value> be a good enough password`: a value asked about.
_ASKED_BEFORE = re.compile(r"(?P<value>[^\s\"'`]\S*)[^\S\n]+(?:be[^\S\n]+)?an?[^\S\n]+(?:[\w-]+[^\S\n]+){0,3}\Z")
_CREDENTIAL_CONTEXT = re.compile(
    r"(?i)\b(?:user(?:name)?|login|account|admin|e-?mail|apple[^\S\n]+id|wi-?fi|ssid|network|router|id)\b|@"
)
_QUOTED = re.compile(r"\"[^\"\n]{1,100}\"|'[^'\n]{1,100}'|`[^`\n]{1,100}`")
_PAIRS = {'"': '"', "'": "'", "`": "`", "(": ")", "[": "]", "{": "}", "<": ">"}
_SYMBOLS = re.compile(r"[^\w\s.'-]")
_PASSPHRASE = re.compile(r"[a-z]+(?:([-_.])[a-z]+)(?:\1[a-z]+)+", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+")
_DOTTED_PASSPHRASE = re.compile(r"[A-Za-z]{3,}(?:[._-][A-Za-z]{3,})+[._-]?\d{1,4}")
_DIGITS = re.compile(r"\d{4,}")
_NON_SPACES = re.compile(r"\S*")
# Words that follow `password` in sentences about passwords rather than before one.
_STOPWORDS = frozenset(
    """
a about above after again against all also always am an and any are as at be because been before being below
between both but by can cannot could did do does doing down during each either else even ever every few for from
further had has have having he her here hers him his how i if in into is it its just least less like made make
many may me might mine more most must my near need needs never new next no nor not now of off often old on once
one only or other our out over own please same set she should since so some still such than that the their them
then there these they this those though through to too under until up upon us use used using very via was we
were what when where which while who whom why will with within without would yet you your
reset manager managers field fields policy policies protected protection required requirement requirements expired
expires expiry change changed changes changing incorrect correct wrong invalid valid weak strong strength length
long short empty blank hint hints prompt prompts page screen form dialog box link links email mail sent reset
recovery recover forgot forgotten again stored saved save saving storage vault hash hashed hashes hashing encrypted
encryption plain plaintext text mismatch match matches matching confirmation confirm confirmed update updated
updates rotation rotate rotated generator generated generate login logins sign signin signup input entry
entered enter typing typed type works worked working fails failed failure error errors check checks checked
rule rules complexity special characters character chars letters numbers digits symbols case sensitive
protected-mode authentication auth based less-secure secure secured insecure leaked breach breached compromised
manager's everywhere somewhere nowhere anywhere something nothing anything everything here there yes okay ok
configured shown printed written displayed listed located disabled enabled missing visible
""".split()  # noqa: SIM905
)  # fmt: skip
# A command line ends at a newline or a shell operator written apart (`| grep`, `&& make`), not at a `&`
# inside a password.
_LINE_END = re.compile(r"\n|\s(?:\|\|?|;|&&?)(?=\s|\Z)|\Z")
# Commands whose flags carry a password: the flag pattern, matched on the rest of the command line (only when
# the line holds the flag's letters at all, which most `curl` lines do not).
_COMMAND_FLAGS = {
    **dict.fromkeys(["mysql", "mysqldump", "mysqladmin", "mysqlimport", "mariadb", "mariadb-dump"],
                    r"(?<!\S)-p(?P<glued>\S+)"),
    "sshpass": r"(?<!\S)-p[^\S\n]*(?P<glued>\S+)",
    "redis-cli": r"(?<!\S)-a[^\S\n]+(?P<glued>\S+)",
    "login": r"(?<!\S)-p[^\S\n]+(?P<glued>\S+)",  # docker / podman / helm registry login
    **dict.fromkeys(["mongo", "mongosh", "mongodump", "mongorestore", "mongoexport", "mongoimport"],
                    r"(?<!\S)-p[^\S\n]+(?P<glued>\S+)"),
    **dict.fromkeys(["sqlcmd", "bcp", "ipmitool"], r"(?<!\S)-P[^\S\n]*(?P<glued>\S+)"),
    "curl": r"(?<!\S)(?:-u|--user)(?:[^\S\n]+|=)['\"]?[^:\s'\"]+:(?P<glued>[^\s'\"]+)",
    "smbclient": r"(?<!\S)-U[^\S\n]*[^%\s]+%(?P<glued>\S+)",
    "sudo": r"(?<!\S)-S(?:[^\S\n]+<<<|[^\S\n]+\S+[^\S\n]+<<<)[^\S\n]*(?P<glued>\S+)",  # sudo -S <<< "pw" ...
}  # fmt: skip
COMMANDS = sorted(_COMMAND_FLAGS)
_FLAG_LETTERS = {
    **dict.fromkeys(COMMANDS, "-p"), "smbclient": "-U", "sqlcmd": "-P", "bcp": "-P", "ipmitool": "-P",
    "redis-cli": "-a", "curl": "-u", "sudo": "-S",
}  # fmt: skip
# Commands that read a password from their standard input, and the flag that says so: `echo pw | sudo -S ...`,
# `echo pw | docker login -u me --password-stdin`.
_STDIN_FLAGS = {"sudo": "-S", "login": "--password-stdin"}
# `echo options | sudo -S tee /etc/...`: what is piped in is the file's content, not a password.
_WRITES_ITS_INPUT = re.compile(r"[^\n]*?-S[^\S\n]+(?:-\S+[^\S\n]+)*tee(?!\S)")
_COMMAND_REACH = 300
_EXPANSION_OR_SETTING = re.compile(r"\A['\"]?\$|=")
_PIPED_VALUE = re.compile(
    r"(?:echo|printf)(?:[^\S\n]+-[ne]+)*[^\S\n]+(?P<glued>'[^'\n]+'|\"[^\"\n]+\"|[^\s|]+)[^\S\n]*\|[^\S\n]*"
    r"(?:(?:docker|podman|nerdctl|helm[^\S\n]+registry)[^\S\n]+)?\Z"
)
_FLAG_PATTERNS = {command: re.compile(flag) for command, flag in _COMMAND_FLAGS.items()}
_BEARER = re.compile(r"(?i)(?<![\w-])bearer\s+(?P<value>[A-Za-z0-9._~+/-]{16,}=*)")
_BASIC = re.compile(r"(?i)(?<![\w-])basic\s+(?P<value>[A-Za-z0-9+/]{8,}={0,2})(?![\w+/=])")
_JWT_START = "eyJ"
# `wifi key`, `WPA2 key`, `network key`: a key word after one of these names a password, not an API key.
_NETWORK_KEY_BEFORE = re.compile(r"(?i)(?:wi-?fi|wlan|wpa2?|wpa3|wep|network|netzwerk)[ _-]?\Z")


def named_secrets(text: str, names: list[Name], reuse_cues: list[int], known: set[Span]) -> list[Span]:
    """Secrets found from a secret-looking word, in one pass over the words:

    - values assigned to a name holding it (`=`, `:`, `=>`, `value=`, XML elements): a PASSWORD where a
      password word is in the name (`DB_PASSWORD`), else an API_KEY where the value looks random
      (`SECRET_KEY`, `apiToken`); a value already found as a provider key (`known`) is not measured again;
    - the next word after a password flag (`--password VALUE`, `-Password VALUE`, `--db-pass VALUE`);
    - passwords in sentences: after a password word used as a word (`password Bill$Yeah4484`, `the wifi
      password is ...`, `pass inside-i-stage-tonight`), before `as my password`, and in `I reuse ... everywhere`.
    """
    found: list[Span] = []
    grouped: dict[int, tuple[int, bool]] = {}  # each name once (`API_KEY` holds `API_KEY` and `KEY`), by its end
    name_end = _NAME_CHARS.match
    for start, word_end, (is_password, is_short) in names:
        if is_short and not _whole_part(text, start, word_end):
            continue
        if not is_password and is_short and _NETWORK_KEY_BEFORE.search(text, max(0, start - 8), start):
            is_password = True
        end = name_end(text, word_end).end()
        first = grouped.get(end)
        if first is None or (is_password and not first[1]):
            grouped[end] = (first[0] if first else start, is_password)
        if not is_password:
            if text[end : end + 1] == " " and (span := _prose_secret(text, start, end, known)):
                found.append(span)  # `my secret key is <random>`, `our Twilio auth token is <random>`
            continue
        # Cheap character tests first: most password words are part of a name (`DB_PASSWORD=`).
        before, after = text[start - 1 : start], text[word_end : word_end + 1]
        if before == "-" and after in (" ", "\t"):
            found += _flag_value(text, start, word_end)
        elif not (before.isalnum() or before in ("_", "-", ".") or after.isalpha()):
            found += _prose_passwords(text, start, word_end)
    for end, (start, is_password) in grouped.items():
        if span := _assigned(text, start, end, is_password, known):
            found.append(span)
    for pos in reuse_cues:
        match = _REUSED.search(text, max(0, pos - 60), pos)
        if match is None:
            continue
        # After `everywhere` a plain word is a password (`I reuse tangerine everywhere`); after the looser cues
        # (`I use emacs for everything`) or `the same` only a password-shaped value is.
        plain_word_allowed = text.startswith("everywhere", pos) and match.group("same") is None
        word = "" if plain_word_allowed else "reuse"  # `I reuse the same charger everywhere` names a thing
        if span := _prose_value(text, match.start("value"), word, False, ""):
            found.append(span)
    return found


def _assigned(text: str, pos: int, name_end: int, is_password: bool, known: set[Span]) -> Span | None:
    match = _ASSIGNED_VALUE.match(text, name_end)
    if match is None and "<" in text[max(0, pos - 40) : pos]:
        match = _XML_VALUE.match(text, name_end) if text[_name_start(text, pos) - 1 : pos][:1] == "<" else None
    if match is None or not _secret_name(text, pos, name_end):
        return None
    return _assigned_value(text, match, is_password, known)


def _prose_secret(text: str, pos: int, end: int, known: set[Span]) -> Span | None:
    """A random value after a secret word of a sentence (`the client secret is ...`, `datadog api key ...`): an
    API_KEY when it is long, mixed and varied (`high_entropy`), so `the key is to be consistent` stays. A value
    already found as a key (`known`: `api key sk_live_...`) is not measured again."""
    match = _PROSE_SECRET.match(text, end)
    if match is None:
        return None
    span = (match.start("value"), match.end("value"), "API_KEY")
    if span in known or not _secret_name(text, pos, end):
        return None
    value = match.group("value")
    if not high_entropy(value) or is_placeholder(value) or looks_like_code(value):
        return None
    return span


def _flag_value(text: str, pos: int, end: int) -> list[Span]:
    """`--password VALUE`: the word at `pos..end`, after a dash and before a space, is a flag's name."""
    if text[_name_start(text, pos)] != "-":
        return []
    match = _FLAG_VALUE.match(text, end)
    span = _value_span(match) if match else None
    return [(*span, "PASSWORD")] if span and not is_placeholder(text[span[0] : span[1]]) else []


def _prose_passwords(text: str, pos: int, end: int) -> list[Span]:
    """After the password word at `pos..end` used as a word of a sentence (also set off by commas), and before
    `as my password`."""
    word = text[pos:end].lower()
    if word not in _PROSE_WORDS:
        return []
    found = []
    match = _PROSE_VALUE.match(text, end)
    if match is not None and match.start("value") > end:
        between = text[end : match.start("value")]
        # A plain word is a password after English grammar (`password is tangerine`); after another language's
        # copula (`Das Passwort ist abgelaufen`) only a password-shaped value is, as the stop words are English.
        strong_grammar = between.strip() != "" and _FOREIGN_COPULA.search(between) is None
        context = text[max(0, text.rfind("\n", 0, pos) + 1, pos - 80) : pos]
        if span := _prose_value(text, match.start("value"), word, strong_grammar, context):
            found.append(span)
    # Set off by commas, only a password-shaped value counts (`password, username, and email` are field names).
    apposition = _APPOSITION.match(text, end) if text[end : end + 1] == "," else None
    if apposition and password_shaped(value := apposition.group("value")) and not is_placeholder(value):
        found.append((apposition.start("value"), apposition.end("value"), "PASSWORD"))
    window = text[max(0, pos - 30) : pos]
    if (" is " in window or " as " in window) and _OWNER_BEFORE.search(text, max(0, pos - 30), pos):
        before = _VALUE_BEFORE.search(text, max(0, pos - 60), pos)
        if before and (span := _prose_value(text, before.start("value"), word, True, "")):
            found.append(span)
    elif " a" in window and (asked := _ASKED_BEFORE.search(text, max(0, pos - 60), pos)):
        value = asked.group("value")
        if strongly_shaped(value) and not is_placeholder(value):  # `is Summer2022! a strong password?`
            found.append((asked.start("value"), asked.end("value"), "PASSWORD"))
    return found


def command_passwords(text: str, commands: list[tuple[int, int, str]]) -> list[Span]:
    """Passwords given to a command on its line (`mysql -u root -pS3cret`, `sshpass -p '...'`, `curl -u a:b`),
    also piped into one that reads it from its input (`echo '...' | sudo -S apt update`)."""
    found = []
    for pos, end, command in commands:
        if pos > 0 and not (text[pos - 1].isspace() or text[pos - 1] in "($`|;&/'\""):
            continue
        if end < len(text) and not text[end].isspace():
            continue
        # A command line is read to its end, or _COMMAND_REACH characters: a long line holding many commands
        # costs each of them the same bounded work.
        newline = text.find("\n", end, end + _COMMAND_REACH)
        reach = newline if newline != -1 else min(len(text), end + _COMMAND_REACH)
        rest_of_line = text[end:reach]
        matches = []
        if (
            command in _STDIN_FLAGS
            and _STDIN_FLAGS[command] in rest_of_line
            and not _WRITES_ITS_INPUT.match(rest_of_line)
        ):
            line_start = max(text.rfind("\n", max(0, pos - _COMMAND_REACH), pos) + 1, pos - _COMMAND_REACH)
            piped = _PIPED_VALUE.search(text, max(0, line_start), pos)
            # `echo "$(cat ~/.pw)" | ...`, `echo 'vm.swappiness=10' | ...`: an expansion or a setting, not a password.
            if piped is not None and not _EXPANSION_OR_SETTING.search(piped.group("glued")):
                matches.append(piped)
        if _FLAG_LETTERS[command] in rest_of_line:
            matches += _FLAG_PATTERNS[command].finditer(text, end, _LINE_END.search(text, end, reach).start())
        for match in matches:
            start, stop = match.span("glued")
            value = text[start:stop]
            if value[:1] in "'\"" and len(value) > 2 and value[-1] == value[0]:
                start, stop, value = start + 1, stop - 1, value[1:-1]
            if not is_placeholder(value) and not value.startswith("-"):
                found.append((start, stop, "PASSWORD"))
    return found


def bearer_tokens(text: str, anchors: list[int]) -> list[Span]:
    """`Bearer <random>` as API_KEY (a JWT is left to its own detector); `Basic <base64 of user:pass>` as PASSWORD."""
    found = []
    for pos in anchors:
        if (match := _BEARER.match(text, pos)) is not None:
            value = match.group("value")
            if not value.startswith(_JWT_START) and high_entropy(value):
                found.append((match.start("value"), match.end("value"), "API_KEY"))
        elif (match := _BASIC.match(text, pos)) is not None and _holds_user_and_password(match.group("value")):
            found.append((match.start("value"), match.end("value"), "PASSWORD"))
    return found


def _name_start(text: str, pos: int) -> int:
    """Where the name (`[\\w.-]` characters) holding the keyword at `pos` starts."""
    return pos - _NAME_CHARS.match(text[max(0, pos - 40) : pos][::-1]).end()


def _secret_name(text: str, pos: int, name_end: int) -> bool:
    """The whole name around an anchor (`private_key_id`, `token_url`, `publishable key`) names a secret, not
    its id, URL or length. A word written before the name counts as a part of it (`public key: ...`)."""
    start = _name_start(text, pos)
    if not _names_a_secret(text[start:name_end]):
        return False
    if text[start - 1 : start] != " ":
        return True
    previous = _WORD_BEFORE.search(text, max(0, start - 16), start)
    return previous is None or previous.group(1).lower() not in _NOT_SECRET_PARTS


@lru_cache(maxsize=4096)
def _names_a_secret(name: str) -> bool:
    """Names repeat (`DB_PASSWORD`, `SECRET_KEY`), so the verdict on each is kept."""
    parts = [part.lower() for part in _NAME_PARTS.findall(name)]
    return bool(parts) and parts[-1] not in _NOT_SECRET_LAST_PARTS and _NOT_SECRET_PARTS.isdisjoint(parts)


def _whole_part(text: str, pos: int, end: int) -> bool:
    """A short keyword (`pass`, `key`, `pw`) is a whole part of its name: `DB_PASS`, `dbPass`, `api-key`."""
    before, after = text[pos - 1 : pos], text[end : end + 1]
    if before.isalnum() and not (before.islower() and text[pos].isupper()):
        return False
    return not after.isalpha() or (after.isupper() and text[end - 1].islower())


def _assigned_value(text: str, match: re.Match[str], is_password: bool, known: set[Span]) -> Span | None:
    group = match.lastgroup or "bare"
    start, value = match.start(group), match.group(group)
    if group == "bare":  # a quoted value is a literal; a bare one may be code
        if match.end(group) < len(text) and text[match.end(group)] in "[(\"'":
            return None  # `os.environ['DB_PASSWORD']`, `get("pw")`: code
        # `f(password=pw)`: without the call's closing bracket the value is a variable, not a secret.
        unbracketed = value.rstrip(")]}")
        if unbracketed != value and is_placeholder(unbracketed):
            return None
        if looks_like_code(unbracketed):
            return None
    if is_placeholder(value):
        return None
    end = start + len(value)
    if is_password:
        return (start, end, "PASSWORD")
    if (start, end, "API_KEY") not in known and high_entropy(value):
        return (start, end, "API_KEY")
    return None


def _value_span(match: re.Match[str]) -> tuple[int, int] | None:
    group = next((g for g in ("dq", "sq", "bare") if match.group(g) is not None), None)
    return match.span(group) if group else None


# `key` (`Schlüssel`) reaches the prose reading only as a network key (`the wifi key is ...`).
_PROSE_WORDS = frozenset({"password", "passwd", "pwd", "pw", "pass", "passphrase", "passcode", "psk", "key",
                          "passwort", "kennwort", "wachtwoord", "mot de passe", "contraseña", "contrasena", "senha",
                          "palavra-passe", "schlüssel"})  # fmt: skip


def _prose_value(text: str, start: int, word: str, strong_grammar: bool, context: str) -> Span | None:
    """The value at `start` with surrounding quotes and trailing punctuation off, if it is a password here."""
    end = _NON_SPACES.match(text, start).end()
    if text[start] in "\"'`" and (quoted := _QUOTED.match(text, start)):
        end = quoted.end()  # `"Winter 2024!"`: a quoted password may hold spaces
    raw_end = end
    while end > start and text[end - 1] in ",;:":
        end -= 1
    closer = _PAIRS.get(text[start])
    last = end - 1
    while last > start + 1 and text[last] in ".!?":
        last -= 1
    if closer is not None and text[last] == closer and last > start + 1:
        start, end = start + 1, last  # `"hunter2"`, `(hunter2).`: the quotes or brackets are not part of it
    value = text[start:end]
    if len(value) < 4 or is_placeholder(value) or looks_like_code(text[start:raw_end]) or "://" in value:
        return None
    credential_context = bool(context) and _CREDENTIAL_CONTEXT.search(context) is not None
    weak_cue = word == "pass"
    plain = value.rstrip(".!?")
    if password_shaped(value) or (_PASSPHRASE.fullmatch(plain) and len(plain) >= 10):
        return (start, end, "PASSWORD")
    if _DIGITS.fullmatch(plain):
        return (start, end, "PASSWORD") if strong_grammar or credential_context else None
    if _WORD.fullmatch(plain) and plain not in _STOPWORDS and len(plain) >= 4:
        accepted = (strong_grammar and not weak_cue) or credential_context or word == ""
        return (start, end, "PASSWORD") if accepted else None
    return None


def password_shaped(value: str) -> bool:
    """At least six characters mixing two of: lower case, upper case past the first letter, digits, symbols."""
    if len(value) < 6:
        return False
    core = value.rstrip(".!?")
    # Counted cheapest first, and only until two are found (this runs for every value after a password word).
    classes = (core.upper() != core) + (core[1:].lower() != core[1:])
    if classes < 2:
        classes += any(map(str.isdigit, core))
    if classes < 2:
        classes += _SYMBOLS.search(value) is not None
    return classes >= 2 and not core.isdigit()


def strongly_shaped(value: str) -> bool:
    """Password-shaped and more than a brand or product name is (`Microsoft365`, `Office2019`, `PowerShell` are
    not): a symbol, two capitals past the first letter, a capital past it with a digit, or words joined by dots,
    dashes or underscores with a number (`marble.velvet.97`)."""
    if _DOTTED_PASSPHRASE.fullmatch(value):
        return True
    if not password_shaped(value):
        return False
    if _SYMBOLS.search(value):
        return True
    capitals = sum(map(str.isupper, value[1:]))
    return capitals >= 2 or (capitals == 1 and any(map(str.isdigit, value)))


def _holds_user_and_password(value: str) -> bool:
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    user, colon, password = decoded.partition(":")
    return bool(colon and user and password) and decoded.isprintable()
