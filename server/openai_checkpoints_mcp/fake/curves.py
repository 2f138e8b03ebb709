"""Synthetic training curves for the demo dataset, and the result-file CSV cut from them.

Every number comes from a fixed curve plus noise from an RNG seeded by the caller, so the
rows are identical on every call. A row is one training step: ``step`` plus the metric
names the API uses in checkpoints and events.
"""

from __future__ import annotations

import csv
import io
import math
import random
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]  # one training step: "step" plus API metric names

# Result-file columns: (CSV header, row key). OpenAI's SFT file says `train_accuracy`.
SFT_COLUMNS = [
    ("step", "step"),
    ("train_loss", "train_loss"),
    ("train_accuracy", "train_mean_token_accuracy"),
    ("valid_loss", "valid_loss"),
    ("valid_mean_token_accuracy", "valid_mean_token_accuracy"),
]
RFT_COLUMNS = [
    ("step", "step"),
    ("train_mean_reward", "train_mean_reward"),
    ("full_valid_mean_reward", "full_valid_mean_reward"),
]


def r5(value: float) -> float:
    return round(value, 5)


def _accuracy(loss: float) -> float:
    """Mean token accuracy that goes with a loss (monotone, so best loss = best accuracy)."""
    return min(0.999, math.exp(-0.3 * loss))


@dataclass(frozen=True)
class LossCurve:
    """Smooth train and validation loss for a supervised or DPO run.

    Train loss drops exponentially to `train_floor`, then keeps drifting down by
    `train_drift` over the run. Validation loss drops to `valid_floor` and, past
    `overfit_from`, rises by `overfit_rate` per step squared.
    """

    train_start: float
    train_floor: float
    train_tau: float
    train_drift: float
    valid_start: float = 0.0
    valid_floor: float = 0.0
    valid_tau: float = 1.0
    overfit_from: int = 0
    overfit_rate: float = 0.0
    noise: float = 0.05

    def train(self, step: int, total: int) -> float:
        decay = math.exp(-step / self.train_tau)
        return self.train_floor + (self.train_start - self.train_floor) * decay - self.train_drift * step / total

    def valid(self, step: int) -> float:
        decay = math.exp(-step / self.valid_tau)
        rise = self.overfit_rate * max(0, step - self.overfit_from) ** 2
        return self.valid_floor + (self.valid_start - self.valid_floor) * decay + rise


def loss_rows(curve: LossCurve, *, steps_per_epoch: int, n_epochs: int, validation: bool, seed: str) -> list[Row]:
    """Per-step rows: train metrics every step, a validation batch every 10 steps and on
    the last step, full-validation metrics at each epoch end (noise-free)."""
    rng = random.Random(seed)
    total = steps_per_epoch * n_epochs
    rows: list[Row] = []
    for step in range(1, total + 1):
        train = max(0.01, curve.train(step, total) * (1 + curve.noise * rng.gauss(0, 1)))
        row: Row = {"step": step, "train_loss": r5(train), "train_mean_token_accuracy": r5(_accuracy(train))}
        if validation and (step % 10 == 0 or step == total):
            valid = max(0.01, curve.valid(step) * (1 + curve.noise * rng.gauss(0, 1)))
            row |= {"valid_loss": r5(valid), "valid_mean_token_accuracy": r5(_accuracy(valid))}
        if validation and step % steps_per_epoch == 0:
            full = curve.valid(step)
            row |= {"full_valid_loss": r5(full), "full_valid_mean_token_accuracy": r5(_accuracy(full))}
        rows.append(row)
    return rows


@dataclass(frozen=True)
class RewardCurve:
    """Mean reward of an RFT run: rises towards `plateau`, declines after `decline_from`."""

    start: float
    plateau: float
    tau: float
    decline_from: int
    decline_rate: float

    def value(self, step: int) -> float:
        rise = (self.plateau - self.start) * (1 - math.exp(-step / self.tau))
        return self.start + rise - self.decline_rate * max(0, step - self.decline_from) ** 2


def reward_rows(curve: RewardCurve, *, total_steps: int, eval_interval: int, seed: str) -> list[Row]:
    """Per-step RFT rows; full-validation reward only on evaluation steps."""
    rng = random.Random(seed)
    rows: list[Row] = []
    for step in range(1, total_steps + 1):
        reasoning = 610 - 230 * (1 - math.exp(-step / 25)) + 12 * rng.gauss(0, 1)
        train = min(1.0, max(0.0, curve.value(step) + 0.03 + 0.04 * rng.gauss(0, 1)))
        row: Row = {
            "step": step,
            "train_mean_reward": r5(train),
            "reasoning_tokens_mean": round(reasoning, 1),
            "completion_tokens_mean": round(reasoning + 140 + 6 * rng.gauss(0, 1), 1),
        }
        if step % eval_interval == 0:
            valid = min(1.0, max(0.0, curve.value(step) + 0.008 * rng.gauss(0, 1)))
            row |= {"full_valid_mean_reward": r5(valid), "full_valid_mean_parse_error": 0.0 if step > 10 else 0.02}
        rows.append(row)
    return rows


def _cell(value: float | int | None) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:.5f}"


def result_csv(rows: list[Row], columns: list[tuple[str, str]]) -> bytes:
    """The result file: one line per step, 5 decimals, empty cells where a value is absent."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([header for header, _ in columns])
    for row in rows:
        writer.writerow([_cell(row.get(key)) for _, key in columns])
    return buffer.getvalue().encode()
