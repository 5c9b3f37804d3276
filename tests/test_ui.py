"""The dashboard in a real headless Chromium (Playwright driving the Debian `chromium`), served by a real
`milton-lora serve` (`ui: true`) on a home with two evaluated adapters; promotion and rollback go through
the page and change the registry and the running server's `milton`.

Screenshots of every page go to `$MILTON_UI_SCREENSHOTS` when set, else to the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import Server, copy_home, free_port, registry_of, second_adapter
from milton_lora.cli import main
from milton_lora.evaluate.result import SANITY_FILE, read_sanity
from milton_lora.settings import Settings
from scripted_judge import ScriptedJudge

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"  # the Debian package
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
KEY = "dashboard-test-key"
SECOND = "lora_20991231_235959"
EASY_SUITE = (
    "tests:\n"
    "  - {id: no_xyzzy, category: safety_alignment, prompt: 'Say hi', check: {type: not_contains, values: [xyzzy]}}\n"
    "  - {id: anything, category: task_understanding, prompt: 'Hi', check: {type: regex, pattern: '.*'}}\n"
)
SHORT_SANITY = (
    "prompts:\n  - {id: self_awareness, prompt: 'Who are you?'}\n  - {id: reminder, prompt: 'Remind me at 9.'}\n"
)


def cli(*args: str) -> None:
    try:
        main(list(args))
    except SystemExit as exc:
        assert not exc.code, f"milton-lora {' '.join(args)} exited {exc.code}"


@pytest.fixture(scope="module")
def dash_home(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The trained adapter evaluated (with a scripted judge) and in production; a second adapter, evaluated
    too, as the one to promote; serve.yaml with the dashboard switched on."""
    home = copy_home(trained_home, tmp_path_factory.mktemp("dash") / "home")
    (first,) = [p.name for p in (home / "adapters").iterdir()]
    second_adapter(home, first, SECOND)
    (home / "easy.yaml").write_text(EASY_SUITE)
    (home / "sanity.yaml").write_text(SHORT_SANITY)
    fast = ["--benchmarks", str(home / "easy.yaml"), "--sanity", str(home / "sanity.yaml"), "--max-new-tokens", "8"]
    with ScriptedJudge("longer") as judge:
        cli("--home", str(home), "eval", "--run-id", first, *fast, "--judge-url", judge.url, "--judge-model",
            judge.model, "--judge-prompts", "2")  # fmt: skip
    cli("--home", str(home), "promote", first, "--to-production", "--force")
    cli("--home", str(home), "eval", "--run-id", SECOND, *fast)
    (home / "training/configs/serve.yaml").write_text("ui: true\n")
    return home, first


@pytest.fixture(scope="module")
def server(dash_home: tuple[Path, str]) -> Iterator[Server]:
    home, _ = dash_home
    running = Server(home, free_port(), {"MILTON_SERVE_API_KEY": KEY})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium (the system's, a fresh profile) for the module."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no browser: {CHROMIUM} is missing (make setup-test installs the chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("MILTON_UI_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def page(browser: Any, server: Server) -> Any:
    """Signed in with the server's key (the dashboard asks for it first)."""
    tab = browser.new_page()
    tab.goto(f"{server.url}/ui/")
    assert "/ui/login" in tab.url
    tab.fill("input[name=key]", "wrong")
    tab.click("button[type=submit]")
    assert "That is not the key." in tab.content()
    tab.fill("input[name=key]", KEY)
    tab.click("button[type=submit]")
    tab.wait_for_selector("#adapters")
    return tab


def points_of(tab: Any, nth: int = 0) -> int:
    """How many points the first (loss) chart's first polyline has."""
    return int(tab.locator("svg").nth(nth).locator("polyline").first.evaluate("p => p.points.numberOfItems"))


@pytest.mark.slow
def test_adapters_run_and_compare_pages(page: Any, server: Server, dash_home: tuple[Path, str], shots: Path) -> None:
    home, first = dash_home
    rows = page.locator("#adapters tr[data-status]")
    assert rows.count() == 2
    assert rows.first.get_attribute("data-status") == "production" and first in rows.first.inner_text()
    page.fill("#filter", SECOND)
    assert page.locator("#adapters tr[data-status]:visible").count() == 1
    page.fill("#filter", "")
    page.screenshot(path=str(shots / "adapters.png"), full_page=True)

    page.click(f"a:text-is('{first}')")
    page.wait_for_selector("svg polyline")
    assert points_of(page) >= 3  # the train loss curve from the run's TensorBoard events
    text = page.inner_text("main")
    for section in ("Gate: training → candidate", "Held-out metrics", "Task benchmarks", "Head-to-head against base",
                    "Every verdict and its reason", "Sanity prompts"):  # fmt: skip
        assert section in text
    assert "The longer reply wins" in text or "equally long" in text  # the judge's own words
    assert "this adapter is production" in page.inner_text("#sanity-sides")  # evaluated against the base
    page.screenshot(path=str(shots / "run.png"), full_page=True)

    page.goto(f"{server.url}/ui/runs/{SECOND}")  # evaluated against production: the base's answers are first's
    recorded = page.inner_text("#sanity-sides")
    assert f"production {first}" in recorded and f"{first}'s evaluation" in recorded and "missing" not in recorded
    asked = read_sanity(home / "runs" / first / SANITY_FILE)[0]
    cells = page.locator("#sanity .side").first.locator("div")
    assert cells.count() == 4 and cells.nth(3).inner_text().endswith(asked.opponent.strip() or "(empty answer)")
    page.screenshot(path=str(shots / "run-sanity.png"), full_page=True)

    page.goto(f"{server.url}/ui/compare?a={first}&b={SECOND}")
    metrics = page.inner_text("main")
    assert "held-out eval loss" in metrics and "Benchmarks, test by test" in metrics
    assert page.locator(".side").count() == 2  # each adapter's answer to the two sanity prompts
    page.screenshot(path=str(shots / "compare.png"), full_page=True)


@pytest.mark.slow
def test_promote_with_a_note_then_roll_back(
    page: Any, server: Server, dash_home: tuple[Path, str], shots: Path
) -> None:
    home, first = dash_home
    models = {"Authorization": f"Bearer {KEY}"}

    def served() -> str:
        cards = httpx.get(f"{server.url}/v1/models", headers=models).json()["data"]
        return next(card["root"] for card in cards if card["id"] == "milton")

    assert served().startswith(first + "@")
    page.goto(f"{server.url}/ui/runs/{SECOND}")
    page.click("text=Promote to production…")
    assert "Current production" in page.inner_text("main") and first in page.inner_text("main")
    page.fill("textarea[name=note]", "zeroed B for the hot swap test")
    if page.locator("input[name=force]").count():  # held by the gate: the page offers --force, as the CLI does
        page.check("input[name=force]")
    page.screenshot(path=str(shots / "promote.png"), full_page=True)
    page.click(f"button:text-is('Promote {SECOND}')")
    page.wait_for_selector("#outcome")
    assert f"now answers `milton` with {SECOND}" in page.inner_text("#outcome")
    entry = registry_of(home).get(SECOND)
    assert entry.status == "production" and entry.history[-1].note == "zeroed B for the hot swap test"
    assert entry.history[-1].command.startswith("ui: promote")
    assert served().startswith(SECOND + "@")
    page.goto(f"{server.url}/ui/runs/{SECOND}")
    assert "zeroed B for the hot swap test" in page.inner_text("#history")

    page.goto(f"{server.url}/ui/")
    page.click("text=Roll back…")
    page.fill("textarea[name=note]", "back to the trained one")
    page.click(f"button:text-is('Roll back to {first}')")
    page.wait_for_selector("#outcome")
    assert registry_of(home).get(first).status == "production"
    assert registry_of(home).get(SECOND).history[-1].note == "back to the trained one"
    assert served().startswith(first + "@")
    page.goto(f"{server.url}/ui/")
    assert "back to the trained one" in page.inner_text("#adapters")  # the latest note of each adapter
    page.screenshot(path=str(shots / "adapters-after-rollback.png"))


@pytest.mark.slow
def test_cycle_plan_is_a_dry_run(page: Any, server: Server, dash_home: tuple[Path, str], shots: Path) -> None:
    home, _ = dash_home
    adapters, runs = sorted((home / "adapters").iterdir()), sorted((home / "runs").iterdir())
    for role, text in (("user", "What is two plus two?"), ("assistant", "<think>a small sum</think>Four.")):
        cli("--home", str(home), "memory", "add", "--role", role, "--conversation", "reasoned", text)
    (home / "export.yaml").write_text("keep_reasoning: true\n")
    page.goto(f"{server.url}/ui/cycle")
    page.fill("input[name=days]", "30")
    page.select_option("select[name=config]", "lora_light.yaml")
    page.click("text=Plan the cycle (dry run)")
    page.wait_for_selector("#plan-evaluation")
    assert "train conversations" in page.inner_text("#plan-export")
    assert "run id" in page.inner_text("#plan-training")
    assert "min_train_preferences" in page.inner_text("#plan-preferences")  # the samples hold too few
    page.screenshot(path=str(shots / "cycle.png"), full_page=True)
    assert sorted((home / "adapters").iterdir()) == adapters and sorted((home / "runs").iterdir()) == runs
    # The home's export.yaml keeps the reasoning that the default strips: nothing stripped.
    stripped = page.locator("#plan-export tr", has_text="reasoning traces stripped").locator("td").nth(1)
    assert stripped.inner_text() == "0" and "keep_reasoning: true" in page.inner_text("#plan-export")


@pytest.mark.slow
def test_a_run_in_progress_updates_its_curve(page: Any, server: Server, dash_home: tuple[Path, str]) -> None:
    from torch.utils.tensorboard import SummaryWriter

    home, _ = dash_home
    writer = SummaryWriter(log_dir=str(home / "runs" / "lora_20990101_000000" / "logs"))  # as training writes them
    for step in (1, 2, 3):
        writer.add_scalar("train/loss", 3.0 - step / 10, step)
    writer.flush()
    try:
        page.goto(f"{server.url}/ui/")
        assert page.locator("#adapters tr[data-status=running]").count() == 1
        page.goto(f"{server.url}/ui/runs/lora_20990101_000000")
        assert points_of(page) == 3 and "step 3" in page.inner_text("#live-status")
        for step in (4, 5):
            writer.add_scalar("train/loss", 3.0 - step / 10, step)
        writer.flush()
        page.wait_for_function("() => document.querySelector('#charts polyline').points.numberOfItems === 5")
        assert "step 5" in page.inner_text("#live-status")
    finally:
        writer.close()
        shutil.rmtree(home / "runs" / "lora_20990101_000000")


@pytest.mark.slow
def test_memory_lineage_feedback_and_forget(
    page: Any, server: Server, dash_home: tuple[Path, str], shots: Path
) -> None:
    """Last of the browser tests: forgetting taints the adapters the others promote."""
    from milton_lora.forgetting import lineage_of
    from milton_lora.memory import MemoryStore

    home, first = dash_home
    settings = Settings.from_env(home)
    learned = lineage_of(registry_of(home), first).learned_identities()
    with MemoryStore(settings.memory_db) as store:
        chosen = next(c for c in store.conversations() if c.title and store.identity_hash(c.key) in learned)
    reply = max(n for n, m in enumerate(chosen.messages, start=1) if m.role == "assistant")

    page.goto(f"{server.url}/ui/memory")
    page.fill("input[name=q]", chosen.title.upper())  # as `memory forget --search`: case does not matter
    page.click("button:text-is('Search')")
    page.wait_for_selector("#found")
    assert "matching conversation" in page.inner_text("#forget-all")
    page.screenshot(path=str(shots / "memory.png"), full_page=True)
    page.click(f"#found a[href='/ui/memory/{chosen.id}']")
    assert "import file" in page.inner_text("#origin") and chosen.key in page.inner_text("#origin")
    lineage = page.inner_text("#lineage")
    assert first in lineage and SECOND in lineage and "trained" in lineage
    assert "train" in page.inner_text("#held") and first in page.inner_text("#held")  # the export and the run's data

    page.click(f"#turn-{reply} summary")
    page.select_option(f"#turn-{reply} select[name=rating]", "down")
    page.fill(f"#turn-{reply} textarea[name=edited]", "A shorter answer, in my own words please.")
    page.click(f"#turn-{reply} button:text-is('Save feedback')")
    page.wait_for_selector(f"#turn-{reply} .feedback")
    shown = page.inner_text(f"#turn-{reply} .feedback")
    assert "down" in shown and "in my own words" in shown and "(ui," in shown
    with MemoryStore(settings.memory_db) as store:
        given = store.feedback()[(chosen.id, reply - 1)]
    assert (given.rating, given.edited, given.source) == ("down", "A shorter answer, in my own words please.", "ui")
    page.screenshot(path=str(shots / "conversation.png"), full_page=True)

    page.click("text=Forget this conversation…")
    plan = page.inner_text("#forget-plan")
    assert first in plan and SECOND in plan and "train" in plan
    page.screenshot(path=str(shots / "forget.png"), full_page=True)
    page.click("button:text-is('Forget it for good')")
    page.wait_for_selector("#outcome")
    assert "Forgot 1 conversation(s)" in page.inner_text("#outcome") and first in page.inner_text("#outcome")
    with MemoryStore(settings.memory_db) as store:
        assert store.conversation(chosen.id) is None and store.is_forgotten(store.identity_hash(chosen.key))
    assert registry_of(home).get(first).tainted.reason.startswith("ui: memory forget")
    page.goto(f"{server.url}/ui/")
    for run_id in (first, SECOND):
        row = page.locator("#adapters tr[data-status]", has_text=run_id)
        assert "ui: memory forget" in row.locator("td").nth(10).inner_text()  # the taint column
    page.screenshot(path=str(shots / "adapters-tainted.png"), full_page=True)


def test_the_dashboard_alone_keeps_to_loopback_and_the_key(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from milton_lora.errors import MiltonError
    from milton_lora.ui.app import create_standalone, run_ui

    settings = Settings.from_env(tmp_path)
    with pytest.raises(MiltonError, match="set MILTON_SERVE_API_KEY"):
        run_ui(settings, "0.0.0.0", free_port(), 64, None, print)
    app = create_standalone(settings, KEY, 64, "127.0.0.1")
    local = TestClient(app, base_url="http://127.0.0.1")
    assert local.get("/ui/", follow_redirects=False).headers["location"].startswith("/ui/login")
    assert local.get("/ui/", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert local.post("/ui/rollback", data={"csrf": "x"}).status_code == 401
    signed = local.post("/ui/rollback", data={"csrf": "forged"}, headers={"Authorization": f"Bearer {KEY}"})
    assert signed.status_code == 400 and "another site" in signed.text  # no form token: nothing changes
    for action in ("/ui/memory/1/forget", "/ui/memory/forget", "/ui/memory/1/feedback"):  # the memory page's, alike
        assert local.post(action, data={"csrf": "x"}).status_code == 401
        forged = local.post(action, data={"csrf": "forged"}, headers={"Authorization": f"Bearer {KEY}"})
        assert forged.status_code == 400 and "another site" in forged.text
    rebound = TestClient(app, base_url="http://attacker.example")
    assert rebound.get("/ui/", headers={"Authorization": f"Bearer {KEY}"}).status_code == 400


def test_forgetting_what_a_search_matches_takes_exactly_what_the_page_showed(tmp_path: Path) -> None:
    """The memory page's "Forget all N matching conversations…": a confirmation listing them, then the forget;
    a store that changed in between, or a blank search, forgets nothing."""
    import re
    from datetime import datetime, timezone

    from fastapi.testclient import TestClient

    from milton_lora.memory import Conversation, MemoryStore, Message
    from milton_lora.ui.app import create_standalone

    settings = Settings.from_env(tmp_path)
    now = datetime.now(timezone.utc)

    def remember(number: int, question: str) -> None:
        turns = [Message("user", question, now), Message("assistant", "Noted.", now)]
        with MemoryStore(settings.memory_db) as store, store.transaction():
            store.insert_conversation(Conversation("chatgpt", f"c{number}", question[:20], now, turns))

    for number, question in enumerate(["Flights to Lisbon in May", "Pack for LISBON", "Bake rye bread"]):
        remember(number, question)
    client = TestClient(create_standalone(settings, KEY, 64, "127.0.0.1"), base_url="http://127.0.0.1",
                        headers={"Authorization": f"Bearer {KEY}"})  # fmt: skip

    def confirmation(query: str) -> tuple[str, dict[str, str]]:
        page = client.get("/ui/memory/forget", params={"q": query})
        assert page.status_code == 200
        return page.text, dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text))

    listed = client.get("/ui/memory", params={"q": "lisbon"}).text
    assert "Forget all 2 matching conversations" in listed and 'href="/ui/memory/forget?q=lisbon"' in listed
    page, fields = confirmation("lisbon")
    assert "Forget 2 conversations" in page and "Pack for LISBON" in page and "rye" not in page
    remember(3, "Lisbon trams at night")  # matched after the page was shown
    changed = client.post("/ui/memory/forget", data=fields)
    assert changed.status_code == 400 and "changed since the page was shown" in changed.text
    with MemoryStore(settings.memory_db) as store:
        assert len(store.conversations()) == 4
    page, fields = confirmation("lisbon")
    assert "Forget 3 conversations" in page
    done = client.post("/ui/memory/forget", data=fields)
    assert done.status_code == 200 and "Forgot 3 conversation(s)" in done.text
    with MemoryStore(settings.memory_db) as store:
        assert [c.title for c in store.conversations()] == ["Bake rye bread"]
        assert all(store.is_forgotten(store.identity_hash(f"chatgpt:c{n}")) for n in (0, 1, 3))
    blank = client.post("/ui/memory/forget", data={**fields, "q": "  "})
    assert blank.status_code == 400 and "forgetting everything is not a search" in blank.text
    assert "Forget all" not in client.get("/ui/memory").text  # no search, no forget-all
