"""Passwords stated in prose with no `password:` key: login pairs, values asked about, reuse, `pw`, `creds`,
`log in with`, `curl --user`, `.netrc` lines, other languages; and the sentences about passwords that stay."""

from __future__ import annotations

import pytest

from redact_cases import assert_kept, assert_redacted

POSITIVES = [
    ("the HBO login is tom.reyes@example.com / Gr4pe!Soda, works on the TV too", "Gr4pe!Soda"),
    ("my Hulu login was anya_k / Cobalt#Fern19", "Cobalt#Fern19"),
    ("I reuse Leader_Investment6211 everywhere, I know", "Leader_Investment6211"),
    ("honestly I keep using Pumpkin.Spice.88 for everything", "Pumpkin.Spice.88"),
    ("I use Quartz$Night40 on every site, should I stop?", "Quartz$Night40"),
    ("is Summer2022! a strong password?", "Summer2022!"),
    ("would Tr1cky_Otter be an ok password for the router", "Tr1cky_Otter"),
    ("pw Hx7!kq92z for the router", "Hx7!kq92z"),
    ("pass is Blue-Cedar-Window-41 btw", "Blue-Cedar-Window-41"),
    ("creds: deploy / Xk2#pLm9Qz", "Xk2#pLm9Qz"),
    ("the creds are backup-bot Rv8$wQ2nZp if cron breaks", "Rv8$wQ2nZp"),
    ("just log in with priya and Mango!Kite77 on the test box", "Mango!Kite77"),
    ("sign in as ops-admin / Lq9#Tz4&Wv", "Lq9#Tz4&Wv"),
    ("curl --user ci-bot:Ghx82kLq!v https://jenkins.example.org/job/x", "Ghx82kLq!v"),
    ("machine nas.home.arpa login admin password Fj3!kw9Pz", "Fj3!kw9Pz"),
    ("Das Passwort vom WLAN lautet Sonnen!Blume42", "Sonnen!Blume42"),
    ("le mot de passe de la box c'est Fromage#Bleu7", "Fromage#Bleu7"),
    ("la contraseña antigua era Playa_Sol2019", "Playa_Sol2019"),
    ("la password del NAS è Gatto!Nero55", "Gatto!Nero55"),
    ("het wachtwoord van de router is Fiets#Regen3", "Fiets#Regen3"),
]
NEGATIVES = [
    "is this a strong password?",
    "would a longer passphrase be a better password?",
    "I reuse the same charger everywhere",
    "I use emacs for everything",
    "log in with your email and password",
    "sign in with Google and Microsoft365",
    "just log in with SSO and PowerShell works",
    "my pass for the gym expired",
    "the creds are in the vault, ask Dana",
    "Das Passwort ist abgelaufen",
    "le mot de passe de la box est trop court",
]


@pytest.mark.parametrize(("text", "value"), POSITIVES)
def test_password_in_prose_is_redacted(text: str, value: str) -> None:
    assert_redacted(text, value, "PASSWORD")


@pytest.mark.parametrize("text", NEGATIVES)
def test_sentence_about_passwords_is_kept(text: str) -> None:
    assert_kept(text)
