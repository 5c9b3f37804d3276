"""Provider key formats: the documented shape of each provider's secrets (prefix, alphabet, length), with
coverage that follows the public rule sets (gitleaks' rules, trufflehog's detectors, detect-secrets'
plugins) provider by provider, plus the secrets known by their neighbours rather than a prefix: an AWS
secret access key written beside its `AKIA...` id, Telegram and Discord bot tokens.

Each entry is found from its literal prefix (an anchor of the Aho-Corasick pass) and matched there; a
few formats put their literal after the random part (`...-us21` for Mailchimp, `...Q~...` for Azure AD
client secrets), and are matched from a fixed number of characters before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from milton_lora.redact.labels import Span
from milton_lora.redact.validators import character_classes, looks_random, shannon_entropy


@dataclass(frozen=True)
class KeyFormat:
    """Where a format's anchors are, how far before the anchor the key starts, and its full pattern."""

    anchors: tuple[str, ...]
    pattern: re.Pattern[str]
    back: int = 0


def _key(anchors: str, body: str, back: int = 0) -> KeyFormat:
    # Not preceded by a character of the key alphabet: `api-key-...` holds no Mailgun key.
    return KeyFormat(tuple(anchors.split()), re.compile(rf"(?<![\w-]){body}(?![\w-])"), back)


def _prefixed(anchors: str, body: str) -> KeyFormat:
    # The key runs to the end of its alphabet; what follows is not checked (`sk-...` glued to a quote or word).
    return KeyFormat(tuple(anchors.split()), re.compile(rf"(?<![\w-]){body}"))


KEY_FORMATS: list[KeyFormat] = [
    # AI providers
    _prefixed("sk-", r"sk-(?:ant-|proj-|svcacct-|admin-|or-v1-)?[A-Za-z0-9_-]{20,}"),
    _prefixed("hf_ api_org_", r"(?:hf_|api_org_)[A-Za-z0-9]{30,}"),
    _prefixed("pplx-", r"pplx-[A-Za-z0-9]{40,}"),
    _prefixed("gsk_", r"gsk_[A-Za-z0-9]{48,}"),
    _prefixed("xai-", r"xai-[A-Za-z0-9]{60,}"),
    _prefixed("r8_", r"r8_[A-Za-z0-9]{37}"),
    _prefixed("lsv2_", r"lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}"),
    _prefixed("tvly-", r"tvly-[A-Za-z0-9]{32,}"),
    # Code hosting, CI and registries
    _prefixed("ghp_ gho_ ghu_ ghs_ ghr_", r"gh[pousr]_[A-Za-z0-9]{30,}"),
    _prefixed("github_pat_", r"github_pat_\w{22,}"),
    _prefixed(
        "glpat- glptt- gldt- glrt- glsoat- glcbt- glffct- glft- glimt- glagent- gloas-",
        r"gl(?:pat|ptt|dt|rt|soat|cbt|ffct|ft|imt|agent|oas)-[\w-]{20,}(?:\.[0-9a-z]{2,12})?",
    ),
    _prefixed("GR1348941", r"GR1348941[\w-]{20,}"),
    _prefixed("ATBB", r"ATBB[A-Za-z0-9]{32,}"),
    _prefixed("npm_", r"npm_[A-Za-z0-9]{36}"),
    _prefixed("pypi-AgEIcHlwaS5vcmc", r"pypi-AgEIcHlwaS5vcmc[\w-]{50,}"),
    _prefixed("rubygems_", r"rubygems_[a-f0-9]{48}"),
    _prefixed("CLOJARS_", r"CLOJARS_[a-z0-9]{60}"),
    _prefixed("dckr_pat_", r"dckr_pat_[\w-]{27,}"),
    _prefixed("AKCp cmVmd", r"(?:AKCp[A-Za-z0-9]{69}|cmVmd[A-Za-z0-9]{59})"),
    _prefixed("bkua_", r"bkua_[a-f0-9]{40}"),
    _prefixed("CCIPAT_", r"CCIPAT_[A-Za-z0-9]{22}_[a-f0-9]{40}"),
    _prefixed("sgp_", r"sgp_(?:[a-fA-F0-9]{16}_|local_)?[a-fA-F0-9]{40}"),
    # Cloud and infrastructure
    _key("AKIA ASIA ABIA ACCA A3T", r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}"),
    _prefixed("ABSK", r"ABSK[A-Za-z0-9+/]{100,}={0,2}"),
    _prefixed("AIza", r"AIza[\w-]{35}"),
    _prefixed("GOCSPX-", r"GOCSPX-[\w-]{28}"),
    _prefixed("ya29.", r"ya29\.[\w-]{30,}"),
    _prefixed("dop_v1_ doo_v1_ dor_v1_", r"do[opr]_v1_[a-f0-9]{64}"),
    _prefixed("dapi", r"dapi[a-f0-9]{32}(?:-\d)?"),
    _prefixed("HRKU-", r"HRKU-[\w-]{40,}"),
    _prefixed("hvs. hvb.", r"hv[sb]\.[\w-]{90,}"),
    _prefixed("pul-", r"pul-[a-f0-9]{40}"),
    _prefixed("LTAI", r"LTAI[A-Za-z0-9]{20}"),
    _prefixed("fo1_ fm1a_ fm1r_ fm2_", r"(?:fo1_[\w-]{43}|fm[12][ar]?_[A-Za-z0-9+/]{100,}={0,3})"),
    _prefixed("pscale_tkn_ pscale_pw_ pscale_oauth_", r"pscale_(?:tkn|pw|oauth)_[\w.=-]{32,64}"),
    _prefixed("dt0c01.", r"dt0c01\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64}"),
    _prefixed("sha256~", r"sha256~[\w-]{43}"),
    _prefixed("v1.0-", r"v1\.0-[a-f0-9]{24}-[a-f0-9]{146}"),
    _prefixed("tk-us-", r"tk-us-[\w-]{48}"),
    _prefixed("ico-", r"ico-[A-Za-z0-9]{32}"),
    _prefixed("pnu_", r"pnu_[A-Za-z0-9]{36}"),
    _prefixed("sbp_", r"sbp_[a-f0-9]{40}"),
    _prefixed("rnd_", r"rnd_[A-Za-z0-9]{32}"),
    _prefixed("nfp_", r"nfp_[A-Za-z0-9]{36}"),
    _prefixed("AGE-SECRET-KEY-1", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"),
    _key(".atlasv1.", r"[A-Za-z0-9]{14}\.atlasv1\.[\w=-]{60,70}", back=14),
    _key("Q~", r"[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}", back=4),
    # Messaging, payments, SaaS
    _prefixed("xoxa- xoxb- xoxp- xoxo- xoxr- xoxs- xoxe", r"xox(?:[abposr]-|e\.xox[bp]-|e-)[A-Za-z0-9-]{10,}"),
    _prefixed("xapp-", r"xapp-\d-[A-Za-z0-9-]{20,}"),
    _prefixed("sk_live_ rk_live_ sk_test_ rk_test_ sk_prod_", r"(?:sk|rk)_(?:live|test|prod)_[A-Za-z0-9]{16,}"),
    _prefixed("whsec_", r"whsec_[A-Za-z0-9+/=]{24,}"),
    _key("SG.", r"SG\.[\w-]{20,24}\.[\w-]{39,50}"),
    _key("SK", r"SK[0-9a-fA-F]{32}"),
    _key("key-", r"key-[a-f0-9]{32}"),
    _key("-us", r"[a-f0-9]{32}-us\d{1,2}", back=32),
    _prefixed("EAAA sq0atp- sq0csp-", r"(?:EAAA[\w-]{22,60}|sq0(?:atp|csp)-[\w-]{22,43})"),
    _prefixed("EAAB EAAC EAAD EAAM", r"EAA[BCDM][A-Za-z0-9]{80,}"),
    _prefixed("xkeysib- xsmtpsib-", r"x(?:keysib|smtpsib)-[a-f0-9]{64}-[A-Za-z0-9]{16}"),
    _prefixed("lin_api_", r"lin_api_[A-Za-z0-9]{40}"),
    _prefixed("PMAK-", r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}"),
    _prefixed("NRAK- NRII- NRJS-", r"NR(?:AK|II|JS)-[A-Za-z0-9-]{19,32}"),
    _prefixed("sntryu_ sntrys_", r"sntry[us]_[\w+/=]{40,}"),
    _prefixed("ntn_", r"ntn_\d{11}[A-Za-z0-9]{30,}"),
    _prefixed("dp.pt. dp.st. dp.sa. dp.ct.", r"dp\.(?:pt|st|sa|ct)\.[A-Za-z0-9]{40,}"),
    _prefixed(
        "glc_ glsa_ eyJrIjoi", r"(?:glc_[A-Za-z0-9+/]{32,}={0,2}|glsa_[A-Za-z0-9]{32}_[a-fA-F0-9]{8}|eyJrIjoi[\w]{70,})"
    ),
    _prefixed("ATATT", r"ATATT3[\w=-]{100,}"),
    _prefixed("rdme_", r"rdme_[a-z0-9]{70}"),
    _prefixed("EZAK EZTK", r"EZ[AT]K[A-Za-z0-9]{54}"),
    _prefixed("duffel_test_ duffel_live_", r"duffel_(?:test|live)_[\w=-]{43}"),
    _prefixed("fio-u-", r"fio-u-[\w=-]{64}"),
    _prefixed("shpat_ shpca_ shppa_ shpss_", r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
    _prefixed("shippo_live_ shippo_test_", r"shippo_(?:live|test)_[a-fA-F0-9]{40}"),
    _prefixed("sm_aat_ sm_pat_ sm_sat_", r"sm_(?:aat|pat|sat)_[A-Za-z0-9]{16}"),
    _prefixed("tfp_", r"tfp_[\w.=-]{59}"),
    _prefixed("p8e-", r"p8e-[A-Za-z0-9]{32}"),
    _prefixed("pat", r"pat[A-Za-z0-9]{14}\.[a-f0-9]{64}"),
    _prefixed("AQVN", r"AQVN[\w-]{35,38}"),
    _prefixed("sk.eyJ", r"sk\.eyJ[\w-]{20,}\.[\w-]{20,}"),
    _key("_mmk", r"[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk", back=36),
]

# A Discord bot token starts with the base64 of its bot's numeric id, so with one of these pairs, and it
# starts a token: the anchors hold the character before it, which keeps `NODE_ENV` and JWT bodies out.
DISCORD_STARTS = tuple(
    delimiter + pair for pair in ("MT", "Mj", "Mz", "ND", "NT", "Nj", "Nz", "OD", "OT") for delimiter in " \t\n'\"`=:("
)
_DISCORD = re.compile(r"(?<![\w-])[MNO][\w-]{23,27}\.[\w-]{6,7}\.[\w-]{27,40}(?![\w-])")
# A Telegram bot token is the bot's numeric id, a colon and 35 characters that start with `AA`.
TELEGRAM_ANCHOR = ":AA"
_TELEGRAM_SECRET = re.compile(r":AA[\w-]{31,35}(?![\w-])")
# An AWS secret access key: 40 characters of base64 near its key id, as the credentials file and consoles show it.
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=])")
_AWS_SECRET_REACH = 200


def provider_keys(text: str, anchors: list[tuple[int, int, KeyFormat]]) -> list[Span]:
    """Keys found from their anchors, each matched against its format and refused if it is a placeholder."""
    found = []
    for pos, _, key_format in anchors:
        start = pos - key_format.back
        if start < 0:
            continue
        match = key_format.pattern.match(text, start)
        if match and looks_random(match.group()):
            found.append((match.start(), match.end(), "API_KEY"))
    return found


def discord_tokens(text: str, anchors: list[int]) -> list[Span]:
    found = []
    for delimiter in anchors:
        match = _DISCORD.match(text, delimiter + 1)
        if match and character_classes(match.group()) == 3:
            found.append((match.start(), match.end(), "API_KEY"))
    return found


def telegram_tokens(text: str, anchors: list[int]) -> list[Span]:
    found = []
    for pos in anchors:
        start = pos
        while start > 0 and pos - start < 16 and text[start - 1].isdigit():
            start -= 1
        secret = _TELEGRAM_SECRET.match(text, pos)
        if secret and pos - start >= 5 and (start == 0 or not text[start - 1].isalnum()):
            found.append((start, secret.end(), "API_KEY"))
    return found


def aws_secrets_beside(text: str, key_ids: list[Span]) -> list[Span]:
    """Random 40-character base64 values within a few lines of an AWS access key id (`AKIA...`, `ASIA...`)."""
    found = []
    for start, end, _ in key_ids:
        if text[start : start + 4] not in ("AKIA", "ASIA", "ABIA", "ACCA"):
            continue
        lo, hi = max(0, start - _AWS_SECRET_REACH), min(len(text), end + _AWS_SECRET_REACH)
        for match in _AWS_SECRET.finditer(text, lo, hi):
            value = match.group()
            if character_classes(value) == 3 and shannon_entropy(value) >= 4.0:
                found.append((match.start(), match.end(), "API_KEY"))
    return found
