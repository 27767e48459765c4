"""Run directories: atomic ids, and the one `Run` class that knows (reads and writes) every file in a run directory.

Layout of `runs/NNNN-<slug>/` (no other module names these files; everyone asks `Run`):
  params.json              the full resolved params: what trained
  meta.json                id, name, title, created, notebook (+ its path and code hash), parent, git commit/dirty,
                           environment; a sweep's name, index and arm, the tags it was made with (a
                           study's name), resumed attempts
  status.json              status (running | done | failed | diverged | interrupted), started, finished, heartbeat,
                           pid, host, epoch; on failure the error (type, message, traceback, cell, source)
  history.json             one record per training epoch (`phase` 'gan' for the adversarial phase)
  metrics.json             the final summary (PSNR/SSIM per evaluated set, baseline, gain, cost, minutes)
  summary/summary.json     what a ledger row reads (meta without the environment, params, status, metrics, profile,
                           init_from, notes), rewritten by `Run` whenever one of those files or a note is written
                           (a history update beats the heart, so it too), with each source's (inode, mtime, size),
                           the note files' names and, once the file system's clock has passed the run's last change
                           (`summary/.clock` is touched to read it), the run's stamp: a reader trusts it while the
                           stamp is the run's and the files that existed are unchanged, or, without a stamp, while
                           every signature matches, and reads the files themselves otherwise (a run written by an
                           older version, another process that wrote a file between, a half-written run); in a folder
                           of its own, so writing it leaves the stamp as it was. Runs recorded before keep
                           summary.json beside their files (still read, by signatures)
  notes/                   notes, tags and verdicts people attached: one JSON file per note (written by rename,
                           so concurrent writers on any file system never lose one); older runs: notes.jsonl
  profile.json             the cost profile (params, GFLOPs, forward ms in fp32 / bf16)
  degradation.json         the resolved degradation config the data loader used
  data.json                the step budget, the training sources (images, weights) and the validation degradation
  init_from.json           the weights a fine-tuned run started from
  guard_events.json        what the divergence guard caught
  code.json, code/          the user code the run loaded (models_from): where from, its SHA-256, the files copied
  runner.log               output of the process that executed the notebook
  pulse                    an empty file the running kernel touches every 30 s (its mtime is the heartbeat)
  notebook.ipynb           the executed notebook; earlier attempts of a resumed run as notebook.1.ipynb, ...
  checkpoints/             [<phase>_]{last,best,final}.pth: lab checkpoints (weights + model_name + model_kwargs +
                           params); last.pth also holds the optimizer state and epoch for `lab resume`
  samples/                 [<phase>_]epoch_NNN.png: LR | SR | HR strips of the first validation image
  eval/<set>.json          per-image scores of one evaluated set
  eval/<set>/<image>.png   the model's outputs on that set
  eval/<set>/reference/{lr,baseline,hr}/<image>.png   the inputs, baseline and ground truth they were scored against
  degradations.png, degradation_samples.json          the degradations notebook's static grid and sampled params
Every file is written through a temp file + rename, so a reader never sees half a file.

The package: `layout` (these names), `run` (the `Run` class), `store` (ids, creating and finding runs). It imports
neither torch nor OpenCV: the read side (ledger, `lab ledger`) loads thousands of runs without them, and the few
writers that need them (checkpoints, images) import them when called.
"""

from lab.liveness import HOST, STALE_AFTER_S, effective_status
from lab.runs.layout import (CHECKPOINT_DIR, CHECKPOINT_KINDS, DEFAULT_RUNS_DIR, EVAL_DIR, JSON_FILES,
                             NOTEBOOK_FILE, NOTES_DIR, NOTES_FILE, PHASES, PULSE_FILE, REFERENCE_KINDS, STATUSES,
                             RunRecord, Sample, checkpoint_name, sibling_checkpoint)
from lab.runs.run import Run
from lab.runs.store import (add_note, allocate_id, as_run, create, find, read_notes, runs_dir, save_degradation_preview,
                            scan, start)
from lab.utils import environment, git_info, now, parse_time, slugify

__all__ = ["Run", "RunRecord", "Sample", "create", "start", "find", "scan", "as_run", "add_note", "read_notes",
           "allocate_id", "runs_dir", "save_degradation_preview", "checkpoint_name", "sibling_checkpoint",
           "effective_status", "STATUSES", "STALE_AFTER_S", "HOST", "JSON_FILES", "NOTES_DIR", "NOTES_FILE",
           "PULSE_FILE", "NOTEBOOK_FILE", "CHECKPOINT_DIR", "CHECKPOINT_KINDS", "EVAL_DIR", "PHASES",
           "REFERENCE_KINDS", "DEFAULT_RUNS_DIR", "environment", "git_info", "now", "parse_time", "slugify"]
