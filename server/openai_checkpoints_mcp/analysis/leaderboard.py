"""Ranking jobs against each other (a sweep): each job's best checkpoint, then the jobs, like with like.

Each job's best checkpoint is chosen exactly as for one job (`ranking.choose_metric` and
`ranking.rank`). Jobs are only ranked against jobs whose best was chosen by the same metric
for the same fine-tuning method: a training loss says nothing comparable to a validation
loss, and a DPO loss is not a supervised loss. Each such set of jobs is a `MetricGroup`;
the groups are ordered most trustworthy metric first, and the overall winner is the best
job of the first group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .metrics import CATALOGUE, Goal, auto_order, finite_number
from .ranking import AUTO, Candidate, MetricChoiceError, choose_metric, numeric_keys, oriented, rank
from .rationale import format_value


@dataclass(frozen=True)
class JobCandidate:
    """A job as the leaderboard sees it."""

    job_id: str
    method: str
    checkpoints: Sequence[Candidate]
    label: str | None = None
    """How to name the job in sentences besides its id (e.g. its suffix and learning rate)."""


@dataclass(frozen=True)
class JobBest:
    """One job's best checkpoint by its group's metric (or why it has none)."""

    job_id: str
    method: str
    metric: str | None
    goal: Goal | None
    best: Candidate | None
    value: float | None
    note: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class MetricGroup:
    method: str
    metric: str
    goal: Goal
    entries: list[JobBest] = field(default_factory=list)
    """Best first."""


@dataclass(frozen=True)
class Leaderboard:
    groups: list[MetricGroup]
    """Most trustworthy metric first; within each, best job first."""
    unranked: list[JobBest]
    """Jobs with no checkpoint or no usable value of the metric, with the reason in `note`."""

    @property
    def undecided(self) -> bool:
        """The two most trustworthy groups are equally trustworthy but of different methods (say DPO and
        supervised runs, both by full_valid_loss): their values are not comparable, so there is no overall winner."""
        if len(self.groups) < 2:
            return False
        first, second = self.groups[0], self.groups[1]
        return _trust(first.metric, first.method) == _trust(second.metric, second.method)

    @property
    def winner(self) -> JobBest | None:
        return self.groups[0].entries[0] if self.groups and not self.undecided else None

    @property
    def ranked(self) -> list[JobBest]:
        return [entry for group in self.groups for entry in group.entries]


def _trust(metric: str, method: str) -> int:
    order = auto_order(method)
    return order.index(metric) if metric in order else len(order)


def _job_best(job: JobCandidate, metric: str, goal: Goal | None) -> JobBest:
    def unranked(note: str) -> JobBest:
        return JobBest(job.job_id, job.method, None, None, None, None, note, job.label)

    if not job.checkpoints:
        return unranked("no checkpoints")
    present = numeric_keys(job.checkpoints)
    try:
        choice = choose_metric(metric, goal, method_type=job.method, present=present)
    except MetricChoiceError:
        return unranked(f"no checkpoint has {metric}")
    if choice is None:
        return unranked(f"no checkpoint has any of {', '.join(auto_order(job.method))}")
    ranking = rank(job.checkpoints, choice)
    best = ranking.best
    if best is None:
        return unranked(f"no checkpoint has a usable {choice.metric}")
    value = ranking.value(best)
    return JobBest(job.job_id, job.method, choice.metric, choice.goal, best, value, None, job.label)


def build_leaderboard(jobs: Sequence[JobCandidate], *, metric: str = AUTO, goal: Goal | None = None) -> Leaderboard:
    """Pick each job's best checkpoint, group the jobs by (method, metric) and rank within each group.

    Raises:
        MetricChoiceError: an explicit metric outside the catalogue without a `goal`, or one no job has.
    """
    if metric != AUTO and metric not in CATALOGUE:
        present = set().union(*(numeric_keys(job.checkpoints) for job in jobs)) if jobs else set()
        # Raises with the accepted metrics when no job has it or the direction is unknown.
        choose_metric(metric, goal, method_type=None, present=present, scope="of the compared jobs")
    bests = [_job_best(job, metric, goal) for job in jobs]
    order = {job.job_id: index for index, job in enumerate(jobs)}
    grouped: dict[tuple[str, str], list[JobBest]] = {}
    unranked: list[JobBest] = []
    for best in bests:
        if best.metric is None:
            unranked.append(best)
        else:
            grouped.setdefault((best.method, best.metric), []).append(best)

    groups: list[MetricGroup] = []
    for (method, name), entries in grouped.items():
        group_goal = entries[0].goal
        assert group_goal is not None
        entries.sort(key=lambda e: _sort_key(e, group_goal, order[e.job_id]))
        groups.append(MetricGroup(method, name, group_goal, entries))
    groups.sort(key=lambda g: (_trust(g.metric, g.method), -len(g.entries), g.method))
    return Leaderboard(groups, unranked)


def _sort_key(entry: JobBest, goal: Goal, position: int) -> tuple[float, float, int]:
    info = CATALOGUE.get(entry.metric or "")
    complement = info.complement if info else None
    complement_value = None
    if complement and entry.best is not None:
        complement_value = finite_number(entry.best.metrics.get(complement))
    complement_goal = CATALOGUE[complement].goal if complement else None
    return oriented(entry.value, goal), oriented(complement_value, complement_goal), position


def _name(entry: JobBest) -> str:
    return f"{entry.job_id} ({entry.label})" if entry.label else entry.job_id


def _at(entry: JobBest) -> str:
    step = entry.best.step if entry.best is not None else None
    return f"step {step}" if step is not None else "its best checkpoint"


def leaderboard_rationale(board: Leaderboard, *, failed: int = 0) -> str:
    """Sentences to quote: the winner and by how much, what was ranked separately and why, what is missing."""
    sentences: list[str] = []
    winner = board.winner
    if board.undecided:
        tied = [
            g
            for g in board.groups
            if _trust(g.metric, g.method) == _trust(board.groups[0].metric, board.groups[0].method)
        ]
        bests = "; ".join(
            f"best {g.method} job by {g.metric}: {_name(g.entries[0])}, {format_value(g.entries[0].value)} at "
            f"{_at(g.entries[0])}"
            for g in tied
        )
        sentences.append(
            f"No overall winner: these jobs use different fine-tuning methods ({', '.join(g.method for g in tied)}), "
            f"whose {tied[0].metric} values measure different objectives and cannot be compared. {bests}. Compare "
            "them by evaluating the candidate checkpoints on the same held-out data."
        )
        groups_after = board.groups[len(tied) :]
    elif winner is None:
        sentences.append("No job could be ranked: none has a checkpoint with a usable metric.")
        groups_after = []
    else:
        top = board.groups[0]
        metric = top.metric
        direction = "lowest" if top.goal is Goal.MIN else "highest"
        lead = (
            f"{_name(winner)} wins with the {direction} {metric} of its best checkpoint: "
            f"{format_value(winner.value)} at {_at(winner)}"
        )
        if len(top.entries) > 1:
            runner = top.entries[1]
            if runner.value == winner.value:
                lead += f", tied on {metric} with {_name(runner)} at {_at(runner)} and ahead on the tie-break"
            else:
                lead += f", against {format_value(runner.value)} for the runner-up {_name(runner)} at {_at(runner)}"
            lead += f"; {len(top.entries)} jobs ranked by {metric}."
        else:
            lead += "; it is the only job ranked by this metric."
        sentences.append(lead)
        info = CATALOGUE.get(metric)
        if info is not None:
            sentences.append(f"{metric} is {info.meaning}.")
        groups_after = board.groups[1:]
    for group in groups_after:
        jobs = ", ".join(entry.job_id for entry in group.entries)
        why = ""
        if group.metric.startswith("train"):
            why = " (they have no validation metrics, likely no validation file)"
        elif winner is not None and group.method != board.groups[0].method:
            why = f" ({group.method} jobs, whose metrics are not comparable with {board.groups[0].method} ones)"
        sentences.append(
            f"{len(group.entries)} job{'s' if len(group.entries) != 1 else ''} ranked separately by "
            f"{group.metric}{why}, not mixed with the above: {jobs}."
        )
    if board.unranked:
        reasons = "; ".join(f"{entry.job_id}: {entry.note}" for entry in board.unranked)
        sentences.append(f"Not ranked: {reasons}.")
    if failed:
        sentences.append(f"{failed} job{'s' if failed != 1 else ''} could not be read (see failed).")
    return " ".join(sentences)
