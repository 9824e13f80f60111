"""``at2-tune prior``: build AT2 priors from your own tuning history.

* ``import EXPERIMENT_DIR... --metric NAME --mode max|min --out DB_DIR``: past Ray Tune
  experiments, one task each;
* ``add RUN_DIR --db DB_DIR``: a finished ``at2-tune tune`` run as one more task (a new
  database when DB_DIR does not exist yet);
* ``info DB_DIR``: tasks, configurations, epochs and coverage.

Use the database with ``at2-tune tune --prior DB_DIR`` or ``AT2Searcher(prior="DB_DIR")``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("prior", help="build priors from your own tuning runs",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="prior_command", required=True, metavar="ACTION")
    imp = actions.add_parser("import", help="Ray Tune experiment folders -> a prior database")
    imp.add_argument("experiments", nargs="+", type=Path, metavar="EXPERIMENT_DIR")
    imp.add_argument("--metric", required=True, help="the result field to learn from")
    imp.add_argument("--mode", required=True, choices=("max", "min"))
    imp.add_argument("--time-attr", default="training_iteration",
                     help="the result field that counts epochs (default training_iteration)")
    imp.add_argument("--task", default=None, metavar="NAME[,NAME...]",
                     help="task names, one per experiment, in order (default: folder names)")
    imp.add_argument("--space", default=None, metavar="hyperrec|lcbench|FILE.json",
                     help="the search space the experiments ran in (default: HyperRec when "
                          "every config is one, else inferred from the configs)")
    imp.add_argument("--out", required=True, type=Path, metavar="DB_DIR")
    imp.set_defaults(run=_import)
    add = actions.add_parser("add", help="a finished at2-tune tune run -> one more task")
    add.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    add.add_argument("--db", required=True, type=Path, metavar="DB_DIR",
                     help="the database to extend (created when it does not exist)")
    add.add_argument("--task", default=None, help="task name (default: the run's dataset)")
    add.set_defaults(run=_add)
    info = actions.add_parser("info", help="what a prior database holds")
    info.add_argument("db", type=Path, metavar="DB_DIR")
    info.set_defaults(run=_info)


def _import(args: argparse.Namespace) -> int:
    from at2_tune.databases.tune_import import ImportedTask, build_database, \
        read_tune_experiment
    from at2_tune.databases.user import write_user_database
    from at2_tune.errors import AT2Error

    names = args.task.split(",") if args.task else [p.resolve().name for p in args.experiments]
    if len(names) != len(args.experiments):
        raise AT2Error(f"--task gives {len(names)} names for {len(args.experiments)} "
                       "experiments; give one name per experiment, comma-separated")
    tasks = [ImportedTask(name, str(folder), read_tune_experiment(folder, args.metric,
                                                                  args.time_attr))
             for name, folder in zip(names, args.experiments)]
    db = build_database(tasks, args.metric, args.mode, args.time_attr, args.space)
    write_user_database(db, args.out)
    print(f"wrote {args.out}: {len(db.tasks)} task(s), {len(db.configs)} configurations, "
          f"{db.n_epochs} epochs, space {db.space.name!r}")
    _print_info(db)
    return 0


def _add(args: argparse.Namespace) -> int:
    from at2_tune.databases.tune_import import ImportedTask, build_database, read_at2_run
    from at2_tune.databases.user import load_user_database, write_user_database
    from at2_tune.errors import AT2Error
    from search_spaces import HYPERREC_SPACE

    summary, trials = read_at2_run(args.run_dir)
    name = args.task or summary["dataset"]["name"]
    if not any(t.values for t in trials):
        raise AT2Error(f"{args.run_dir}: no trial observed any epoch; nothing to add")
    run = build_database([ImportedTask(name, str(args.run_dir), trials)], "val_top1", "max",
                         "training_iteration", HYPERREC_SPACE)
    if not args.db.exists():  # the first run of a team's history starts the database
        write_user_database(run, args.db)
        print(f"created {args.db} with task {name!r} ({len(trials)} trials)")
        return 0
    db = load_user_database(args.db)
    if db.metric != "val_top1" or db.mode != "max" or db.space.name != HYPERREC_SPACE.name:
        raise AT2Error(f"{args.db} holds {db.metric!r} ({db.mode}) in the space "
                       f"{db.space.name!r}, but at2-tune tune runs report 'val_top1' (max) in "
                       "the HyperRec space; add the run to a database of tune runs")
    db = db.with_task(run.tasks[0], run.configs, run.curves[0])
    write_user_database(db, args.db, replace=True)
    print(f"added task {name!r} ({len(trials)} trials) to {args.db}: now {len(db.tasks)} tasks, "
          f"{len(db.configs)} configurations")
    return 0


def _info(args: argparse.Namespace) -> int:
    from at2_tune.databases.user import load_user_database

    db = load_user_database(args.db)
    print(f"{args.db}: metric {db.metric!r} ({db.mode}), epochs counted by {db.time_attr!r}, "
          f"space {db.space.name!r} ({len(db.space)} parameters)")
    print(f"{len(db.tasks)} tasks, {len(db.configs)} configurations, {db.n_epochs} epochs")
    _print_info(db)
    return 0


def _print_info(db) -> None:
    from at2_tune.databases.tune_import import coverage_rows, shared_configs

    rows = coverage_rows(db)
    width = max(len(r["task"]) for r in rows)
    print(f"{'task':<{width}}  trials  configs  epochs (max/mean)  coverage  source")
    for r in rows:
        print(f"{r['task']:<{width}}  {r['trials']:>6}  {r['configs']:>7}  "
              f"{r['epochs_max']:>6} / {r['epochs_mean']:>5.1f}      {r['coverage']:>7.0%}  "
              f"{r['source']}")
    shared = shared_configs(db)
    if len(db.tasks) > 1:
        pairs = [(i, j) for i in range(len(db.tasks)) for j in range(i + 1, len(db.tasks))]
        few = [(db.tasks[i].name, db.tasks[j].name) for i, j in pairs if shared[i, j] == 0]
        print(f"configurations shared by task pairs: min {min(shared[i, j] for i, j in pairs)}, "
              f"max {max(shared[i, j] for i, j in pairs)}")
        if few:
            print(f"{len(few)} task pair(s) share no configuration (AT2's task kernel then uses "
                  "its fixed unmatched distance for them), e.g. " + " / ".join(few[0]))
