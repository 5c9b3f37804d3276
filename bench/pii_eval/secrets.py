"""Chat messages that carry credentials: keys in configs, prose and commands, passwords in every place people
type them, tokens in links, private keys and JWTs. Each maker returns one labeled message.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from labeled import Builder, Sample

from .facts import ALNUM, DIGITS, HEX, UPPER_DIGITS, URLSAFE
from .values import NAMES, Values

Maker = Callable[[Values, random.Random], Sample]


def key_in_env_file(v: Values, rng: random.Random) -> Sample:
    provider, key = v.provider_key()
    name = f"{provider.split('_')[0].upper()}_{rng.choice(['API_KEY', 'TOKEN', 'KEY', 'SECRET'])}"
    b = Builder().text(rng.choice(["my .env looks like this:\n", "pasting the env file\n", ".env.production:\n"]))
    b.text("APP_ENV=production\nLOG_LEVEL=debug\n").text(f"{name}=").slot(key, "API_KEY").text("\nPORT=3000\n")
    return b.build()


def key_in_prose(v: Values, rng: random.Random) -> Sample:
    provider, key = v.provider_key()
    service = provider.split("_")[0]
    b = Builder()
    lead = rng.choice([
        f"here's the {service} key, can you check why it 401s: ",
        f"I accidentally pushed my {service} token ",
        "use this one for now -> ",
        f"{service} gave me ",
        "the key is ",
    ])  # fmt: skip
    b.text(lead).slot(key, "API_KEY")
    b.text(rng.choice([" , should I rotate it?", "\nthanks!", " (expires next month)", ". what scopes does it need?"]))
    return b.build()


def key_in_code(v: Values, rng: random.Random) -> Sample:
    provider, key = v.provider_key()
    b = Builder()
    style = rng.randrange(4)
    if style == 0:
        b.text('```python\nimport requests\n\nclient = Client(api_key="').slot(key, "API_KEY").text('")\n```')
    elif style == 1:
        b.text("const headers = { Authorization: `Bearer ").slot(key, "API_KEY").text("` };")
    elif style == 2:
        b.text("config.yaml:\n  provider: ").text(provider).text("\n  credentials:\n    token: ").slot(key, "API_KEY")
        b.text("\n  retries: 3\n")
    else:
        b.text("export ").text(provider.upper()).text("_TOKEN='").slot(key, "API_KEY").text("'\nnpm run deploy")
    return b.build()


def unprefixed_key(v: Values, rng: random.Random) -> Sample:
    name, value = v.unprefixed_secret()
    b = Builder()
    if rng.random() < 0.5:
        b.text("docker run -e ").text(name).text("=").slot(value, "API_KEY").text(" my-image:latest")
    else:
        b.text(f'{{\n  "{name.lower()}": "').slot(value, "API_KEY").text('",\n  "region": "eu-west-1"\n}')
    return b.build()


def aws_pair(v: Values, rng: random.Random) -> Sample:
    key_id, secret = v.aws_pair()
    b = Builder()
    style = rng.randrange(3)
    if style == 0:
        b.text("[default]\naws_access_key_id = ").slot(key_id, "API_KEY").text("\naws_secret_access_key = ")
        b.slot(secret, "API_KEY").text("\nregion = us-east-1\n")
    elif style == 1:
        b.text("the IAM user has key ").slot(key_id, "API_KEY").text(" with secret ").slot(secret, "API_KEY")
        b.text(", is that enough for s3 sync?")
    else:
        b.text("AccessKeyId: ").slot(key_id, "API_KEY").text("\nSecretAccessKey: ").slot(secret, "API_KEY")
    return b.build()


def azure_connection_string(v: Values, rng: random.Random) -> Sample:
    b = Builder().text(rng.choice(["storage conn string: ", 'AZURE_STORAGE_CONNECTION_STRING="', "connect with "]))
    account = rng.choice(["prodassets", "mlbackups", "stdevlogs01"])
    b.text(f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey=").slot(v.azure_account_key(), "API_KEY")
    b.text(";EndpointSuffix=core.windows.net")
    return b.build()


def azure_client_secret(v: Values, rng: random.Random) -> Sample:
    b = Builder().text("app registration: client id is in the portal, client secret value ")
    b.slot(v.azure_client_secret(), "API_KEY").text(" - it expires in 6 months")
    return b.build()


def discord_bot(v: Values, rng: random.Random) -> Sample:
    b = Builder()
    if rng.random() < 0.5:
        b.text("my discord bot won't log in:\nclient.run('").slot(v.discord_bot_token(), "API_KEY").text("')")
    else:
        b.text("DISCORD_TOKEN=").slot(v.discord_bot_token(), "API_KEY")
    return b.build()


def telegram_token(v: Values, rng: random.Random) -> Sample:
    token = v.telegram_bot_token()
    b = Builder()
    if rng.random() < 0.5:
        b.text("BotFather gave me ").slot(token, "API_KEY").text(" what do I do with it")
    else:
        method = rng.choice(["getUpdates", "sendMessage?chat_id=-1001234", "getMe"])
        url = f"https://api.telegram.org/bot{token}/{method}"
        b.text("curl ").slot(url, "URL_WITH_TOKEN").text(" returns 404")
    return b.build()


def npm_rc(v: Values, rng: random.Random) -> Sample:
    _, token = v.provider_key("npm")
    b = Builder().text(".npmrc:\n//registry.npmjs.org/:_authToken=").slot(token, "API_KEY").text("\nsave-exact=true")
    return b.build()


def password_in_prose(v: Values, rng: random.Random) -> Sample:
    password = v.password()
    b = Builder()
    style = rng.randrange(10)
    if style == 0:
        b.text(f"apple id {v.email()}, password ").slot(password, "PASSWORD")
    elif style == 1:
        b.text(f"router admin is at {v.private_ipv4()}, user admin, pass ").slot(password, "PASSWORD")
    elif style == 2:
        b.text("I reuse ").slot(password, "PASSWORD").text(" everywhere, is that bad?")
    elif style == 3:
        b.text("the wifi password is ").slot(password, "PASSWORD")
        b.text(rng.choice(["", " btw", ", network is Home-5G"]))
    elif style == 4:
        b.text("my password for the NAS: ").slot(password, "PASSWORD")
    elif style == 5:
        b.text("log in as ").text(rng.choice(NAMES).lower()).text(" with password ").slot(password, "PASSWORD")
        b.text(" and change it after")
    elif style == 6:
        b.text("new pw is ").slot(password, "PASSWORD")
    elif style == 7:
        b.text("Username: ").text(rng.choice(NAMES).lower()).text("\nPassword: ").slot(password, "PASSWORD")
    elif style == 8:
        b.text("can you remember for me that my bank password is ").slot(password, "PASSWORD").text(" thanks")
    else:
        b.text("set the passphrase to ").slot(password, "PASSWORD").text(" and restart the vault")
    return b.build()


def password_in_settings(v: Values, rng: random.Random) -> Sample:
    password = v.password()
    b = Builder()
    style = rng.randrange(6)
    if style == 0:
        b.text("DATABASES = {\n    'default': {\n        'ENGINE': 'django.db.backends.postgresql',\n")
        b.text("        'NAME': 'shop',\n        'USER': 'shop',\n        'PASSWORD': '").slot(password, "PASSWORD")
        b.text("',\n        'HOST': 'db',\n    }\n}")
    elif style == 1:
        b.text("services:\n  db:\n    image: postgres:16\n    environment:\n      POSTGRES_PASSWORD: ")
        b.slot(password, "PASSWORD").text("\n")
    elif style == 2:
        b.text(json.dumps({"host": "smtp.mailbox.org", "port": 587, "user": "me"})[:-1]).text(', "password": "')
        b.slot(password, "PASSWORD").text('"}')
    elif style == 3:
        b.text('<connectionStrings>\n  <add name="Main" connectionString="Server=sql01;User Id=app;Password=')
        b.slot(password, "PASSWORD").text(';" />\n</connectionStrings>')
    elif style == 4:
        b.text("spring.datasource.password=").slot(password, "PASSWORD")
    else:
        b.text("MYSQL_ROOT_PASSWORD=").slot(password, "PASSWORD").text("\nMYSQL_DATABASE=wp")
    return b.build()


def password_on_command_line(v: Values, rng: random.Random) -> Sample:
    password = v.password().replace("'", "").replace('"', "")
    user = rng.choice(["root", "admin", "deploy", rng.choice(NAMES).lower()])
    b = Builder()
    style = rng.randrange(8)
    if style == 0:
        b.text(f"mysql -u {user} -p").slot(password, "PASSWORD").text(" shop < dump.sql")
    elif style == 1:
        b.text("sshpass -p '").slot(password, "PASSWORD").text(f"' ssh {user}@bastion")
    elif style == 2:
        b.text(f"curl -u {user}:").slot(password, "PASSWORD").text(" https://ci.internal/api/json")
    elif style == 3:
        b.text("PGPASSWORD=").slot(password, "PASSWORD").text(f" psql -h db -U {user} app")
    elif style == 4:
        b.text(f"./backup.sh --user {user} --password ").slot(password, "PASSWORD").text(" --verbose")
    elif style == 5:
        b.text(f"docker login -u {user} -p ").slot(password, "PASSWORD").text(" registry.gitlab.com")
    elif style == 6:
        b.text(f"mysqldump -u{user} -p").slot(password, "PASSWORD").text(" --all-databases > all.sql")
    else:
        b.text("redis-cli -h cache -a ").slot(password, "PASSWORD").text(" ping")
    return b.build()


def token_link(v: Values, rng: random.Random) -> Sample:
    token = v.chars(URLSAFE, rng.choice([16, 24, 32, 43]))
    host = rng.choice(["app.notion.so", "accounts.shopify.com", "login.acme-corp.io", "news.example.net", "id.zoom.us"])
    path, param = rng.choice([
        ("/auth/magic", "token"), ("/reset-password", "t"), ("/email/unsubscribe", "sig"), ("/oauth/callback", "code"),
        ("/confirm", "confirmation_token"), ("/invite", "invite_token"), ("/download", "key"), ("/s/share", "t"),
        ("/login/verify", "otp_token"), ("/api/v2/feed", "access_token"),
    ])  # fmt: skip
    extra = rng.choice(["", "&utm_source=email", "&lang=en", "&redirect=%2Fdashboard"])
    url = f"https://{host}{path}?{param}={token}{extra}"
    b = Builder().text(rng.choice(["this link doesn't work: ", "clicked ", "got this mail, legit? ", "open "]))
    b.slot(url, "URL_WITH_TOKEN").text(rng.choice(["", " - says expired", "\nwhat does it do?"]))
    return b.build()


def signed_url(v: Values, rng: random.Random) -> Sample:
    b = Builder()
    style = rng.randrange(3)
    if style == 0:
        url = (f"https://media-uploads.s3.eu-central-1.amazonaws.com/report.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256"
               f"&X-Amz-Credential={v.aws_pair()[0]}%2F20250101%2Feu-central-1%2Fs3%2Faws4_request&X-Amz-Date=20250101T000000Z"
               f"&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature={v.chars(HEX, 64)}")  # fmt: skip
    elif style == 1:
        url = (f"https://stassets.blob.core.windows.net/exports/data.csv?sv=2022-11-02&ss=b&srt=o&sp=r"
               f"&se=2025-12-31T23:59:59Z&sig={v.chars(ALNUM, 43)}%3D")  # fmt: skip
    else:
        url = f"https://us06web.zoom.us/j/8{v.chars(DIGITS, 10)}?pwd={v.chars(ALNUM, 32)}.1"
    b.text("share link: ").slot(url, "URL_WITH_TOKEN")
    return b.build()


def webhook_url(v: Values, rng: random.Random) -> Sample:
    if rng.random() < 0.5:
        workspace, channel = v.chars(UPPER_DIGITS, 8), v.chars(UPPER_DIGITS, 8)
        url = f"https://hooks.slack.com/services/T{workspace}/B{channel}/{v.chars(ALNUM, 24)}"
    else:
        url = f"https://discord.com/api/webhooks/{v.chars(DIGITS, 18)}/{v.chars(URLSAFE, 68)}"
    return Builder().text("alerts go to ").slot(url, "URL_WITH_TOKEN").text(" but nothing arrives").build()


def credentials_in_url(v: Values, rng: random.Random) -> Sample:
    password = v.password().replace("@", "").replace("/", "").replace(":", "").replace("#", "").replace("?", "")
    b = Builder()
    if rng.random() < 0.5:
        url = f"https://{rng.choice(NAMES).lower()}:{password}@git.acme-corp.io/team/app.git"
        b.text("git clone ").slot(url, "URL_WITH_TOKEN")
    else:
        scheme = rng.choice(["postgresql", "mysql", "mongodb", "amqp", "redis"])
        host = rng.choice(["db.internal", "mq.prod.acme-corp.io", "cache-01"])
        b.text(f"{scheme}://app:").slot(password, "PASSWORD").text(f"@{host}:5432/main")
    return b.build()


def connection_string_with_ip(v: Values, rng: random.Random) -> Sample:
    password = v.chars(ALNUM, rng.randint(8, 20))
    ip = v.public_ipv4() if rng.random() < 0.5 else v.private_ipv4()
    schemes = [("amqp", 5672), ("redis", 6379), ("postgres", 5432), ("mongodb", 27017), ("mysql", 3306)]
    scheme, port = rng.choice(schemes)
    user = "" if scheme == "redis" else rng.choice(["app", "guest", "svc_etl"])
    lead, close = rng.choice([("BROKER_URL=", ""), ('conn = connect("', '")'), ("url: ", "")])
    b = Builder().text(lead).text(f"{scheme}://{user}:").slot(password, "PASSWORD").text("@").slot(ip, "IP_ADDRESS")
    b.text(f":{port}/{rng.choice(['0', 'prod', ''])}{close}")
    return b.build()


def jwt_message(v: Values, rng: random.Random) -> Sample:
    b = Builder()
    style = rng.randrange(3)
    if style == 0:
        b.text("decode this for me: ").slot(v.jwt(), "JWT")
    elif style == 1:
        b.text("Cookie: session=").slot(v.jwt(), "JWT").text("; theme=dark")
    else:
        b.text('{"token_type": "Bearer", "id_token": "').slot(v.jwt(), "JWT").text('", "expires_in": 3600}')
    return b.build()


def private_key_message(v: Values, rng: random.Random) -> Sample:
    b = Builder()
    if rng.random() < 0.3:
        key_id = v.chars(HEX, 40)
        b.text('{\n  "type": "service_account",\n  "project_id": "analytics-prod-4411",\n  "private_key_id": "')
        b.keep(key_id, "hex_key_id").text('",\n  "private_key": "')
        b.slot(v.private_key(escaped_newlines=True), "PRIVATE_KEY")
        b.text('\\n",\n  "client_email": "etl@analytics-prod-4411.iam.gserviceaccount.com"\n}')
    else:
        b.text(rng.choice(["is this key format right?\n", "id_rsa:\n", "the deploy key\n"]))
        b.slot(v.private_key(), "PRIVATE_KEY").text(rng.choice(["", "\nthanks", "\n(the pub part is on the server)"]))
    return b.build()


SECRET_MAKERS: list[tuple[Maker, int]] = [
    (key_in_env_file, 60), (key_in_prose, 70), (key_in_code, 60), (unprefixed_key, 40), (aws_pair, 30),
    (azure_connection_string, 20), (azure_client_secret, 10), (discord_bot, 20), (telegram_token, 30), (npm_rc, 15),
    (password_in_prose, 150), (password_in_settings, 70), (password_on_command_line, 100), (token_link, 90),
    (signed_url, 30), (webhook_url, 20), (credentials_in_url, 40), (connection_string_with_ip, 60),
    (jwt_message, 60), (private_key_message, 60),
]  # fmt: skip
