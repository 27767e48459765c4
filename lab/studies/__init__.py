"""Studies: the questions our users' logs ask, each a sweep spec in `notebooks/sweeps/` with a `study:` section, run
at a CPU scale in minutes and at full scale one switch away (`profile="full"`), answered from the ledger.

A study spec is a sweep spec (lab.sweep) whose `list` items are the arms (`arm: <label>` names each), plus:
  study:
    question, log, look_at   what is asked, the log entry (or paper) it comes from, what to read in the answer
    metric                   the ledger column that answers it (higher is better unless `higher_is_better: false`)
    baseline                 the arm the others are compared with; it runs at each of `seeds` (default [0, 1]) and
                             the spread of those runs is the noise floor (the other arms run at the first seed)
    view                     the plot that answers it, beside the bars of the metric: table (the bars only) |
                             pareto (metric vs the budget's cost) | grid (outputs on one crop) | curves (training)
                             | tradeoff (the metric against the first `show` column)
    show, measures, budget   more columns: ledger columns, measures taken on the outputs (MEASURES), and a cost
                             limit ({cost: cost.gflops, max: 11.1}) whose runs over it are flagged
    versus                   {arm: other arm}: arms compared with another arm than the baseline (x3 fine-tuned
                             vs x3 from scratch); the noise floor stays the baseline's. {arm: null}: a reference
                             for another arm, compared with nothing (x3 from scratch vs the x2 baseline means nothing)
    cpu_minutes              the wall time measured at the CPU scale (`lab study <name> --workers 2`)
  profiles:
    full: {base: {...}, arms: {<arm>: {...}}, requires: [data/div2k_sub, Set14], timeout: 86400}
An arm's dict params (model_kwargs, ...) are merged into the base's; a profile's `base` replaces the spec's key by
key (`model_kwargs: {}` there means the paper's model). Relative folders in data params are taken from the project
root. `init_from: "@<arm>"` starts from that arm's run of the same seed: the run waits until that one is done.

- `list_studies`, `load_study`, `plan`: a study's jobs at a profile (missing data named before anything runs),
  each run titled by its arm and tagged with the study's name (`lab ledger --tag <study>`).
- `run_study` / `run_waves`: runs what has no finished run yet: a finished run of the study with the same params is
  reused (`fresh=True` runs everything again), runs that wait for others go in later waves.
- `study_rows`, `answer`, `verdict`: the runs that answer a study, the table with the noise label, one sentence.
  The plots and the Markdown report are lab.studies.report's.

One module per concept: `measures`, `spec` (loading and checking), `jobs` (typed study jobs), `planning`,
`matching` (a plan's runs in the ledger), `waves` (running), `answers`, `report` (plots, Markdown, the notebook
display).
"""

from lab.studies.answers import answer, short, study_rows, verdict
from lab.studies.jobs import ArmRun, StudyJob, StudyMeta
from lab.studies.matching import match_runs
from lab.studies.measures import MEASURES, checkerboard, measure, sharpness, valid_pair
from lab.studies.planning import PATH_PARAMS, TITLE_PARAM, check_requires, plan, plan_table
from lab.studies.spec import (
    CPU,
    OPTIONAL,
    PROFILE_KEYS,
    REF,
    REQUIRED,
    STUDIES_DIR,
    VIEWS,
    arm_overrides,
    list_studies,
    load_study,
)
from lab.studies.waves import StudyResult, run_study, run_waves

__all__ = ["CPU", "MEASURES", "OPTIONAL", "PATH_PARAMS", "PROFILE_KEYS", "REF", "REQUIRED", "STUDIES_DIR",
           "TITLE_PARAM", "VIEWS", "ArmRun", "StudyJob", "StudyMeta", "StudyResult", "answer", "arm_overrides", "check_requires", "checkerboard",
           "list_studies", "load_study", "match_runs", "measure", "plan", "plan_table", "run_study", "run_waves",
           "sharpness", "short", "study_rows", "valid_pair", "verdict"]
