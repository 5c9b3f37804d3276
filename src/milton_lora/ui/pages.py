"""The dashboard's HTML, rendered on the server: the layout and one function per page. Sections the run
report already draws (curves, gate, benchmarks, verdicts, sanity answers) are the report's own.

Every value from a file or the store is escaped here; the pages load only the package's own ui.css and
ui.js (`data/ui/`), so they work offline.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from html import escape
from urllib.parse import quote

from milton_lora.cycle import CyclePlan
from milton_lora.evaluate.result import CheckOutcome, SanityAnswer
from milton_lora.export import ExportOptions
from milton_lora.forgetting import ForgetPlan
from milton_lora.memory import Conversation, Message
from milton_lora.memory.models import Feedback
from milton_lora.registry import Entry, Transition
from milton_lora.report import number, table, verdict
from milton_lora.ui.overview import (
    AdapterRow,
    ForgetChoice,
    LiveRun,
    SanitySide,
    Side,
    Whereabouts,
    compared_answers,
    compared_benchmarks,
    compared_metrics,
    origin_of,
)

PREFIX = "/ui"  # where the dashboard lives, under `milton-lora ui` and under `serve` alike
FORGET_LISTED = 200  # conversations listed on a forget's confirmation; the rest are counted
STATUSES = ("production", "candidate", "training", "archived", "running", "stopped")


def layout(title: str, body: str) -> str:
    links = (("", "Adapters"), ("compare", "Compare"), ("cycle", "Cycle plan"), ("memory", "Memory"))
    nav = "".join(f'<a href="{PREFIX}/{path}">{name}</a>' for path, name in links)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)} · Milton LoRA</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="stylesheet" href="{PREFIX}/static/ui.css"><script src="{PREFIX}/static/ui.js" defer></script>'
            f'</head><body><nav><b>Milton LoRA</b>{nav}</nav><main>{body}</main></body></html>')  # fmt: skip


def adapters_page(rows: list[AdapterRow], can_roll_back: bool) -> str:
    options = "".join(f'<option value="{s}">{s}</option>' for s in STATUSES)
    tools = (f'<div class="tools"><input id="filter" type="search" placeholder="filter: run id, note, base..." '
             f'aria-label="filter"><select id="status-filter" aria-label="status"><option value="">every status'
             f"</option>{options}</select>{_rollback_link() if can_roll_back else ''}</div>")  # fmt: skip
    header = ["run", "stage", "created", "data window", "base", "eval loss", "vs production", "benchmarks",
              "judge win rate", "health", "taint", "note"]  # fmt: skip
    body = [[f'<a href="{PREFIX}/runs/{escape(r.run_id)}">{escape(r.run_id)}</a>', _stage(r.status),
             escape(r.created_at.replace("T", " ")[:19]), escape(r.window), escape(r.base), number(r.eval_loss, ".4f"),
             _delta(r.vs_production), number(r.pass_rate, ".0%"), number(r.win_rate, ".0%"), escape(r.health),
             _taint(r.taint), escape(r.note)] for r in rows]  # fmt: skip
    marks = [f'data-status="{escape(r.status)}" data-text="{escape(_searchable(r))}"' for r in rows]  # ui.js filters
    listing = table(header, body, marks, "adapters") if rows else (
        '<p class="muted">No adapters yet: train one with python scripts/train_lora.py</p>')  # fmt: skip
    return layout("Adapters", f"<h1>Adapters</h1>{tools}{listing}{_compare_form([r.run_id for r in rows])}")


def _searchable(row: AdapterRow) -> str:
    return " ".join((row.run_id, row.status, row.base, row.note, row.health, row.window)).lower()


def _taint(taint: str) -> str:
    return f'<span class="fail">{escape(taint)}</span>' if taint else "-"


def _rollback_link() -> str:
    return f'<a class="button" href="{PREFIX}/rollback">Roll back…</a>'


def _stage(status: str) -> str:
    return f'<span class="stage {escape(status)}">{"★ " if status == "production" else ""}{escape(status)}</span>'


def _delta(value: float | None) -> str:
    if value is None:
        return "-"
    return f'<span class="{"pass" if value < 0 else "fail"}">{value:+.4f}</span>'


def _compare_form(run_ids: list[str], a: str = "", b: str = "") -> str:
    def select(name: str, chosen: str) -> str:
        options = "".join(f"<option{' selected' if r == chosen else ''}>{escape(r)}</option>" for r in run_ids)
        return f'<select name="{name}" aria-label="{name}">{options}</select>'

    if len(run_ids) < 2:
        return ""
    return (f'<form class="tools" method="get" action="{PREFIX}/compare"><b>Compare</b> {select("a", a)} with '
            f'{select("b", b or run_ids[1])} <button type="submit">Compare</button></form>')  # fmt: skip


def run_page(
    run_id: str, status: str, sections: list[str], actions: str, history: list[Transition] | None = None
) -> str:
    head = f"<h1>Run {escape(run_id)} {_stage(status)}</h1>{actions}"
    return layout(run_id, head + "".join(sections) + _history(history or []))


def _history(transitions: list[Transition]) -> str:
    """The registry's transitions of one adapter (what `promote --history RUN_ID` prints)."""
    if not transitions:
        return ""
    rows = [[escape(t.at.replace("T", " ")[:19]), escape(f"{t.from_status or '(new)'} → {t.to_status}"),
             escape(t.who or "?"), escape(t.command), escape(t.note or t.reason)] for t in transitions]  # fmt: skip
    return "<h2>Registry history</h2>" + table(["when", "moved", "by", "command", "why"], rows, table_id="history")


def run_actions(run_id: str, status: str, can_roll_back: bool) -> str:
    links = [f'<a href="{PREFIX}/runs/{escape(run_id)}/report">report.html</a>']
    if status in ("candidate", "training", "archived"):
        links.insert(0, f'<a class="button" href="{PREFIX}/promote/{escape(run_id)}">Promote to production…</a>')
    if status == "production" and can_roll_back:
        links.insert(0, _rollback_link())
    return f'<div class="tools">{" ".join(links)}</div>'


def live_section(run_id: str, live: LiveRun, charts: str) -> list[str]:
    """A run without an adapter yet: its progress and curves, refreshed by ui.js from `/runs/<id>/live`."""
    return [f'<div id="live" data-live="{PREFIX}/runs/{escape(run_id)}/live"><p id="live-status">'
            f"{escape(live_status(live))}</p></div>", f'<div id="charts">{charts}</div>']  # fmt: skip


def live_status(live: LiveRun) -> str:
    if live.step is None:
        return "Training: no step logged yet."
    since = "" if live.seconds_since_update is None else f"; logs updated {live.seconds_since_update:.0f} s ago"
    evaluated = "" if live.eval_loss is None else f", eval loss {live.eval_loss:.4f}"
    return f"Training: step {live.step}, loss {number(live.loss, '.4f')}{evaluated}{since}."


def sanity_section(asked: list[SanityAnswer], sides: list[SanitySide]) -> str:
    """The sanity prompts with the adapter's, production's and the base model's answers side by side."""
    if not asked:
        return ""
    recorded = table(["side", "answers recorded by"], [[escape(s.title), escape(s.recorded)] for s in sides],
                     table_id="sanity-sides")  # fmt: skip
    cards = [f"<h3>{escape(a.id)}</h3>" + side_by_side([("prompt", _prompt_of(a)),
                                                        *((s.title, _said(s, a)) for s in sides)])
             for a in asked]  # fmt: skip
    return f'<div id="sanity"><h2>Sanity prompts: adapter | production | base</h2>{recorded}{"".join(cards)}</div>'


def _said(side: SanitySide, asked: SanityAnswer) -> str:
    answer = side.answer_to(asked)
    return "(not recorded)" if answer is None else answer or "(empty answer)"


def _prompt_of(answer: SanityAnswer) -> str:
    return answer.messages[-1]["content"] if answer.messages else ""


def compare_page(run_ids: list[str], a: Side | None, b: Side | None) -> str:
    body = ["<h1>Compare two adapters</h1>", _compare_form(run_ids, a.run_id if a else "", b.run_id if b else "")]
    if a is None or b is None:
        return layout("Compare", "".join(body) + '<p class="muted">Choose two adapters.</p>')
    names = [escape(a.run_id), escape(b.run_id)]
    body.append("<h2>Metrics</h2>" + table(["", *names], [[escape(k), escape(x), escape(y)]
                                                            for k, x, y in compared_metrics(a, b)]))  # fmt: skip
    body += [f'<p class="fail">{escape(side.problem)}</p>' for side in (a, b) if side.problem]
    tests = compared_benchmarks(a, b)
    if tests:
        rows = [[escape(i), escape(c), _outcome(x), _outcome(y)] for i, c, x, y in tests]
        body.append("<h2>Benchmarks, test by test</h2>" + table(["test", "category", *names], rows))
    answers = compared_answers(a, b)
    body.append("<h2>Answers to the same prompts</h2>")
    if not answers:
        body.append('<p class="muted">No sanity prompt answered by both evaluations.</p>')
    for x, y in answers:
        body.append(f"<h3>{escape(x.id)}</h3>" + side_by_side([("prompt", _prompt_of(x)), (a.run_id, x.adapter),
                                                                (b.run_id, y.adapter)]))  # fmt: skip
    return layout(f"{a.run_id} vs {b.run_id}", "".join(body))


def _outcome(outcome: CheckOutcome) -> str:
    return f"{verdict(outcome.passed)}<br>{escape(outcome.answer[:200])}"


def side_by_side(columns: Iterable[tuple[str, str]]) -> str:
    return '<div class="side">' + "".join(f"<div><b>{escape(h)}</b>\n{escape(t)}</div>" for h, t in columns) + "</div>"


def promote_page(entry: Entry, current: Entry | None, refusal: str, needs_force: bool, token: str) -> str:
    """The CLI's confirmation block, then the form (note, and --force when only that would allow it)."""
    rows = [["New adapter", escape(entry.run_id)], ["Status change", f"{escape(entry.status)} → production"],
            ["Current production", escape(current.run_id + " (will be archived)") if current else "none"],
            ["Perplexity", number(entry.metrics.get("perplexity"), ".3f")],
            ["Eval loss", number(entry.metrics.get("eval_loss"), ".4f")],
            ["Token accuracy", number(entry.metrics.get("token_accuracy"), ".2%")],
            ["Task pass rate", number(entry.pass_rate, ".1%")]]  # fmt: skip
    block = "<h1>Promote adapter to production</h1>" + table(["", "what changes"], rows)
    if refusal and not needs_force:
        return layout("Promote", block + f'<p class="fail">Cannot promote: {escape(refusal)}</p>')
    force = (f'<p class="fail">{escape(refusal)}</p><label><input type="checkbox" name="force" value="1" required> '
             "promote it anyway (--force: skips the evaluation requirement, never the integrity and vLLM checks)"
             "</label>" if needs_force else "")  # fmt: skip
    form = _action_form(f"{PREFIX}/promote/{escape(entry.run_id)}", token, force, f"Promote {entry.run_id}")
    return layout("Promote", block + form)


def rollback_page(current: Entry | None, target: Entry | None, refusal: str, token: str) -> str:
    if target is None:
        return layout("Roll back", f'<h1>Roll back</h1><p class="fail">Cannot roll back: {escape(refusal)}</p>')
    what = (f"<h1>Roll back</h1><p>{escape(current.run_id) if current else 'no production adapter'} → "
            f"<b>{escape(target.run_id)}</b> (restoring the previous production adapter"
            + (f"; {escape(current.run_id)} is archived" if current else "") + ")</p>")  # fmt: skip
    return layout("Roll back", what + _action_form(f"{PREFIX}/rollback", token, "", f"Roll back to {target.run_id}"))


def _action_form(action: str, token: str, extra: str, label: str) -> str:
    return (f'<form class="act" method="post" action="{action}"><input type="hidden" name="csrf" '
            f'value="{escape(token)}"><label>Note (why; kept in the registry history)<br><textarea name="note" '
            f'rows="2" cols="70"></textarea></label>{extra}<p><button type="submit">{escape(label)}</button> '
            f'<a href="{PREFIX}/">cancel</a></p></form>')  # fmt: skip


def outcome_page(title: str, lines: list[str], ok: bool = True) -> str:
    items = "".join(f'<p class="{"pass" if ok else "fail"}">{escape(line)}</p>' for line in lines if line)
    return layout(
        title, f'<h1>{escape(title)}</h1><div id="outcome">{items}</div><p><a href="{PREFIX}/">Adapters</a></p>'
    )


def memory_page(query: str, found: list[Conversation], matched: int) -> str:
    form = (f'<form class="tools" method="get" action="{PREFIX}/memory"><input type="search" name="q" '
            f'value="{escape(query)}" placeholder="words in a title or message" aria-label="search">'
            '<button type="submit">Search</button></form><p class="muted">The same matching as <code>milton-lora '
            "memory forget --search TEXT --dry-run</code>: the title or any turn, ignoring case.</p>")  # fmt: skip
    rows = [[f'<a href="{PREFIX}/memory/{c.id}">{escape(c.title or "(untitled)")}</a>', escape(origin_of(c)),
             escape(c.created_at.isoformat(timespec="seconds")), str(len(c.messages)),
             escape(_first_user_line(c))] for c in found]  # fmt: skip
    some = f"the {matched} matching conversation" if matched == 1 else f"all {matched} matching conversations"
    forget_all = (f' <a class="button" id="forget-all" href="{PREFIX}/memory/forget?q={quote(query)}">Forget '
                  f"{some}…</a>" if query.strip() and matched else "")  # fmt: skip
    shown = f"<p>{len(found)} shown of {matched} matching conversations, newest first.{forget_all}</p>" + (
        table(["conversation", "source", "started", "messages", "first question"], rows, table_id="found")
        if rows else ""
    )  # fmt: skip
    return layout("Memory", f"<h1>Memory</h1>{form}{shown}")


def _first_user_line(conversation: Conversation) -> str:
    first = next((m.content for m in conversation.messages if m.role == "user"), "")
    return first[:120]


def conversation_page(found: Whereabouts, token: str) -> str:
    """A conversation: where it came from, which adapters learned it and where its text is, its turns with the
    feedback on each reply (and a form to give it), and the way to forget it."""
    conversation = found.conversation
    rows = [("source", found.origin), ("key", conversation.key),
            ("started", conversation.created_at.isoformat(timespec="seconds")),
            ("last message", conversation.last_message_at.isoformat(timespec="seconds"))]  # fmt: skip
    origin = table(["", ""], [[name, escape(value)] for name, value in rows], table_id="origin")
    learners = [[f'<a href="{PREFIX}/runs/{escape(a.run_id)}">{escape(a.run_id)}</a>', _stage(a.status),
                 escape(a.created_at.replace("T", " ")[:19]), escape(a.how), _taint(a.taint)]
                for a in found.learners]  # fmt: skip
    lineage = (table(["adapter", "stage", "created", "how it met it", "taint"], learners, table_id="lineage")
               if learners else '<p class="muted" id="lineage">No registered adapter met it.</p>')  # fmt: skip
    turns = "".join(_turn(conversation.id, n, m, found.feedback.get(n - 1), token)
                    for n, m in enumerate(conversation.messages, start=1))  # fmt: skip
    forget = f'<p><a class="button" href="{PREFIX}/memory/{conversation.id}/forget">Forget this conversation…</a></p>'
    title = conversation.title or "(untitled)"
    return layout(title, f"<h1>{escape(title)}</h1>{forget}<h2>Where it came from</h2>{origin}<h2>Adapters that "
                  f"met it (lineage)</h2>{lineage}{_rows('Where its text is', _held(found.plan), 'held')}"
                  f"<h2>Messages</h2>{turns}")  # fmt: skip


def _held(plan: ForgetPlan) -> list[tuple[str, object]]:
    export = ("no lineage recorded: deleted if it holds the text" if plan.export_parts is None
              else ", ".join(plan.export_parts) or "not in it")  # fmt: skip
    return [("the export", export), ("runs' kept training data", ", ".join(plan.runs) or "none")]


def _turn(conversation_id: int | None, number: int, message: Message, given: Feedback | None, token: str) -> str:
    head = (f'<div class="turn {escape(message.role)}" id="turn-{number}"><b>{number}. {escape(message.role)}</b> '
            f'<span class="muted">{escape(message.created_at.isoformat(timespec="seconds"))}</span>\n'
            f"{escape(message.content)}")  # fmt: skip
    if message.role != "assistant":
        return head + "</div>"
    said = '<p class="muted">No feedback.</p>'
    if given is not None:
        rating = f"rated {given.rating}" if given.rating else "no rating"
        edit = f"\nwanted instead:\n{escape(given.edited)}" if given.edited else ""
        said = (f'<p class="feedback"><b>Feedback</b> {rating} <span class="muted">({escape(given.source)}, '
                f"{escape(given.created_at.isoformat(timespec='seconds'))})</span>{edit}</p>")  # fmt: skip
    form = (f'<details><summary>Give feedback</summary><form class="act" method="post" '
            f'action="{PREFIX}/memory/{conversation_id}/feedback"><input type="hidden" name="csrf" '
            f'value="{escape(token)}"><input type="hidden" name="turn" value="{number}"><label>rating '
            '<select name="rating"><option value="">(none)</option><option value="up">up</option>'
            '<option value="down">down</option></select></label><br><label>The reply as you wanted it (optional)'
            '<br><textarea name="edited" rows="3" cols="70"></textarea></label><p><button type="submit">Save '
            "feedback</button></p></form></details>")  # fmt: skip
    return head + said + form + "</div>"


def forget_page(choice: ForgetChoice, token: str, action: str, back: str, fields: dict[str, str]) -> str:
    """What `memory forget` would take (`choice`) and what that rewrites and taints, then the form that does it:
    posted to `action` with `fields`, or back to `back`."""
    shown = choice.conversations[:FORGET_LISTED]
    listed = table(["number", "key", "started", "turns", "title"],
                   [[str(c.id), escape(c.key), escape(f"{c.created_at:%Y-%m-%d}"), str(len(c.messages)),
                     escape(c.title[:50])] for c in shown], table_id="forget-list")  # fmt: skip
    more = len(choice.conversations) - len(shown)
    listed += f'<p class="muted">and {more} more.</p>' if more else ""
    plan = choice.plan
    effects = [("the store", "their rows deleted for good; only a keyed hash stays, so a re-import skips them"),
               *_held(plan), ("adapters tainted (can never be promoted)", ", ".join(plan.taints) or "none"),
               ("then", "every file under the home is searched for their text: JSON-lines files lose those lines, "
                        "anything else still holding it is named")]  # fmt: skip
    count = len(choice.conversations)
    warning = (f'<p class="fail">Production {escape(plan.production)} learned {"it" if count == 1 else "them"} and '
               "will be tainted: roll back to an untainted adapter or run milton-lora cycle afterwards.</p>"
               if plan.production else "")  # fmt: skip
    hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                     for k, v in {**fields, "csrf": token}.items())  # fmt: skip
    form = (f'<form class="act" method="post" action="{PREFIX}{escape(action)}">{hidden}<p><button type="submit">'
            f'Forget it for good</button> <a href="{PREFIX}{escape(back)}">cancel</a></p></form>')  # fmt: skip
    heading = f"<h1>Forget {count} conversation{'' if count == 1 else 's'}</h1>"
    return layout("Forget", f"{heading}{listed}{_rows('What it will do', effects, 'forget-plan')}{warning}{form}")


def forgotten_page(lines: list[tuple[bool, str]]) -> str:
    """What `memory forget` printed: what was rewritten and tainted, and the warnings."""
    said = "".join(f'<p class="{"fail" if warning else "pass"}">{escape(line)}</p>' for warning, line in lines)
    return layout("Forgotten", f'<h1>Forgotten</h1><div id="outcome">{said}</div><p><a href="{PREFIX}/memory">'
                  f'Memory</a> · <a href="{PREFIX}/">Adapters</a></p>')  # fmt: skip


def login_page(failed: bool, next_path: str) -> str:
    wrong = '<p class="fail">That is not the key.</p>' if failed else ""
    return layout("Sign in", f"<h1>Sign in</h1>{wrong}<p>This dashboard uses the server's API key "
                  f"(MILTON_SERVE_API_KEY).</p><form class=\"act\" method=\"post\" action=\"{PREFIX}/login\">"
                  f'<input type="hidden" name="next" value="{escape(next_path)}"><input type="password" name="key" '
                  'aria-label="API key" autofocus> <button type="submit">Sign in</button></form>')  # fmt: skip


def error_page(message: str) -> str:
    return layout("Error", f'<h1>Not possible</h1><p class="fail" id="error">{escape(message)}</p>'
                  f'<p><a href="{PREFIX}/">Adapters</a></p>')  # fmt: skip


def cycle_page(configs: list[str], days: int, config: str, from_production: bool, plan: CyclePlan | None,
               exported_with: ExportOptions) -> str:  # fmt: skip
    """`cycle --dry-run` in the browser: the flags, then each stage's plan (exporting with `exported_with`)."""
    options = "".join(f"<option{' selected' if name == config else ''}>{escape(name)}</option>" for name in configs)
    form = (f'<form class="tools" method="get" action="{PREFIX}/cycle"><input type="hidden" name="plan" value="1">'
            f'<label>last <input type="number" name="days" min="1" value="{days}" style="width:5rem"> days</label>'
            f'<label>config <select name="config">{options}</select></label><label><input type="checkbox" '
            f'name="from_production" value="1"{" checked" * from_production}> --from-production</label>'
            '<button type="submit">Plan the cycle (dry run)</button></form>')  # fmt: skip
    body = ["<h1>Cycle plan</h1><p>What <code>milton-lora cycle</code> would do with these flags; nothing is "
            "exported, trained, evaluated or promoted.</p>", form]  # fmt: skip
    if plan is not None:
        chosen = ", ".join(f"{k}: {str(v).lower()}" for k, v in asdict(exported_with).items())
        body.append(_rows("Export (dry run: nothing written)", [*plan.export.rows(), ("export.yaml", chosen)],
                          "plan-export"))  # fmt: skip
        if plan.training is not None:
            body.append(_rows("Training plan", plan.training.rows(), "plan-training"))
            body += [f'<p class="fail">{escape(w)}</p>' for w in plan.training.warnings]
        else:
            why = escape(plan.training_problem or "")
            body.append(f'<h2>Training plan</h2><p class="fail">Cannot be planned now: {why}</p>')
        body.append(_rows("Preference stage (after training)", [("preferences", plan.preferences)], "plan-preferences"))
        body.append(_rows("Evaluation of the new run", plan.evaluation, "plan-evaluation"))
    return layout("Cycle plan", "".join(body))


def _rows(title: str, rows: Iterable[tuple[str, object]], table_id: str) -> str:
    cells = [[escape(k), escape(str(v))] for k, v in rows]
    return f"<h2>{escape(title)}</h2>" + table(["what", "plan"], cells, table_id=table_id)
