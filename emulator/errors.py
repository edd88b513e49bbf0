"""Bad input: one line naming the file, the field and the problem."""

from __future__ import annotations


class InputError(Exception):
    """A profile, state or scenario file that cannot be used. ``str()`` is the one-line message."""

    def __init__(self, source: str, where: str, problem: str) -> None:
        self.source, self.where, self.problem = source, where, problem
        super().__init__(f"{source}: {where}: {problem}" if where else f"{source}: {problem}")
