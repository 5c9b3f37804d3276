"""`make demo`: the documented weekly loop, for real, on a tiny local model in a throwaway home.

Every step runs the same command line a user types (the documented `scripts/*.py` when this is a source
checkout), as its own
process with MILTON_HOME set to the demo folder, so the demo proves the guide. The folder is marked
as a demo home; an existing folder without the mark is refused, so a mistyped --home never wipes
real memory or adapters.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
from rich.console import Console
from rich.rule import Rule

from milton_lora.demo.samples import write_cpu_config, write_sample_exports
from milton_lora.demo.tiny_model import build_tiny_model
from milton_lora.errors import MiltonError
from milton_lora.settings import Settings, checkout_scripts_dir, shipped

MARK = ".milton-demo"
SCRIPTS = checkout_scripts_dir()


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


class Demo:
    def __init__(self, settings: Settings, port: int, console: Console):
        self.home, self.port, self.console = settings.home, port, console
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
        return max(p.name for p in (self.home / "adapters").iterdir() if p.is_dir() and not p.name.startswith("."))

    def chat(self, question: str) -> None:
        reply = httpx.post(
            f"http://127.0.0.1:{self.port}/v1/chat/completions",
            json={"model": "milton", "messages": [{"role": "user", "content": question}], "max_tokens": 24},
            timeout=120,
        ).json()
        answer = reply["choices"][0]["message"]["content"]
        note = "(a tiny random model: replies are noise, often blank; the plumbing is the point)"
        self.console.print(f"[bold]you[/]: {question}\n[bold]milton[/]: {answer!r}  [dim]{note}[/]", highlight=False)


def run_demo(settings: Settings, port: int, console: Console) -> None:
    home = settings.home
    prepare_home(home)
    demo = Demo(settings, port, console)
    console.print(f"[bold]Milton LoRA demo[/] in {home} (throwaway; your real memory and adapters are untouched)")

    from milton_lora.libraries import quiet_libraries

    quiet_libraries()
    model_dir = build_tiny_model(home / "models" / "base" / "tiny")
    console.print(f"Built a tiny Llama-architecture model with a locally trained tokenizer: {model_dir}")
    samples = write_sample_exports(home / "samples", datetime.now(timezone.utc))
    write_cpu_config(home / "training/configs/lora_light.yaml", model_dir, shipped("configs", "lora_light.yaml"))
    (home / "training/configs/serve.yaml").write_text(f"port: {port}\n")

    for fmt, path in samples.items():
        demo.step(f"Import {fmt} history", "Conversation history from elsewhere goes into the local SQLite store.",
                  command("memory", "import", str(path)))  # fmt: skip
    demo.step("Export the last 30 days", "Redacted train/test split; see the redaction counts.",
              command("export_training_data", "--days", "30"))  # fmt: skip
    demo.step("Train adapter A", "LoRA on assistant tokens only; lora_light sized for a CPU.",
              command("train_lora", "--config", "training/configs/lora_light.yaml"))  # fmt: skip
    first = demo.latest_run()
    demo.step("Evaluate A", "Held-out metrics vs the base model, sanity prompts, 20 task benchmarks.",
              command("eval_lora", "--run-id", first, "--max-new-tokens", "32"))  # fmt: skip
    demo.step("Promote A to production", "The confirmation block; --force because a tiny model fails benchmarks.",
              command("promote_adapter", first, "--to-production", "--force"))  # fmt: skip
    try:
        demo.step("Start the server", "OpenAI-compatible API; `milton` is the production adapter.",
                  [sys.executable, "-m", "milton_lora", "server", "start"])  # fmt: skip
        demo.chat("What's on my calendar today?")
        time.sleep(1)  # a distinct run id for adapter B
        demo.step("Train adapter B", "Next week's run.", command("train_lora", "--config", "lora_light.yaml"))
        second = demo.latest_run()
        demo.step("Evaluate B", "Compared with production A as well.",
                  command("eval_lora", "--run-id", second, "--max-new-tokens", "32"))  # fmt: skip
        demo.step("Promote B", "Hot swap: the running server switches `milton` to B without a restart.",
                  command("promote_adapter", second, "--to-production", "--force"))  # fmt: skip
        demo.chat("What's on my calendar today?")
        demo.step("Roll back", "A is production again, on the running server too.",
                  command("promote_adapter", "--rollback", "--force"))  # fmt: skip
        demo.chat("What's on my calendar today?")
        demo.step("Registry", "Newest last; ★ marks production.", command("promote_adapter", "--list"))
        demo.step("Report", "A self-contained HTML page for run B.",
                  [sys.executable, "-m", "milton_lora", "report", second])  # fmt: skip
    finally:
        demo.step("Stop the server", "", [sys.executable, "-m", "milton_lora", "server", "stop"])
    console.print(Rule(f"[bold green]done in {time.time() - demo.started:.0f}s[/]"))
    console.print(
        f"Look at: {home}/training/data/exported/ (redacted data), {home}/adapters/ (adapters), "
        f"{home}/runs/<run_id>/ (logs, metrics.json, report.html), {home}/models/registry.json.\n"
        f"TensorBoard: tensorboard --logdir {home}/runs"
    )
