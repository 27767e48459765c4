"""A study's jobs: `lab.execute.Job`s that carry typed study metadata (`StudyMeta`: which arm, seed and profile,
and the arm's run it starts from), recorded in each run's meta as plain values."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lab.execute import Job

Key = tuple[str, str, int]  # (study, arm, seed): one planned run of a study


@dataclass(frozen=True)
class ArmRun:
    """One arm's run at one seed (what an `init_from: "@<arm>"` run starts from)."""

    arm: str
    seed: int


@dataclass
class StudyMeta:
    """What a run of a study is: its study, arm, seed, profile, the arm's run it starts from, the arm's own overrides
    and its title."""

    name: str
    arm: str
    seed: int
    profile: str
    title: str
    after: ArmRun | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        """(study, arm, seed): the run this is."""
        return self.name, self.arm, self.seed

    @property
    def after_key(self) -> Key | None:
        """(study, arm, seed) of the run it starts from, or None."""
        return (self.name, self.after.arm, self.after.seed) if self.after else None

    def to_dict(self) -> dict[str, Any]:
        """Plain values, as a run's meta records them."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudyMeta:
        """The metadata `to_dict` gave (e.g. read back from a run's meta)."""
        after = d.get("after")
        return cls(**{**d, "after": ArmRun(**after) if after else None})


@dataclass
class StudyJob(Job):
    """A job of a study: a `Job` whose run records its `StudyMeta` under the meta's `study` key."""

    study: StudyMeta = field(kw_only=True)

    def recorded_meta(self) -> dict[str, Any]:
        """The job's meta with the study's part."""
        return {**self.meta, "study": self.study.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudyJob:
        """The job `to_dict` gave."""
        return cls(**{**d, "study": StudyMeta.from_dict(d["study"])})

    @classmethod
    def of(cls, job: Job, study: StudyMeta) -> StudyJob:
        """`job` as a job of a study."""
        return cls(**{**vars(job), "study": study})
