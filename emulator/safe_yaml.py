"""YAML loading for untrusted input files: bounded size, UTF-8, no aliases, no duplicate keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cartesim.core.errors import InputError

MAX_BYTES = 1 << 20  # profiles and scenarios are a few KiB; refuse big files before parsing


class _Loader(yaml.SafeLoader):
    """SafeLoader without anchors/aliases (no alias bombs) and with duplicate keys refused."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(None, None, "aliases are not allowed", event.start_mark)
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise yaml.constructor.ConstructorError(None, None, "anchors are not allowed", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: Any) -> Any:
        """A date-looking scalar that is no date (2025-02-30, month 13) stays text: the schema
        then names the field and the problem, in one line."""
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def load_yaml(path: Path | str) -> dict[str, Any]:
    """The mapping at the top of a YAML file, or InputError with a one-line reason."""
    source = str(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise InputError(source, "", e.strerror or str(e)) from None
    if len(raw) > MAX_BYTES:
        raise InputError(source, "", f"file larger than {MAX_BYTES // 1024} KiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(source, "", f"not UTF-8 text (byte {e.start})") from None
    if not text.strip():
        raise InputError(source, "", "empty file")
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}" if mark else ""
        raise InputError(source, where, f"invalid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise InputError(source, "", f"invalid YAML: {e}") from None
    if data is None:
        raise InputError(source, "", "empty file")
    if not isinstance(data, dict):
        raise InputError(source, "", "the file must hold a mapping (key: value) at the top")
    return data
