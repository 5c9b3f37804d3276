"""Published facts the evaluation corpus is assembled from, written down here by hand from their public sources.

- Test card numbers published by payment processors for sandboxes (Stripe, Adyen, Braintree/PayPal,
  Worldpay testing pages); each is checked with Luhn where the corpus is built, so a typo drops out.
- IBAN structures per country from the SWIFT IBAN registry (BBAN format: `n` digits, `a` capitals,
  `c` capitals or digits), including countries added in recent registry releases.
- Phone regions: libphonenumber's example numbers are read at runtime from `phonenumbers` for these.
- Secret formats, per provider, as documented by the provider and encoded in the public rule sets
  (gitleaks rules, trufflehog detectors, detect-secrets plugins): prefix, alphabet and length. The values
  themselves are generated fresh from these shapes; nothing is copied from those projects.
"""

from __future__ import annotations

import string

PUBLISHED_TEST_CARDS = [
    "4242424242424242", "4000056655665556", "5555555555554444", "2223003122003222", "5200828282828210",
    "5105105105105100", "378282246310005", "371449635398431", "6011111111111117", "6011000990139424",
    "6011981111111113", "3056930009020004", "36227206271667", "3566002020360505", "6200000000000005",
    "4111111111111111", "4005519200000004", "4009348888881881", "4012000033330026", "4012000077777777",
    "4012888888881881", "4217651111111119", "4500600000000061", "2223000048400011", "378734493671000",
    "3530111333300000", "30569309025904", "38520000023237", "5101180000000007", "2222400070000005",
    "370000000000002", "3600666633336666", "6731012345678906", "5500000000000004", "4444333322221111",
    "4917610000000000", "4484070000000000", "5454545454545454", "6759649826438453", "4222222222222",
]  # fmt: skip

# Country: BBAN structure (after the two letters and two check digits).
IBAN_STRUCTURES = {
    "AD": "4n4n12c", "AE": "3n16n", "AL": "8n16c", "AT": "5n11n", "AZ": "4a20c", "BA": "3n3n8n2n", "BE": "3n7n2n",
    "BG": "4a4n2n8c", "BH": "4a14c", "BR": "8n5n10n1a1c", "BY": "4c4n16c", "CH": "5n12c", "CR": "4n14n",
    "CY": "3n5n16c", "CZ": "4n6n10n", "DE": "8n10n", "DK": "4n9n1n", "DO": "4c20n", "EE": "2n2n11n1n",
    "EG": "4n4n17n", "ES": "4n4n1n1n10n", "FI": "3n11n", "FO": "4n9n1n", "FR": "5n5n11c2n", "GB": "4a6n8n",
    "GE": "2a16n", "GI": "4a15c", "GL": "4n9n1n", "GR": "3n4n16c", "GT": "4c20c", "HR": "7n10n",
    "HU": "3n4n1n15n1n", "IE": "4a6n8n", "IL": "3n3n13n", "IQ": "4a3n12n", "IS": "4n2n6n10n", "IT": "1a5n5n12c",
    "JO": "4a4n18c", "KW": "4a22c", "KZ": "3n13c", "LB": "4n20c", "LC": "4a24c", "LI": "5n12c", "LT": "5n11n",
    "LU": "3n13c", "LV": "4a13c", "LY": "3n3n15n", "MC": "5n5n11c2n", "MD": "2c18c", "ME": "3n13n2n",
    "MK": "3n10c2n", "MR": "5n5n11n2n", "MT": "4a5n18c", "MU": "4a2n2n12n3n3a", "NL": "4a10n", "NO": "4n6n1n",
    "PK": "4a16c", "PL": "8n16n", "PS": "4a21c", "PT": "4n4n11n2n", "QA": "4a21c", "RO": "4a16c",
    "RS": "3n13n2n", "SA": "2n18c", "SC": "4a2n2n16n3a", "SE": "3n16n1n", "SI": "5n8n2n", "SK": "4n6n10n",
    "SM": "1a5n5n12c", "ST": "8n11n2n", "SV": "4a20n", "TL": "3n14n2n", "TN": "2n3n13n2n", "TR": "5n1n16c",
    "UA": "6n19c", "VA": "3n15n", "VG": "4a16n", "XK": "4n10n2n",
}  # fmt: skip

# 35 regions whose example numbers (mobile and fixed line) are typed in the corpus.
PHONE_REGIONS = [
    "US", "CA", "GB", "IE", "DE", "AT", "CH", "FR", "BE", "NL", "ES", "PT", "IT", "SE", "NO", "DK", "FI", "PL",
    "CZ", "GR", "TR", "RU", "UA", "IN", "PK", "CN", "JP", "KR", "SG", "AU", "NZ", "BR", "MX", "AR", "ZA", "NG",
    "EG", "AE", "IL",
]  # fmt: skip

ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
DIGITS = string.digits
HEX = "0123456789abcdef"
BASE64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"

# Provider: list of (prefix, [(alphabet, length), ...] pieces joined without separators).
# A piece given as a plain string is literal text.
PROVIDER_FORMATS: dict[str, list[object]] = {
    "openai_project": ["sk-proj-", (URLSAFE, 74), "T3BlbkFJ", (URLSAFE, 74)],
    "openai_legacy": ["sk-", (ALNUM, 20), "T3BlbkFJ", (ALNUM, 20)],
    "openai_svcacct": ["sk-svcacct-", (URLSAFE, 58), "T3BlbkFJ", (URLSAFE, 58)],
    "anthropic": ["sk-ant-api03-", (URLSAFE, 93), "AA"],
    "anthropic_admin": ["sk-ant-admin01-", (URLSAFE, 93), "AA"],
    "github_pat": ["ghp_", (ALNUM, 36)],
    "github_oauth": ["gho_", (ALNUM, 36)],
    "github_app": ["ghs_", (ALNUM, 36)],
    "github_fine_grained": ["github_pat_", (ALNUM, 22), "_", (ALNUM, 59)],
    "gitlab_pat": ["glpat-", (URLSAFE, 20)],
    "gitlab_runner": ["glrt-", (URLSAFE, 20)],
    "gitlab_deploy": ["gldt-", (URLSAFE, 20)],
    "slack_bot": ["xoxb-", (string.digits, 12), "-", (string.digits, 13), "-", (ALNUM, 24)],
    "slack_user": ["xoxp-", (string.digits, 12), "-", (string.digits, 12), "-", (string.digits, 13), "-", (HEX, 32)],
    "slack_app": ["xapp-1-A", (UPPER_DIGITS, 10), "-", (string.digits, 13), "-", (HEX, 64)],
    "stripe_live": ["sk_live_", (ALNUM, 99)],
    "stripe_test": ["sk_test_", (ALNUM, 24)],
    "stripe_restricted": ["rk_live_", (ALNUM, 24)],
    "twilio_api_key": ["SK", (HEX, 32)],
    "sendgrid": ["SG.", (URLSAFE, 22), ".", (URLSAFE, 43)],
    "google_api": ["AIza", (URLSAFE, 35)],
    "huggingface": ["hf_", (string.ascii_letters, 34)],
    "huggingface_org": ["api_org_", (string.ascii_letters, 34)],
    "npm": ["npm_", (ALNUM, 36)],
    "pypi": ["pypi-AgEIcHlwaS5vcmc", (URLSAFE, 70)],
    "digitalocean": ["dop_v1_", (HEX, 64)],
    "shopify": ["shpat_", (HEX, 32)],
    "databricks": ["dapi", (HEX, 32)],
    "doppler": ["dp.pt.", (ALNUM, 43)],
    "linear": ["lin_api_", (ALNUM, 40)],
    "postman": ["PMAK-", (HEX, 24), "-", (HEX, 34)],
    "heroku_v2": ["HRKU-AA", (URLSAFE, 58)],
    "vault": ["hvs.", (URLSAFE, 95)],
    "newrelic_user": ["NRAK-", (UPPER_DIGITS, 27)],
    "sentry_user": ["sntryu_", (HEX, 64)],
    "perplexity": ["pplx-", (ALNUM, 48)],
    "groq": ["gsk_", (ALNUM, 52)],
    "notion": ["ntn_", (string.digits, 11), (ALNUM, 35)],
    "mailgun": ["key-", (HEX, 32)],
    "mailchimp": [(HEX, 32), "-us", (string.digits, 2)],
    "square": ["EAAA", (URLSAFE, 60)],
    "square_oauth_secret": ["sq0csp-", (URLSAFE, 43)],
    "grafana_service_account": ["glsa_", (ALNUM, 32), "_", (HEX, 8)],
    "pulumi": ["pul-", (HEX, 40)],
    "age": ["AGE-SECRET-KEY-1", ("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)],
    "atlassian": ["ATATT3xFfGF0", (URLSAFE, 170), "=", (UPPER_DIGITS, 8)],
    "dynatrace": ["dt0c01.", (UPPER_DIGITS, 24), ".", (UPPER_DIGITS, 64)],
    "rubygems": ["rubygems_", (HEX, 48)],
    "flyio": ["fo1_", (URLSAFE, 43)],
    "alibaba_id": ["LTAI", (ALNUM, 20)],
    "facebook_page": ["EAAC", (ALNUM, 120)],
    "planetscale": ["pscale_tkn_", (URLSAFE, 43)],
    "sendinblue": ["xkeysib-", (HEX, 64), "-", (ALNUM, 16)],
    "infracost": ["ico-", (ALNUM, 32)],
    "prefect": ["pnu_", (ALNUM, 36)],
    "readme": ["rdme_", (string.ascii_lowercase + string.digits, 70)],
    "easypost": ["EZAK", (ALNUM, 54)],
    "clojars": ["CLOJARS_", (string.ascii_lowercase + string.digits, 60)],
    "scalingo": ["tk-us-", (URLSAFE, 48)],
    "duffel": ["duffel_live_", (URLSAFE, 43)],
    "frameio": ["fio-u-", (URLSAFE, 64)],
    "openshift": ["sha256~", (URLSAFE, 43)],
}

# Provider names people use for the environment variable or the sentence that holds a key without a prefix.
UNPREFIXED_SECRETS: dict[str, tuple[str, int]] = {
    # name: (alphabet, length)
    "AWS_SECRET_ACCESS_KEY": (BASE64, 40),
    "CLOUDFLARE_API_TOKEN": (URLSAFE, 40),
    "DATADOG_API_KEY": (HEX, 32),
    "ALGOLIA_ADMIN_KEY": (HEX, 32),
    "HEROKU_API_KEY": (HEX, 32),
    "TWITTER_CONSUMER_SECRET": (ALNUM, 50),
    "DISCORD_CLIENT_SECRET": (URLSAFE, 32),
    "FASTLY_API_TOKEN": (URLSAFE, 32),
    "NETLIFY_AUTH_TOKEN": (URLSAFE, 43),
    "OKTA_API_TOKEN": (URLSAFE, 42),
    "ZENDESK_API_TOKEN": (ALNUM, 40),
    "CIRCLECI_TOKEN": (HEX, 40),
}
