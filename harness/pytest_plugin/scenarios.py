"""pytest plugin (entry point ``pytest11`` ``cartesim-scenarios``): scenario files as tests, where
a project opts in.

Which files: those of the ``cartesim_scenarios`` ini option (globs relative to the rootdir; no
default: a project that does not set it has no file collected, whatever its folders hold), or
of ``--cartesim-scenarios GLOB`` (repeatable) instead. They are collected when pytest walks them
or is given them, and added to the run when pytest runs its ``testpaths`` (a plain ``pytest`` or
``tox``), even if they live outside those paths.

Each scenario runs on the transport of ``--cartesim-transport``. In pcsc mode the scenario's
cards go in the session's vpcd slots: a card of the kind already there is swapped in place, with
no wait for pcscd. A failure shows the runner's report: every step so far, expected against
actual, the APDUs of the step. This plugin works without the fixtures one (``-p no:cartesim``),
and imports the scenario runner (pydantic, yaml, the emulator) only when a scenario runs.
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cartesim.harness.pytest_plugin import shared

if TYPE_CHECKING:
    from cartesim.harness.scenario.readers import PlaceCard

INI = "cartesim_scenarios"
MARKER = "cartesim_scenario"


class ScenarioFailed(Exception):
    """A step did not go as the scenario expects; the message is the runner's whole output."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        INI, type="linelist", default=[], help="cartesim scenario files to collect (globs from the rootdir)"
    )
    shared.add_options(parser)
    group = parser.getgroup(shared.GROUP)
    group.addoption(
        "--cartesim-scenarios",
        action="append",
        metavar="GLOB",
        help=f"scenario files to collect, relative to the rootdir (repeatable; replaces the {INI} ini)",
    )


_FILES = pytest.StashKey[frozenset[Path]]()


def _files(config: pytest.Config) -> frozenset[Path]:
    """The scenario files of this session (globbed once)."""
    if _FILES not in config.stash:
        globs: list[str] = config.getoption("--cartesim-scenarios") or config.getini(INI)
        found = {
            Path(p).resolve() for g in globs for p in glob.glob(str(config.rootpath / g), recursive=True)
        }
        config.stash[_FILES] = frozenset(p for p in found if p.is_file())
    return config.stash[_FILES]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: a cartesim scenario file run as a test")
    if config.args_source != pytest.Config.ArgsSource.TESTPATHS or not _files(config):
        return  # explicit paths (or the current folder): run what was asked, nothing more
    walked = [(config.invocation_params.dir / a.split("::")[0]).resolve() for a in config.args]
    extra = sorted(f for f in _files(config) if not any(f == w or w in f.parents for w in walked))
    config.args.extend(str(f) for f in extra)


def pytest_sessionstart(session: pytest.Session) -> None:
    shared.start_session(session.config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    shared.finish_session(session.config)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix in (".yaml", ".yml") and file_path.resolve() in _files(parent.config):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        # The file is read when the test runs: a bad scenario is one failed test, not a
        # collection error that stops the whole session.
        mode: str = self.config.getoption("--cartesim-transport")
        yield ScenarioItem.from_parent(self, name=self.path.stem, callobj=_test_function(self.path, mode))


def _test_function(path: Path, mode: str) -> Callable[..., None]:
    """The item's body; its parameters are the fixtures it needs (pytest reads them)."""
    if mode == "pcsc":

        def in_pcscd(request: pytest.FixtureRequest) -> None:
            # The session's vpcd slots, cards of the same kind swapped in place: no wait for pcscd.
            session = shared.card_session(request.config)
            session.ensure_pcscd()
            _run(path, mode, lambda number, card: session.insert(card, number))

        return in_pcscd

    def in_process() -> None:
        _run(path, mode)

    return in_process


def _run(path: Path, mode: str, place: PlaceCard | None = None) -> None:
    from cartesim.harness.scenario.run import run_scenario

    lines: list[str] = []
    result = run_scenario(path, mode, say=lines.append, place=place)
    if not result.passed:
        raise ScenarioFailed("\n".join(lines))


class ScenarioItem(pytest.Function):
    """A pytest.Function (so fixtures work as for any test) whose body plays one scenario."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_marker(MARKER)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"scenario {self.path.name}"

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        from cartesim.core.errors import InputError, TransportError

        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        if isinstance(excinfo.value, InputError):
            return f"bad scenario: {excinfo.value}"
        if isinstance(excinfo.value, TransportError):
            return f"no card to talk to: {excinfo.value}"
        return super().repr_failure(excinfo)
