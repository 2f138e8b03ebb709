"""Sentences an assistant can quote: which checkpoint won, by which metric, and why that metric."""

from __future__ import annotations

from .metrics import CATALOGUE, FULL_VALID_REWARDS, Goal
from .ranking import AUTO, Ranking


def format_value(value: float | None) -> str:
    """A metric value for a sentence: 5 significant digits, or n/a."""
    return "n/a" if value is None else f"{value:.5g}"


def _direction(goal: Goal) -> str:
    return "lower is better" if goal is Goal.MIN else "higher is better"


def metric_reason(ranking: Ranking, *, has_validation_file: bool) -> str:
    """Why this metric: the first sentence of a rationale."""
    choice = ranking.choice
    info = CATALOGUE.get(choice.metric)
    meaning = f", {info.meaning}" if info else ""
    head = f"Ranked by {choice.metric} ({_direction(choice.goal)}){meaning}"
    if choice.requested != AUTO:
        return f"{head}, as requested."
    if not choice.skipped:
        return f"{head}."
    if choice.metric in FULL_VALID_REWARDS:
        return f"{head}; reinforcement jobs report grader rewards rather than a validation loss."
    if not has_validation_file and choice.metric.startswith("train"):
        return (
            f"The job has no validation file, so ranked by {choice.metric} ({_direction(choice.goal)}), "
            f"which cannot detect overfitting."
        )
    missing = " or ".join(choice.skipped)
    return f"No checkpoint has {missing}, so {head[0].lower()}{head[1:]}."


def winner_sentence(
    ranking: Ranking,
    *,
    last_step: int | None,
    best_is_final: bool,
    has_final_model: bool = True,
    keeps_best: bool = False,
) -> str:
    """Who won, by how much, and whether it is the job's final model.

    `has_final_model` is false while the job has no ``fine_tuned_model`` yet (running, paused, failed).
    `keeps_best`: the API kept the best checkpoints rather than the last ones (reinforcement jobs), so the last kept
    checkpoint says nothing about the final model.
    """
    best = ranking.best
    if best is None:
        return ""
    metric = ranking.choice.metric
    value = ranking.value(best)
    count = len(ranking.ranked)
    name = f"Step {best.step}" if best.step is not None else f"Checkpoint {best.id}"
    text = f"{name} is best of {count} ranked checkpoint{'s' if count != 1 else ''} with {metric} {format_value(value)}"
    if ranking.decided_by == "complement":
        info = CATALOGUE.get(metric)
        complement = info.complement if info and info.complement else "the complementary metric"
        text += f" (tied with step {ranking.ranked[1].step}; {complement} broke the tie)"
    elif ranking.decided_by == "step":
        text += f" (tied with step {ranking.ranked[1].step}; the earlier step wins)"
    if keeps_best:
        return text + (
            "; reinforcement jobs keep only their best checkpoints by validation reward, not the last ones, "
            "so the final model cannot be compared from the checkpoints: training_metrics shows the "
            "reward at the last step."
        )
    if best_is_final:
        if has_final_model:
            return text + "; it is the job's last checkpoint, so the final model is the one to deploy."
        return text + "; it is the job's latest checkpoint (the job has no final model yet)."
    instead = "rather than the final model" if has_final_model else "(the job has no final model yet)"
    final = next((c for c in ranking.ranked if c.step == last_step), None)
    if final is None:
        return text + f"; the last checkpoint (step {last_step}) has no {metric}, so it could not be compared."
    final_value = ranking.value(final)
    if final_value == value:
        return (
            text + f"; the last checkpoint (step {last_step}) ties on {metric}, and the tie-break prefers "
            f"step {best.step}."
        )
    return (
        text + f", better than the last checkpoint (step {last_step}, {format_value(final_value)}): deploy this "
        f"checkpoint {instead}."
    )


def exclusion_note(ranking: Ranking) -> str:
    count = len(ranking.excluded)
    if not count:
        return ""
    return (
        f"{count} checkpoint{'s' if count != 1 else ''} without {ranking.choice.metric} "
        f"{'were' if count != 1 else 'was'} not ranked."
    )
