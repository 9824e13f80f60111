"""Which prior tasks go with which new task, per protocol."""

import pytest

from at2_tune.errors import AT2Error
from at2_tune.bench.protocols import cases, prior_subset


def test_loo_and_pairs_cases(lcbench):
    loo = cases(lcbench, "loo", tasks=["adult", "kc1", "no-such-task"])
    assert [(c.protocol, c.name, c.test_task) for c in loo] == [("loo", "adult", "adult"),
                                                                ("loo", "kc1", "kc1")]
    assert loo[0].train_tasks == lcbench.tasks_excluding(["adult"])
    assert len(loo[0].train_tasks) == len(lcbench.tasks) - 1
    pair = lcbench.pair(2)
    (case,) = cases(lcbench, "pairs", pairs=[2])
    assert (case.train_tasks, case.test_task) == (tuple(pair.train_tasks), pair.test_task)


def test_subsets_are_seeded_random_priors_without_the_test_task(lcbench):
    all_cases = cases(lcbench, "subsets", prior_sizes=(2, 8), draws=3)
    assert len(all_cases) == 2 * 3 * len(lcbench.tasks)
    assert {c.protocol for c in all_cases} == {"subsets-2", "subsets-8"}
    for case in all_cases:
        size = int(case.protocol.split("-")[1])
        assert len(set(case.train_tasks)) == size and case.test_task not in case.train_tasks
        assert case.name.startswith(case.test_task + "#d")
    adult = [c.train_tasks for c in all_cases if c.test_task == "adult" and
             c.protocol == "subsets-8"]
    assert len(set(adult)) == 3  # three different draws
    # the same draws whichever test tasks are named, and from call to call
    named = cases(lcbench, "subsets", tasks=["adult"], prior_sizes=(8,), draws=3)
    assert [c.train_tasks for c in named] == adult
    assert prior_subset(lcbench.tasks, "adult", 8, 1) == adult[1]
    assert prior_subset(lcbench.tasks, "adult", 8, 1, seed=1) != adult[1]
    # every other task turns up in some prior: the draws are not stuck on a few tasks
    tasks_used = {t for c in all_cases if c.protocol == "subsets-8" for t in c.train_tasks}
    assert tasks_used == set(lcbench.tasks)


def test_bad_protocol_options_name_the_value_and_the_limit(lcbench):
    with pytest.raises(AT2Error, match="prior size 35 is not between 1 and 34 .*'adult'.*"
                                       "smaller --prior-sizes"):
        cases(lcbench, "subsets", tasks=["adult"], prior_sizes=(35,))
    with pytest.raises(AT2Error, match="draws 0 must be at least 1"):
        cases(lcbench, "subsets", draws=0)
    with pytest.raises(AT2Error, match="protocol 'lo' is not one of pairs, loo, subsets"):
        cases(lcbench, "lo")
