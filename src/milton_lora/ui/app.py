"""`milton-lora ui`: the local dashboard (FastAPI, pages rendered on the server, a little JavaScript), also
served by `milton-lora serve` under /ui when serve.yaml says `ui: true`.

Decisions:
- The dashboard keeps no state and no copy of anything: every page reads the registry, the adapters'
  metadata.json, the TensorBoard logs, the evaluation's files and the memory store as they are now.
- Every action is the CLI's own function: promote and roll back go through `promotion` (the registry
  lock, the note, the integrity and vLLM checks, the hot swap of a running server), after a page that
  shows what the CLI's confirmation shows; forget goes through `forgetting.forget_everywhere` (as
  `memory forget ID` or `--search TEXT`, after a page naming what it will rewrite and taint; a search's
  forget takes only the conversations that page listed, checked by a digest of their identities), feedback through
  `memory.feedback.give_feedback` (as `memory feedback`, recorded with the source `ui`). `--force` is a
  checkbox offered only when it alone would allow the promotion; like the CLI it never skips the
  integrity and vLLM checks.
- The server's key rules: with MILTON_SERVE_API_KEY set, every page needs it, as `Authorization: Bearer`
  (scripts) or as a session cookie the sign-in form sets (browsers): HttpOnly, SameSite=Strict, an HMAC
  of the key, never the key itself. `ui` binds to 127.0.0.1 and refuses another address without a key.
- Forms carry a token made when the app starts, so a page from elsewhere cannot make your browser
  promote; on loopback only loopback Host headers are answered (no DNS rebinding).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from milton_lora.cycle import CycleRequest, plan_cycle
from milton_lora.errors import MiltonError
from milton_lora.export import export_options_of
from milton_lora.forgetting import ForgetReport, forget_everywhere
from milton_lora.memory import MemoryStore
from milton_lora.memory.feedback import give_feedback
from milton_lora.memory.forget import ForgetQuery
from milton_lora.promotion import promote as promote_adapter
from milton_lora.promotion import roll_back
from milton_lora.redact.config import load_redactor
from milton_lora.registry import Entry, Registry, validate_run_id
from milton_lora.report import build_report, loss_charts, report_sections, run_health
from milton_lora.serve.protocol import bearer_key, key_matches
from milton_lora.serve.runtime import is_loopback
from milton_lora.settings import Settings, shipped
from milton_lora.ui import pages
from milton_lora.ui.overview import (
    adapter_dir_of,
    adapter_rows,
    forget_choice,
    forget_selection,
    live_run,
    run_state,
    sanity_sides,
    search_memory,
    selection_digest,
    side_of,
    taint_of,
    unregistered_runs,
    whereabouts,
)

SESSION_COOKIE = "milton_ui_session"
_MEMORY_LIMIT = 50  # conversations listed per search
_MAX_FORM_BYTES = 64 * 1024  # a note and a token; the sign-in form is open to anyone who can connect


def session_token(api_key: str) -> str:
    """What the session cookie holds: derived from the key, so the cookie never carries the key itself."""
    return hmac.new(api_key.encode(), b"milton-lora dashboard session", hashlib.sha256).hexdigest()


def create_ui(settings: Settings, api_key: str | None, max_rank: int, host: str) -> FastAPI:
    """The dashboard as an app to mount at `pages.PREFIX` (`milton-lora ui` and `serve` both do)."""
    app = FastAPI(title="Milton LoRA dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    registry = Registry.of(settings)
    csrf = secrets.token_urlsafe(24)
    if is_loopback(host):
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"])
    _require_key(app, api_key)
    app.mount("/static", StaticFiles(directory=shipped("ui")), name="static")

    @app.exception_handler(MiltonError)
    async def user_mistake(request: Request, exc: MiltonError) -> HTMLResponse:
        return HTMLResponse(pages.error_page(str(exc)), 400)

    @app.get("/", response_class=HTMLResponse)
    async def adapters() -> str:
        return pages.adapters_page(adapter_rows(registry), _can_roll_back(registry))

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    async def run(run_id: str) -> str:
        state = _known_run(registry, run_id)
        run_dir = registry.run_dir(run_id)
        if state == "running":
            charts = loss_charts(run_dir, {})
            return pages.run_page(run_id, state, pages.live_section(run_id, live_run(run_dir), charts), "")
        entry = registry.load().adapters.get(run_id)
        status = entry.status if entry else state
        sections = await run_in_threadpool(report_sections, run_id, run_dir, adapter_dir_of(registry, run_id),
                                           registry.note_of(run_id), taint_of(entry) or None, False)  # fmt: skip
        sections.append(pages.sanity_section(*await run_in_threadpool(sanity_sides, registry, run_id)))
        history = [t for _, t in registry.history(run_id)] if entry else []
        actions = pages.run_actions(run_id, status, _can_roll_back(registry))
        return pages.run_page(run_id, status, sections, actions, history)

    @app.get("/runs/{run_id}/live")
    async def live(run_id: str) -> JSONResponse:
        state = _known_run(registry, run_id)
        run_dir = registry.run_dir(run_id)
        progress = await run_in_threadpool(live_run, run_dir)
        charts = await run_in_threadpool(loss_charts, run_dir, run_health(None, run_dir))
        return JSONResponse({"running": state == "running", "status": pages.live_status(progress), "charts": charts})

    @app.get("/runs/{run_id}/report", response_class=HTMLResponse)
    async def report(run_id: str) -> str:
        _known_run(registry, run_id)
        return await run_in_threadpool(build_report, run_id, registry.run_dir(run_id), adapter_dir_of(registry, run_id),
                                       registry.note_of(run_id))  # fmt: skip

    @app.get("/compare", response_class=HTMLResponse)
    async def compare(a: str = "", b: str = "") -> str:
        run_ids = [row.run_id for row in adapter_rows(registry)]
        sides = [await run_in_threadpool(side_of, registry, name) if name else None for name in (a, b)]
        return pages.compare_page(run_ids, sides[0], sides[1])

    @app.get("/promote/{run_id}", response_class=HTMLResponse)
    async def promote_form(run_id: str) -> str:
        entry = registry.get(run_id)
        refusal, needs_force = _promotion_refusal(registry, entry, max_rank)
        return pages.promote_page(entry, registry.load().production(), refusal, needs_force, csrf)

    @app.post("/promote/{run_id}", response_class=HTMLResponse)
    async def promote(run_id: str, request: Request) -> str:
        form = await _checked_form(request, csrf)
        force = form.get("force") == "1"
        command = f"ui: promote {validate_run_id(run_id)} --to-production" + " --force" * force
        done = await run_in_threadpool(promote_adapter, settings, registry, run_id, max_rank, command, force,
                                       form.get("note") or None)  # fmt: skip
        archived = f"{done.archived.run_id} archived" if done.archived else ""
        return pages.outcome_page(f"{done.production.run_id} is now in production",
                                  [archived, done.server.message], done.server.ok)  # fmt: skip

    @app.get("/rollback", response_class=HTMLResponse)
    async def rollback_form() -> str:
        try:
            current, target = registry.rollback_target()
        except MiltonError as exc:
            return pages.rollback_page(None, None, str(exc), csrf)
        return pages.rollback_page(current, target, "", csrf)

    @app.post("/rollback", response_class=HTMLResponse)
    async def rollback(request: Request) -> str:
        form = await _checked_form(request, csrf)
        done = await run_in_threadpool(roll_back, settings, registry, max_rank, "ui: promote --rollback",
                                       form.get("note") or None)  # fmt: skip
        archived = f"{done.archived.run_id} archived" if done.archived else ""
        return pages.outcome_page(f"{done.production.run_id} is in production again",
                                  [archived, done.server.message], done.server.ok)  # fmt: skip

    @app.get("/cycle", response_class=HTMLResponse)
    async def cycle(plan: bool = False, days: int = 7, config: str = "lora_default.yaml",
                    from_production: bool = False) -> str:  # fmt: skip
        configs = sorted(p.name for p in settings.configs_dir.glob("lora_*.yaml")) or [config]
        planned, options = None, export_options_of(settings)
        if plan:
            request = CycleRequest(days=max(days, 1), config=Path(config), from_production=from_production,
                                   export_options=options)  # fmt: skip
            redactor = load_redactor(settings.redact_terms_path)
            planned = await run_in_threadpool(plan_cycle, settings, request, redactor)
        return pages.cycle_page(configs, days, config, from_production, planned, options)

    @app.get("/memory", response_class=HTMLResponse)
    async def memory(q: str = "") -> str:
        found, matched = await run_in_threadpool(search_memory, settings, q, _MEMORY_LIMIT)
        return pages.memory_page(q, found, matched)

    @app.get("/memory/forget", response_class=HTMLResponse)
    async def forget_search_form(q: str = "") -> str:
        choice = await run_in_threadpool(forget_choice, settings, _search_query(q))
        if not choice.conversations:
            raise MiltonError(f"no stored conversation matches {q!r}; nothing to forget")
        return pages.forget_page(choice, csrf, "/memory/forget", f"/memory?q={quote(q)}",
                                 {"q": q, "digest": choice.digest})  # fmt: skip

    @app.post("/memory/forget", response_class=HTMLResponse)
    async def forget_search(request: Request) -> str:
        form = await _checked_form(request, csrf)
        query = _search_query(form.get("q", ""))
        done = await run_in_threadpool(forget_chosen, settings, query, form.get("digest", ""))
        return pages.forgotten_page(done.lines())

    @app.get("/memory/{conversation_id}", response_class=HTMLResponse)
    async def conversation(conversation_id: int) -> HTMLResponse:
        found = await run_in_threadpool(whereabouts, settings, registry, conversation_id)
        if found is None:
            return HTMLResponse(pages.error_page(f"no conversation {conversation_id} in {settings.memory_db}"), 404)
        return HTMLResponse(pages.conversation_page(found, csrf))

    @app.post("/memory/{conversation_id}/feedback")
    async def feedback(conversation_id: int, request: Request) -> RedirectResponse:
        form = await _checked_form(request, csrf)
        turn = int(form["turn"]) if form.get("turn", "").isdigit() else None
        edited = form.get("edited", "").replace("\r\n", "\n") or None  # a textarea sends CRLF line breaks

        def give() -> int:
            with MemoryStore(settings.memory_db) as store:
                return give_feedback(store, str(conversation_id), turn, form.get("rating") or None, edited, "ui",
                                     datetime.now(timezone.utc))[1]  # fmt: skip

        number = await run_in_threadpool(give)
        return RedirectResponse(f"{pages.PREFIX}/memory/{conversation_id}#turn-{number}", 303)

    @app.get("/memory/{conversation_id}/forget", response_class=HTMLResponse)
    async def forget_form(conversation_id: int) -> str:
        choice = await run_in_threadpool(forget_choice, settings, ForgetQuery(ids=(str(conversation_id),)))
        if not choice.conversations:
            raise MiltonError(f"no stored conversation {conversation_id}; a forgotten one is gone")
        return pages.forget_page(choice, csrf, f"/memory/{conversation_id}/forget", f"/memory/{conversation_id}", {})

    @app.post("/memory/{conversation_id}/forget", response_class=HTMLResponse)
    async def forget(conversation_id: int, request: Request) -> str:
        await _checked_form(request, csrf)
        done = await run_in_threadpool(forget_chosen, settings, ForgetQuery(ids=(str(conversation_id),)), None)
        return pages.forgotten_page(done.lines())

    @app.get("/login", response_class=HTMLResponse)
    async def login_form(next: str = pages.PREFIX + "/") -> str:
        return pages.login_page(False, next)

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await _form(request)
        target = form.get("next", "")
        target = target if target.startswith(pages.PREFIX + "/") and "//" not in target else pages.PREFIX + "/"
        if not api_key or not key_matches(form.get("key", ""), api_key):
            return HTMLResponse(pages.login_page(True, target), 401)
        response = RedirectResponse(target, 303)
        response.set_cookie(SESSION_COOKIE, session_token(api_key), httponly=True, samesite="strict",
                            path=pages.PREFIX)  # fmt: skip
        return response

    return app


def _require_key(app: FastAPI, api_key: str | None) -> None:
    """With a key set, every page but sign-in and the stylesheet/script needs the key or the session cookie."""

    @app.middleware("http")
    async def check_key(request: Request, call_next: Any) -> Any:
        open_path = request.url.path.endswith("/login") or "/static/" in request.url.path
        if not api_key or open_path or _signed_in(request, api_key):
            return await call_next(request)
        if request.method == "GET":
            return RedirectResponse(f"{pages.PREFIX}/login?next={quote(request.url.path)}", 303)
        return HTMLResponse(pages.error_page("sign in first: this dashboard needs the server's API key"), 401)


def _signed_in(request: Request, api_key: str) -> bool:
    cookie = request.cookies.get(SESSION_COOKIE, "")
    given = bearer_key(request.headers.get("authorization", ""))
    return key_matches(given, api_key) or key_matches(cookie, session_token(api_key))


def _search_query(text: str) -> ForgetQuery:
    """`memory forget --search TEXT`; blank text is refused (it would match every conversation)."""
    if not text.strip():
        raise MiltonError("search for some words first: forgetting everything is not a search")
    return ForgetQuery(search=text)


def forget_chosen(settings: Settings, query: ForgetQuery, digest: str | None) -> ForgetReport:
    """Forget what `query` selects, as `memory forget` does (source `ui: memory forget`); with `digest`, only
    when it still selects exactly the conversations the confirmation page showed."""
    chosen, identities = forget_selection(settings, query)
    if digest is not None and not hmac.compare_digest(digest, selection_digest(identities)):
        raise MiltonError("what the search matches changed since the page was shown; search again and confirm")
    return forget_everywhere(settings, chosen, "ui: memory forget")


async def _form(request: Request) -> dict[str, str]:
    """An url-encoded form's fields (the last value of each); a body over `_MAX_FORM_BYTES` is refused unread."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise MiltonError(f"a form of more than {_MAX_FORM_BYTES} bytes is refused")
    fields = parse_qs(body.decode(errors="replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in fields.items()}


async def _checked_form(request: Request, csrf: str) -> dict[str, str]:
    form = await _form(request)
    if not key_matches(form.get("csrf", ""), csrf):
        raise MiltonError("this form is stale or came from another site; reload the page and try again")
    return form


def _known_run(registry: Registry, run_id: str) -> str:
    validate_run_id(run_id)
    if run_id in registry.load().adapters or run_id in unregistered_runs(registry):
        return run_state(registry, run_id)
    raise MiltonError(f"no adapter or run {run_id}; see the adapters page")


def _can_roll_back(registry: Registry) -> bool:
    try:
        registry.rollback_target()
    except MiltonError:
        return False
    return True


def _promotion_refusal(registry: Registry, entry: Entry, max_rank: int) -> tuple[str, bool]:
    """('', False) when it can be promoted; (why, True) when only --force allows it; (why, False) when nothing does."""
    try:
        registry.check_promotable(entry, False, max_rank)
        return "", False
    except MiltonError as exc:
        refusal = str(exc)
    try:
        registry.check_promotable(entry, True, max_rank)
    except MiltonError as exc:
        return str(exc), False
    return refusal, True


def create_standalone(settings: Settings, api_key: str | None, max_rank: int, host: str) -> FastAPI:
    """`milton-lora ui`: the dashboard at /ui, and / sends you there."""
    root = FastAPI(title="Milton LoRA dashboard", docs_url=None, redoc_url=None, openapi_url=None)

    @root.get("/")
    async def home() -> RedirectResponse:
        return RedirectResponse(pages.PREFIX + "/")

    root.mount(pages.PREFIX, create_ui(settings, api_key, max_rank, host))
    return root


def run_ui(settings: Settings, host: str, port: int, max_rank: int, api_key: str | None,
           announce: Callable[[str], None]) -> None:  # fmt: skip
    """Serve the dashboard in the foreground until interrupted; `announce` is told its address first."""
    import uvicorn

    if not is_loopback(host) and not api_key:
        raise MiltonError(f"--host {host}: the dashboard can promote adapters; set MILTON_SERVE_API_KEY before "
                          "exposing it beyond this machine")  # fmt: skip
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    announce(f"http://{shown}:{port}{pages.PREFIX}/")
    uvicorn.run(create_standalone(settings, api_key, max_rank, host), host=host, port=port, log_level="warning")
