"""`cartesim demo | bench | fuzz | crash-test | race`: the main job, and the figures of speed and safety."""

from __future__ import annotations

import json
import math

import click

from cartesim.core.errors import InputError
from cartesim.harness.cli import ExitCode
from cartesim.harness.cli.options import json_option
from cartesim.harness.cli.schema import format_name


@click.command("demo")
@click.option(
    "--transport",
    type=click.Choice(["auto", "pcsc", "direct"]),
    default="auto",
    show_default=True,
    help="auto: through pcscd + vpcd when they can be had, else in-process.",
)
def demo_cmd(transport: str) -> None:
    """The public unblock guide's story on the sample CPS: three wrong codes, unblock, Lire CPS."""
    from cartesim.harness.tools.demo import main as demo_main

    demo_main(transport, say=click.echo)


def _a_number(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if math.isnan(value):  # a range lets nan through: it compares false to both ends
        raise click.BadParameter("nan is not in the range 0.1<=x<=3600")
    return value


@click.command("bench")
@json_option
@click.option(
    "--seconds",
    type=click.FloatRange(0.1, 3600),
    callback=_a_number,
    default=2.0,
    show_default=True,
    help="Duration of each throughput run (0.1 to 3600).",
)
def bench_cmd(as_json: bool, seconds: float) -> None:
    """Measure throughput and latency: in-process, through pcscd, against the stack's floor."""
    from dataclasses import asdict

    from cartesim.harness.tools import bench

    figures = bench.run(seconds, say=lambda m: click.echo(m, err=True))
    doc = {"format": format_name("bench"), **asdict(figures)}
    click.echo(json.dumps(doc, indent=2) if as_json else bench.table(figures), nl=not as_json)


@click.command("fuzz")
@click.option(
    "--cases",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="How many APDUs to send in all.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the generator (runs are reproducible).",
)
def fuzz_cmd(cases: int, seed: int) -> None:
    """Fuzz the card OS against a reference model: every APDU's status word, data, codes and
    counters must be the model's, on each card profile, some runs on a state file."""
    from cartesim.harness.tools import fuzz

    result = fuzz.run(cases, seed)
    click.echo(fuzz.summary(result))
    if result.failure_count:
        raise SystemExit(ExitCode.REFUSED)


@click.command("crash-test")
@click.option(
    "--kills",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="How many times to kill -9 the emulator.",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the kill times."
)
def crash_test_cmd(kills: int, seed: int) -> None:
    """kill -9 `cartesim emulate --state` during a storm of wrong codes and unblocks; check that
    the state always loads and never grants more tries than the card had left (needs pcscd)."""
    from cartesim.harness.tools import crashtest

    result = crashtest.run(kills, seed, say=lambda m: click.echo(m, err=True))
    click.echo(crashtest.summary(result))
    if result.violations:
        raise SystemExit(ExitCode.REFUSED)


@click.command("race")
@click.option("--rounds", default=200, show_default=True, help="Rounds of each scenario (1 to 100,000).")
@click.option("--processes", default=5, show_default=True, help="Processes racing in each round (2 to 7).")
@click.option(
    "--seed", default=0, show_default=True, help="Seed of the mixed rounds (runs are reproducible)."
)
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    help="Only these scenarios (wrong-pins, wrong-unblocks, right-against-wrong, emulate-against-cli, "
    "mixed); repeatable. Default: all.",
)
def race_cmd(rounds: int, processes: int, seed: int, scenarios: tuple[str, ...]) -> None:
    """Race real `cartesim cps` processes on one state file (and emulate's served card); check
    every round against every serial order of its commands. Prints the rounds raced and the
    extra tries granted (0 expected); exit 1 if any round has an outcome no serial order gives."""
    from cartesim.harness.tools import race

    if not 1 <= rounds <= 100_000:
        raise InputError("--rounds", "", "expected 1 to 100,000")
    if not 2 <= processes <= 7:
        raise InputError("--processes", "", "expected 2 to 7 (every order of them is checked)")
    unknown = sorted(set(scenarios) - set(race.SCENARIOS))
    if unknown:
        raise InputError("--scenario", unknown[0], f"unknown (scenarios: {', '.join(race.SCENARIOS)})")
    result = race.run(
        rounds, processes, seed, scenarios or tuple(race.SCENARIOS), say=lambda m: click.echo(m, err=True)
    )
    click.echo(race.summary(result, processes))
    if result.not_serial:
        raise SystemExit(ExitCode.REFUSED)
