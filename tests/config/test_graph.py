"""Rules across monitors as a pure function of names and dependencies."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from pop3watch.config.graph import check_graph


def test_a_clean_graph_has_no_problems() -> None:
    assert check_graph(["gw", "a", "b"], [[], ["gw"], ["gw", "a"]]) == []


def test_duplicate_names_ignore_case_and_point_at_the_first() -> None:
    (problem,) = check_graph(["mail", "x", "Mail"], [[], [], []])
    assert (problem.monitor, problem.field, problem.related) == (2, "name", 0)
    assert "letter case" in problem.message


def test_unknown_dependencies_suggest_a_close_name() -> None:
    (problem,) = check_graph(["gateway", "a"], [[], ["gatewya"]])
    assert (problem.monitor, problem.field, problem.item) == (1, "depends_on", 0)
    assert problem.message == "depends on unknown monitor 'gatewya' (did you mean 'gateway'?)"


def test_a_monitor_is_not_suggested_as_its_own_dependency() -> None:
    (problem,) = check_graph(["mail-3"], [["mail-4"]])
    assert problem.message == "depends on unknown monitor 'mail-4'"


def test_a_monitor_without_a_usable_name_is_left_to_its_own_error() -> None:
    assert check_graph([None, "a"], [["ghost"], []]) == []
    # ...but depending on it is still an unknown dependency
    (problem,) = check_graph([None, "a"], [[], ["bad name"]])
    assert problem.monitor == 1


def test_each_cycle_is_reported_once_with_its_path() -> None:
    problems = check_graph(["a", "b", "c", "d", "e"], [["b"], ["c"], ["a"], ["e"], ["d"]])
    assert [(p.monitor, p.item, p.message) for p in problems] == [
        (0, 0, "dependency cycle: a -> b -> c -> a"),
        (3, 0, "dependency cycle: d -> e -> d"),
    ]


def test_the_cycle_entry_is_the_one_leading_around_it() -> None:
    (problem,) = check_graph(["a", "b", "c"], [["c", "b"], [], ["a"]])
    assert (problem.monitor, problem.item) == (0, 0)
    assert problem.message == "dependency cycle: a -> c -> a"


def test_a_long_chain_does_not_hit_the_recursion_limit() -> None:
    count = 20_000
    names = [f"m{i}" for i in range(count)]
    depends = [[f"m{i + 1}"] for i in range(count - 1)] + [["m0"]]
    (problem,) = check_graph(names, depends)
    assert problem.message.startswith("dependency cycle: m0 -> m1 -> m2")
    assert check_graph(names, [*depends[:-1], []]) == []


def _has_cycle(edges: dict[int, set[int]], size: int) -> bool:
    """Brute force: some node reaches itself."""
    for start in range(size):
        seen, frontier = set(), set(edges.get(start, ()))
        while frontier:
            if start in frontier:
                return True
            seen |= frontier
            frontier = {t for n in frontier for t in edges.get(n, ())} - seen
    return False


@given(
    st.integers(1, 8).flatmap(
        lambda n: st.lists(st.lists(st.integers(0, n - 1), max_size=3), min_size=n, max_size=n)
    )
)
def test_cycles_are_found_exactly_when_there_are_cycles(targets: list[list[int]]) -> None:
    size = len(targets)
    names = [f"m{i}" for i in range(size)]
    depends = [[names[t] for t in ts] for ts in targets]
    problems = check_graph(names, depends)
    edges = {i: {t for t in ts if t != i} for i, ts in enumerate(targets)}
    cycles = [p for p in problems if p.message.startswith("dependency cycle")]
    assert bool(cycles) == _has_cycle(edges, size)
    selfish = [p for p in problems if p.message == "a monitor cannot depend on itself"]
    assert len(selfish) == sum(ts.count(i) for i, ts in enumerate(targets))
    for problem in cycles:  # the path is a real cycle through real edges
        route = problem.message.removeprefix("dependency cycle: ").split(" -> ")
        assert route[0] == route[-1]
        for here, there in pairwise(route):
            assert int(there[1:]) in edges[int(here[1:])]
