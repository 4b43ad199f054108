"""Task groups: the core's check of a grouping and the contracted graph both adapters compile."""

from __future__ import annotations

import pytest

from task_engine_core import Pipeline
from task_engine_core._groups import (
    GroupError,
    check_group_boundaries,
    group_pipeline,
    plan_groups,
    run_group,
    worst_state,
)
from task_engine_core.errors import DefinitionError, InputUnavailableError


def chain_with_side_branch() -> Pipeline:
    """A -> B -> C -> D, and A -> X -> C (X beside B)."""
    pipeline = Pipeline("groups")
    for name, upstream in [("A", []), ("B", ["A"]), ("X", ["A"]), ("C", ["B", "X"]), ("D", ["C"]), ("E", [])]:
        pipeline.add(lambda: None, name=name, depends_on=upstream)
    return pipeline


def test_a_group_becomes_one_unit_with_the_outer_edges():
    plan = plan_groups(chain_with_side_branch().validate(), {"middle": ["B", "X", "C"]})
    assert plan.units == ("A", "middle", "D", "E")
    assert plan.members["middle"] == ("B", "X", "C")
    assert plan.members["A"] == ("A",)
    assert plan.upstream == {"A": (), "middle": ("A",), "D": ("middle",), "E": ()}
    assert plan.unit_of["X"] == "middle" and plan.unit_of["E"] == "E"
    assert plan.is_group("middle") and not plan.is_group("A")


def test_no_groups_keeps_every_task_a_unit_of_its_own():
    validated = chain_with_side_branch().validate()
    plan = plan_groups(validated, None)
    assert plan.units == validated.order
    assert plan.upstream == dict(validated.upstream)
    assert plan.groups == frozenset()


def test_the_whole_pipeline_may_be_one_group_even_named_after_a_member():
    validated = chain_with_side_branch().validate()
    plan = plan_groups(validated, {"A": ["A", "B", "X", "C", "D"]})
    assert plan.units == ("A", "E")
    assert plan.members["A"] == ("A", "B", "X", "C", "D")


def test_a_group_that_is_not_connected_is_a_definition_error():
    with pytest.raises(DefinitionError) as raised:
        plan_groups(chain_with_side_branch().validate(), {"extract": ["A", "B", "E"]})
    assert str(raised.value) == (
        "task group 'extract' is not connected: {'A', 'B'} and {'E'} share no dependency inside the group; "
        "a group runs one connected part of the pipeline, so make one group of each part"
    )
    # Linked only through a task outside the group is not connected either.
    with pytest.raises(GroupError, match=r"\{'B'\} and \{'X'\} share no dependency"):
        plan_groups(chain_with_side_branch().validate(), {"sides": ["B", "X"]})


def test_a_group_whose_contraction_closes_a_cycle_is_a_definition_error():
    # {A, X, C} is connected, but A -> B -> C leaves it and comes back: as one task it would run before and after B.
    with pytest.raises(GroupError) as raised:
        plan_groups(chain_with_side_branch().validate(), {"ends": ["A", "X", "C"]})
    assert str(raised.value) == (
        "task group 'ends' would create a dependency cycle with the rest of the pipeline: ends -> B -> ends; "
        "a path leaves the group after 'A' and comes back before 'C' through 'B'; add 'B' to the group or take 'C' out of it"
    )


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ({"g": []}, "task group 'g' has no tasks; list the names of the tasks it runs"),
        ({"g": "A"}, "task group 'g' must list task names, e.g. groups={'g': ['A', 'B']}; got 'A'"),
        ({"g": ["A", "Bb"]}, "task group 'g' names unknown task 'Bb' of pipeline 'groups'; did you mean 'B'?"),
        (
            {"g": ["A", "B"], "h": ["B", "C"]},
            "task 'B' is in task groups 'g' and 'h'; a task belongs to at most one group",
        ),
        (
            {"D": ["A", "B"]},
            "task group 'D' has the name of task 'D', which is not in it; the group becomes one orchestrator task "
            "of that name, so give the group another name",
        ),
        ({"": ["A"]}, "task group name '' must be a non-empty string"),
    ],
)
def test_bad_groups_name_the_group_and_the_tasks(groups, message):
    with pytest.raises(GroupError) as raised:
        plan_groups(chain_with_side_branch().validate(), groups)
    assert str(raised.value) == message


def test_the_worst_inner_state_is_the_groups_state():
    assert worst_state(["success", "skipped"]) == "skipped"
    assert worst_state(["success", "failed", "upstream_failed", "not_run"]) == "failed"
    assert worst_state(["not_run", "skipped"]) == "not_run"
    assert worst_state(["success"]) == worst_state([]) == "success"


def test_a_group_pipeline_keeps_map_over_and_tags_so_the_group_fans_out_as_standalone():
    pipeline = Pipeline("grouped_fan_out")

    @pipeline.register(tags="listing")
    def items():
        return [1, 2, 3]

    @pipeline.register(depends_on=items, map_over=items)
    def double(items):
        return items * 2

    validated = pipeline.validate()
    inner = group_pipeline(validated, plan_groups(validated, {"all": ["items", "double"]}), "all").validate()
    assert inner.mapped == {"double": "items"}
    assert inner.definitions["items"].tags == ("listing",)
    result = run_group(
        group_pipeline(validated, plan_groups(validated, {"all": ["items", "double"]}), "all"),
        context={},
        keep_going=False,
        reporters=[],
        stats=False,
    )
    assert result.tasks["double"].output == [2, 4, 6]
    assert [name for name in result.tasks if name.startswith("double[")] == ["double[0]", "double[1]", "double[2]"]


def _chain_with_data() -> Pipeline:
    pipeline = Pipeline("data")

    @pipeline.register
    def source():
        return [1, 2]

    @pipeline.register(depends_on=[source], map_over=source)
    def each(source):
        return source * 2

    @pipeline.register(depends_on=[each])
    def total(each):
        return sum(each)

    return pipeline


@pytest.mark.parametrize(
    ("groups", "error", "message"),
    [
        (
            {"listing": ["source"]},
            GroupError,
            "task 'each' maps over the output of 'source', but only 'source' is in the task group 'listing': "
            "put both in the group, or neither",
        ),
        (
            {"fan": ["each"]},
            GroupError,
            "task 'each' maps over the output of 'source', but only 'each' is in the task group 'fan': "
            "put both in the group, or neither",
        ),
        (
            {"both": ["source", "each"]},
            InputUnavailableError,
            "task 'total' reads the output of 'each', which this run does not have: 'each' runs inside the Relay "
            "task group 'both', whose outputs stay in it\nput 'total' in that group too, or 'each' in none",
        ),
        (
            {"end": ["each", "total"]},
            GroupError,
            "task 'each' maps over the output of 'source', but only 'each' is in the task group 'end': "
            "put both in the group, or neither",
        ),
    ],
)
def test_data_across_a_groups_edge_is_refused_naming_both_tasks(groups, error, message):
    validated = _chain_with_data().validate()
    with pytest.raises(error) as raised:
        check_group_boundaries(validated, plan_groups(validated, groups), "Relay")
    assert str(raised.value) == message


def test_a_function_task_in_a_group_cannot_read_an_upstream_outside_it():
    pipeline = Pipeline("inward")

    @pipeline.register
    def extract():
        return 1

    @pipeline.register(depends_on=[extract])
    def load(extract):
        return extract

    @pipeline.register(depends_on=[load])
    def report():
        pass

    validated = pipeline.validate()
    with pytest.raises(InputUnavailableError) as raised:
        check_group_boundaries(validated, plan_groups(validated, {"tail": ["load", "report"]}), "Relay")
    assert str(raised.value) == (
        "task 'load' reads the output of 'extract', which this run does not have: 'extract' runs outside the Relay "
        "task group 'tail' of 'load', and a group's tasks get outputs only from each other\n"
        "put 'extract' in that group too, or 'load' in none"
    )
    # Edges without data cross freely, and a group holding every reader is fine.
    check_group_boundaries(validated, plan_groups(validated, {"head": ["extract", "load"]}), "Relay")
    check_group_boundaries(validated, plan_groups(validated, None), "Relay")
