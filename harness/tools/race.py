"""`cartesim race`: real CLI processes racing on one state file; every round's outcome must be
one that some serial order of its commands gives.

A round: a state file put in a known state, N commands started at once (each a real
``cartesim cps …`` process, or the card as ``cartesim emulate`` serves it, in this process), each
held at its prompt until all are there, then all their codes typed at the same instant. The
answers and the final state are then checked against a ten-line reference model of the card
played in every order of the N commands (not the card OS's code).

Figures: rounds whose outcome no serial order gives, and *extra tries granted*: in the closest
serial order, how many more wrong codes were compared, and how many more tries or unblocks were
left at the end, than that order allows. Both must be 0.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import random
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from cartesim.core import layout
from cartesim.core import sw as swmod
from cartesim.core.apdu import INS_VERIFY, CommandApdu
from cartesim.core.sw import SW
from cartesim.emulator.cards import load_card
from cartesim.harness.control.settings import set_card
from cartesim.harness.stack.slots import SwappableCard
from cartesim.harness.tools import CARTESIM_ARGV, SAMPLE_CPS, IssuedCps

Kind = Literal["verify", "change", "unblock", "served-verify"]
PROMPT_WAIT = 10.0  # seconds for every process to reach its prompt (they start in ~0.3 s each)


# --- the reference model ---------------------------------------------------------------------
@dataclass(frozen=True)
class Card:
    """The card's codes and counters, as the state file holds them."""

    code: str
    pin_left: int
    unblock_left: int
    uses_left: int


@dataclass(frozen=True)
class Command:
    """One participant of a round: what it runs and the codes it types."""

    kind: Kind
    code: str  # the code porteur (verify, change) or the code de déblocage (unblock)
    new: str = ""  # the new code porteur (change, unblock)

    @property
    def wrong_message(self) -> str:
        label = "Code de déblocage" if self.kind == "unblock" else "Code porteur"
        return label + " erroné (reste {} tentative(s))"


def play(card: Card, cmd: Command, issued: IssuedCps) -> tuple[str, Card]:
    """The message ``cmd`` gets from ``card``, and the card after it: what the CLI prints."""
    if cmd.kind == "unblock":
        if card.unblock_left == 0 or card.uses_left == 0:
            return "Carte définitivement bloquée", card
        if cmd.code != issued.unblock_code:
            left = card.unblock_left - 1
            after = replace(card, unblock_left=left)
            return ("Carte définitivement bloquée" if left == 0 else cmd.wrong_message.format(left)), after
        return "Carte débloquée", Card(cmd.new, issued.pin_max, issued.unblock_max, card.uses_left - 1)
    if card.pin_left == 0:
        return "Carte bloquée", card
    if cmd.code != card.code:
        left = card.pin_left - 1
        return ("Carte bloquée" if left == 0 else cmd.wrong_message.format(left)), replace(
            card, pin_left=left
        )
    done = "Code porteur modifié" if cmd.kind == "change" else "Code porteur correct"
    return done, replace(card, code=cmd.new or card.code, pin_left=issued.pin_max)


def _wrong_compares(messages: Sequence[str]) -> int:
    """Answers that tell a wrong code was compared (and how many tries are left)."""
    return sum("erroné" in m for m in messages)


def extra_tries(
    start: Card, commands: Sequence[Command], got: Sequence[str], end: Card, issued: IssuedCps
) -> int:
    """0 if some serial order of ``commands`` gives exactly ``got`` and ``end``; else, in the
    closest order, the wrong codes compared beyond it plus the tries and unblocks left beyond it
    (at least 1: an outcome no serial order gives)."""
    best: int | None = None
    for order in itertools.permutations(range(len(commands))):
        card, messages = start, [""] * len(commands)
        for i in order:
            messages[i], card = play(card, commands[i], issued)
        if messages == list(got) and card == end:
            return 0
        excess = max(0, _wrong_compares(got) - _wrong_compares(messages))
        excess += max(0, end.pin_left - card.pin_left) + max(0, end.unblock_left - card.unblock_left)
        excess += max(0, end.uses_left - card.uses_left)
        best = excess if best is None else min(best, excess)
    return max(1, best or 0)


# --- a round -----------------------------------------------------------------------------------
_SUCCESS = {"verify": "Code porteur correct", "change": "Code porteur modifié", "unblock": "Carte débloquée"}


def _stdin(cmd: Command) -> str:
    if cmd.kind == "verify":
        return f"{cmd.code}\n"
    return f"{cmd.code}\n{cmd.new}\n{cmd.new}\n"


def _argv(cmd: Command, state: Path) -> list[str]:
    name = {"verify": "verify", "change": "change-pin", "unblock": "unblock"}[cmd.kind]
    return [*CARTESIM_ARGV, "cps", name, "--state", str(state)]


def _at_prompt(pid: int) -> bool:
    """Whether ``pid`` sleeps reading a pipe: its stdin, the only pipe a CLI process reads."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "S" and "pipe_read" in wchan


@functools.cache
def _prompts_visible() -> bool:
    """Whether this system shows where a process sleeps (/proc/PID/wchan): tried once on a child
    that reads its stdin. Elsewhere the codes are typed as soon as the processes are started."""
    child = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            if _at_prompt(child.pid):
                return True
            time.sleep(0.01)
        return False
    finally:
        child.kill()
        child.wait()


def _message(cmd: Command, proc: subprocess.CompletedProcess[str]) -> str:
    """What the process said, as the model says it; anything else is returned whole."""
    if proc.returncode == 0 and _SUCCESS[cmd.kind] in proc.stdout + proc.stderr:
        return _SUCCESS[cmd.kind]
    lines = proc.stderr.strip().splitlines()
    if proc.returncode == 1 and lines:
        return lines[-1]
    return f"exit {proc.returncode}: {proc.stderr.strip()}"


class _Served:
    """The card as ``cartesim emulate --state`` serves it (the SwappableCard vpcd talks to), in a
    thread of this process: one VERIFY, once released."""

    def __init__(self, state: Path, cmd: Command) -> None:
        self.holder = SwappableCard(load_card(SAMPLE_CPS, state))
        self.cmd, self.go, self.message = cmd, threading.Event(), ""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.go.wait()
        apdu = CommandApdu(0x00, INS_VERIFY, 0x00, layout.PIN_REF_PORTEUR, self.cmd.code.encode())
        sw = int.from_bytes(self.holder.process(apdu.to_bytes())[-2:], "big")
        left = swmod.tries_left(sw)
        if sw == SW.OK:
            self.message = _SUCCESS["verify"]
        elif left:
            self.message = self.cmd.wrong_message.format(left)
        elif sw == SW.AUTH_BLOCKED or left == 0:
            self.message = "Carte bloquée"
        else:
            self.message = f"status word {sw:04X}"


@dataclass
class Round:
    start: Card
    commands: list[Command]
    messages: list[str] = field(default_factory=list)
    end: Card | None = None
    extra: int = 0
    # Every process was seen waiting at its prompt when the codes were typed (None: this
    # system does not say, through /proc/PID/wchan).
    all_at_prompt: bool | None = None


def _put(state: Path, start: Card, issued: IssuedCps) -> None:
    """The state file of a card in ``start``'s state (written in a session, as any command)."""
    if start.code != issued.code:
        raise ValueError("a round starts from the issued code porteur")
    card = load_card(SAMPLE_CPS, state)
    settings = [
        f"pin_tries_left={start.pin_left}",
        f"unblock_tries_left={start.unblock_left}",
        f"unblock_uses_left={start.uses_left}",
    ]
    set_card(card, settings)


def _read(state: Path) -> Card:
    saved = json.loads(state.read_text())
    pin, unblock = saved["pin"], saved["unblock"]
    return Card(pin["code"], pin["tries_left"], unblock["tries_left"], unblock["uses_left"])


def race_round(folder: Path, start: Card, commands: list[Command], issued: IssuedCps) -> Round:
    """Run one round in ``folder``: the participants released together, the outcome checked."""
    state = folder / "s.json"
    _put(state, start, issued)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTESIM_")}
    procs: list[subprocess.Popen[str] | None] = []
    served: list[_Served | None] = []
    for cmd in commands:
        if cmd.kind == "served-verify":
            procs.append(None)
            served.append(_Served(state, cmd))
            continue
        served.append(None)
        procs.append(
            subprocess.Popen(
                _argv(cmd, state),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    deadline = time.monotonic() + PROMPT_WAIT
    seen: list[bool] = []
    for p in procs:  # every process at its prompt, holding no lock and no copy of the state
        while p is not None and p.poll() is None and _prompts_visible():
            at = _at_prompt(p.pid)
            if at or time.monotonic() > deadline:
                seen.append(at)
                break
            time.sleep(0.005)
    for p, cmd, s in zip(procs, commands, served, strict=True):  # released together
        if s is not None:
            s.go.set()
        elif p is not None and p.stdin is not None:
            try:
                p.stdin.write(_stdin(cmd))
                p.stdin.flush()  # communicate() closes it
            except BrokenPipeError:
                pass  # it already answered (a definitively blocked card asks nothing)
    messages = []
    for p, cmd, s in zip(procs, commands, served, strict=True):
        if s is not None:
            s.thread.join(60)
            messages.append(s.message)
        else:
            assert p is not None
            out, err = p.communicate(timeout=60)
            messages.append(_message(cmd, subprocess.CompletedProcess(p.args, p.returncode, out, err)))
    end = _read(state)
    model_commands = [replace(c, kind="verify") if c.kind == "served-verify" else c for c in commands]
    extra = extra_tries(start, model_commands, messages, end, issued)
    return Round(start, commands, messages, end, extra, all(seen) if _prompts_visible() else None)


# --- the scenarios -----------------------------------------------------------------------------
Scenario = Callable[[random.Random, int, IssuedCps], tuple[Card, list[Command]]]


def wrong_pins(rng: random.Random, n: int, i: IssuedCps) -> tuple[Card, list[Command]]:
    """N wrong codes at once on a fresh card: never more compared than its tries; blocked after."""
    return Card(i.code, i.pin_max, i.unblock_max, i.uses_max), [Command("verify", _wrong(i.code))] * n


def wrong_unblocks(rng: random.Random, n: int, i: IssuedCps) -> tuple[Card, list[Command]]:
    """N wrong codes de déblocage at once on a blocked card: every one counted."""
    bad = _wrong(i.unblock_code)
    return Card(i.code, 0, i.unblock_max, i.uses_max), [Command("unblock", bad, "2468")] * n


def right_against_wrong(rng: random.Random, n: int, i: IssuedCps) -> tuple[Card, list[Command]]:
    """The right code and a wrong one at once, with one try left."""
    cmds = [Command("verify", i.code), Command("verify", _wrong(i.code))]
    rng.shuffle(cmds)
    return Card(i.code, 1, i.unblock_max, i.uses_max), cmds


def emulate_against_cli(rng: random.Random, n: int, i: IssuedCps) -> tuple[Card, list[Command]]:
    """The card as emulate serves it and N-1 CLI processes, wrong codes all, on one state file."""
    return Card(i.code, i.pin_max, i.unblock_max, i.uses_max), [
        Command("served-verify", _wrong(i.code)),
        *[Command("verify", _wrong(i.code))] * (n - 1),
    ]


def mixed(rng: random.Random, n: int, i: IssuedCps) -> tuple[Card, list[Command]]:
    """Right and wrong codes, PIN changes and unblocks, on a card in a random state."""
    start = rng.choice(
        [
            Card(i.code, i.pin_max, i.unblock_max, i.uses_max),
            Card(i.code, 1, i.unblock_max, i.uses_max),
            Card(i.code, 0, i.unblock_max, i.uses_max),
            Card(i.code, 0, 1, i.uses_max),
            Card(i.code, 0, i.unblock_max, 1),
        ]
    )
    choices = [
        Command("verify", i.code),
        Command("verify", _wrong(i.code)),
        Command("change", i.code, "5678"),
        Command("change", _wrong(i.code), "5678"),
        Command("unblock", i.unblock_code, "8642"),
        Command("unblock", _wrong(i.unblock_code), "8642"),
    ]
    return start, [rng.choice(choices) for _ in range(n)]


SCENARIOS: dict[str, Scenario] = {
    "wrong-pins": wrong_pins,
    "wrong-unblocks": wrong_unblocks,
    "right-against-wrong": right_against_wrong,
    "emulate-against-cli": emulate_against_cli,
    "mixed": mixed,
}


def _wrong(code: str) -> str:
    return str((int(code[0]) + 1) % 10) + code[1:]


@dataclass
class RaceReport:
    rounds: int = 0
    runs: int = 0  # participants in all (CLI processes, and emulate's served card)
    per_scenario: dict[str, int] = field(default_factory=dict)
    not_serial: list[str] = field(default_factory=list)  # rounds no serial order explains
    extra_tries: int = 0
    released_at_prompt: int = 0  # rounds whose processes were all seen at their prompt
    seconds: float = 0.0


def run(
    rounds: int,
    processes: int,
    seed: int = 0,
    scenarios: Sequence[str] = tuple(SCENARIOS),
    say: Callable[[str], None] = lambda _: None,
) -> RaceReport:
    """``rounds`` rounds of each scenario, ``processes`` participants each (2 for
    right-against-wrong)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible rounds, not cryptography
    issued = IssuedCps.of()
    report = RaceReport()
    started = time.perf_counter()
    for name in scenarios:
        for k in range(rounds):
            start, commands = SCENARIOS[name](rng, processes, issued)
            with tempfile.TemporaryDirectory(prefix="cartesim-race-") as folder:
                r = race_round(Path(folder), start, commands, issued)
            report.rounds += 1
            report.runs += len(commands)
            report.per_scenario[name] = report.per_scenario.get(name, 0) + 1
            report.extra_tries += r.extra
            report.released_at_prompt += r.all_at_prompt is True
            if r.extra:
                report.not_serial.append(
                    f"{name} round {k}: from {start}, {[c.kind + ' ' + c.code for c in commands]} "
                    f"gave {r.messages}, left {r.end}"
                )
        say(f"{name}: {rounds} rounds")
    report.seconds = time.perf_counter() - started
    return report


def summary(r: RaceReport, processes: int) -> str:
    lines = [
        f"race: {r.rounds} rounds of up to {processes} processes ({r.runs} CLI runs and served cards; "
        f"{r.released_at_prompt} rounds released with every process at its prompt), "
        f"{len(r.not_serial)} round(s) no serial order explains, extra tries granted: {r.extra_tries} "
        f"({r.seconds:.0f} s)",
        "  " + ", ".join(f"{name} {n}" for name, n in r.per_scenario.items()),
    ]
    lines += [f"  {line}" for line in r.not_serial[:20]]
    return "\n".join(lines)
