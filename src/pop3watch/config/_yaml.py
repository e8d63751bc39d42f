"""Safe YAML that remembers where every key and list item came from.

Job: turn text into plain Python data plus a map from data paths (``("monitors", 2,
"port")``) to 1-based lines, and collect what YAML itself gets wrong (duplicate keys,
unknown tags), so validation errors can point at a line. Rule: only the safe constructor
builds values (no Python objects from tags), alias expansion is bounded (no "billion
laughs"), and a recursive alias is an error instead of a hang.

One YAML 1.1 wart is undone on purpose: a plain ``14:30`` is the base-60 integer 870 to
PyYAML; here any plain number containing ``:`` stays the string that was written, because
in this file such values are times of day.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Loc = tuple[str | int, ...]

#: libyaml's parser when PyYAML was built with it (ten times faster on big files, same
#: marks); either way the safe constructor builds the values.
LOADER: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(
    yaml, "CSafeLoader", yaml.SafeLoader
)

#: Nodes built again through aliases; a document's own nodes do not count, so size alone
#: is never refused, while "billion laughs" stops here.
MAX_REPEATS = 100_000
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_SEXAGESIMAL = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


@dataclass(frozen=True, slots=True)
class YamlProblem:
    line: int | None
    loc: Loc
    message: str


class YamlSyntaxError(Exception):
    """The text is not one YAML document; ``line`` is 1-based when known."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass
class Located:
    """Data read from YAML: ``lines`` maps a path to the line of its key (or list item)."""

    data: Any
    root_line: int
    lines: dict[Loc, int] = field(default_factory=dict)
    problems: list[YamlProblem] = field(default_factory=list)
    #: Paths whose value could not be built (it is None in ``data``): validation errors
    #: there would only repeat the YAML problem.
    broken: set[Loc] = field(default_factory=set)

    def line_of(self, loc: Loc) -> int:
        """The line of the deepest recorded prefix of ``loc`` (a missing key is reported
        where its parent mapping starts)."""
        for end in range(len(loc), 0, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return self.root_line

    def has(self, loc: Loc) -> bool:
        return loc in self.lines

    def add(self, line: int | None, loc: Loc, message: str, *, broken: bool = True) -> None:
        """Record a problem; ``broken`` when the value at ``loc`` could not be built."""
        self.problems.append(YamlProblem(line, loc, message))
        if broken:
            self.broken.add(loc)


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _syntax_error(exc: yaml.YAMLError, text: str) -> YamlSyntaxError:
    """Describe without the snippet of the offending line a mark would print: that line
    may hold a value we never echo."""
    if isinstance(exc, yaml.composer.ComposerError) and exc.problem_mark is not None:
        message = "the file must hold one YAML document; another one starts here"
        return YamlSyntaxError(exc.problem_mark.line + 1, message)
    if isinstance(exc, yaml.MarkedYAMLError):
        # The problem mark is where the parser gave up; the context mark is where the
        # construct it was reading began (an unclosed bracket): give both.
        mark = exc.problem_mark or exc.context_mark
        message = f"YAML syntax error: {exc.problem or exc.context or 'invalid YAML'}"
        if exc.context and exc.problem and exc.context_mark is not None:
            message += f" ({exc.context} started at line {exc.context_mark.line + 1})"
        return YamlSyntaxError(None if mark is None else mark.line + 1, message)
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        return YamlSyntaxError(line, f"YAML syntax error: {exc.reason}")
    return YamlSyntaxError(None, "YAML syntax error")


def read_yaml(text: str) -> Located | None:
    """Compose ``text`` (one document) and build it; None for an empty document.

    Raises :class:`YamlSyntaxError` when the text is not YAML or holds several documents.
    """
    try:
        loader = LOADER(text)  # the reader rejects control characters right here
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, text) from None
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise _syntax_error(exc, text) from None
        if node is None:
            return None
        builder = _Builder(loader)
        located = Located(data=None, root_line=_line(node))
        located.data = builder.build(node, (), located)
        return located
    finally:
        loader.dispose()


class _Builder:
    def __init__(self, loader: yaml.SafeLoader | yaml.CSafeLoader) -> None:
        self._loader = loader
        self._active: set[int] = set()
        self._built: set[int] = set()
        self._repeats = 0

    def build(self, node: Node, loc: Loc, out: Located) -> Any:
        if id(node) in self._built:
            self._repeats += 1
            if self._repeats == MAX_REPEATS:
                out.add(_line(node), (), "document too large: aliases expand too far")
            if self._repeats >= MAX_REPEATS:
                return None
        self._built.add(id(node))
        if id(node) in self._active:
            out.add(_line(node), loc, "recursive alias")
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, MappingNode) and node.tag == _MAP:
                return self._mapping(node, loc, out)
            if isinstance(node, SequenceNode) and node.tag == _SEQ:
                return self._sequence(node, loc, out)
            if isinstance(node, ScalarNode) and node.tag in _SEXAGESIMAL and ":" in node.value:
                return node.value
            return self._construct(node, loc, out)
        finally:
            self._active.discard(id(node))

    def _construct(self, node: Node, loc: Loc, out: Located) -> Any:
        try:
            return self._loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            problem = getattr(exc, "problem", None) or "cannot read this value"
            out.add(_line(node), loc, str(problem))
            return None

    def _sequence(self, node: SequenceNode, loc: Loc, out: Located) -> list[Any]:
        items = []
        for i, child in enumerate(node.value):
            out.lines[(*loc, i)] = _line(child)
            items.append(self.build(child, (*loc, i), out))
        return items

    def _mapping(self, node: MappingNode, loc: Loc, out: Located) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        merges = [value for key, value in node.value if key.tag == _MERGE]
        for merge in merges:
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            # Earlier mappings in a merge list win, so apply them last.
            for source in reversed(sources):
                merged = self.build(source, loc, out)
                if isinstance(merged, dict):
                    result.update(merged)
                else:
                    out.add(_line(source), loc, "a merge key (<<) needs a mapping", broken=False)
        first_line: dict[Hashable, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            key = self._key(key_node, loc, out)
            if key is None:
                continue
            line = _line(key_node)
            if key in first_line:
                message = f"duplicate key '{key}' (first at line {first_line[key]})"
                out.add(line, (*loc, key), message, broken=False)
            else:
                first_line[key] = line
            out.lines[(*loc, key)] = line
            result[key] = self.build(value_node, (*loc, key), out)
        return result

    def _key(self, node: Node, loc: Loc, out: Located) -> str | int | None:
        if not isinstance(node, ScalarNode):
            out.add(_line(node), loc, "keys must be plain words", broken=False)
            return None
        key = self._construct(node, loc, out)
        if isinstance(key, bool) or not isinstance(key, str | int):
            # true/false/null/dates as keys are slips; their text is what was meant
            return str(node.value)
        return key
