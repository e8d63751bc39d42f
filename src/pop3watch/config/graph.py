"""Rules across monitors: unique names and a dependency graph without holes or cycles.

Job: pure functions over names and ``depends_on`` lists, returning every problem with the
monitor (and list item) it belongs to. Rule: no locations here; the loader turns indices
into file lines and ``Pop3WatchConfig`` into a validation message, from the same result.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GraphProblem:
    """``monitor`` indexes the monitor list; ``item`` the entry of its ``depends_on``
    (None for a ``name`` problem); ``related`` the other monitor involved, if any."""

    monitor: int
    field: str
    item: int | None
    message: str
    related: int | None = None


def _suggest(name: str, known: Sequence[str]) -> str:
    folded = [other for other in known if other.casefold() == name.casefold()]
    close = folded or difflib.get_close_matches(name, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_graph(
    names: Sequence[str | None], depends_on: Sequence[Sequence[str]]
) -> list[GraphProblem]:
    """Problems with names and dependencies. ``names[i]`` is None for a monitor without a
    usable name (reported elsewhere); such monitors take no part in these rules.

    Names are unique ignoring letter case, because they also identify monitors in URLs
    and databases whose collation may ignore case; ``depends_on`` must match exactly.
    """
    problems: list[GraphProblem] = []
    first_by_folded: dict[str, int] = {}
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        if name is None:
            continue
        first = first_by_folded.setdefault(name.casefold(), i)
        if first != i:
            other = names[first]
            detail = "" if other == name else f" (differs from '{other}' only in letter case)"
            problems.append(
                GraphProblem(i, "name", None, f"duplicate monitor name '{name}'{detail}", first)
            )
        else:
            index[name] = i

    known = list(index)
    edges: dict[int, list[tuple[int, int]]] = {}
    for i, deps in enumerate(depends_on):
        if names[i] is None:
            continue
        for item, target in enumerate(deps):
            if target == names[i]:
                problems.append(
                    GraphProblem(i, "depends_on", item, "a monitor cannot depend on itself")
                )
            elif target not in index:
                problems.append(
                    GraphProblem(
                        i,
                        "depends_on",
                        item,
                        f"depends on unknown monitor '{target}'"
                        + _suggest(target, [k for k in known if k != names[i]]),
                    )
                )
            else:
                edges.setdefault(i, []).append((index[target], item))
    problems.extend(_cycles(names, edges))
    return problems


def _cycles(
    names: Sequence[str | None], edges: dict[int, list[tuple[int, int]]]
) -> list[GraphProblem]:
    """One problem per distinct cycle, found by an iterative depth-first search (a long
    dependency chain must not hit the recursion limit). The problem sits on the cycle
    member that comes first in the file, at its ``depends_on`` entry leading around it."""
    white, grey, black = 0, 1, 2
    colour = [white] * len(names)
    seen: set[frozenset[int]] = set()
    problems: list[GraphProblem] = []
    for root in range(len(names)):
        if colour[root] != white:
            continue
        colour[root] = grey
        path = [root]
        stack = [iter(edges.get(root, []))]
        while stack:
            step = next(stack[-1], None)
            if step is None:
                colour[path.pop()] = black
                stack.pop()
                continue
            target, _ = step
            if colour[target] == white:
                colour[target] = grey
                path.append(target)
                stack.append(iter(edges.get(target, [])))
            elif colour[target] == grey:
                members = path[path.index(target) :]
                if frozenset(members) not in seen:
                    seen.add(frozenset(members))
                    problems.append(_cycle_problem(names, edges, members))
    return problems


def _cycle_problem(
    names: Sequence[str | None], edges: dict[int, list[tuple[int, int]]], members: list[int]
) -> GraphProblem:
    start = members.index(min(members))
    ordered = members[start:] + members[:start]
    following = ordered[1] if len(ordered) > 1 else ordered[0]
    item = next(item for target, item in edges[ordered[0]] if target == following)
    route = " -> ".join(str(names[i]) for i in [*ordered, ordered[0]])
    return GraphProblem(ordered[0], "depends_on", item, f"dependency cycle: {route}")
