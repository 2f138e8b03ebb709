"""plot_training_curve and the curve.png resource end to end: the PNG decodes, has the promised size and is not
blank, differs between jobs; a sweep on one figure; a job without a result file drawn from its metrics events; the
summary is training_metrics' and best_checkpoint's numbers; errors (no matplotlib, nothing to plot, bad input)
before any request where they can be; and the drawing helpers on their own."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest
from mcp import MCPError
from PIL import Image

from openai_checkpoints_mcp.analysis import plot
from openai_checkpoints_mcp.api.models import Job
from openai_checkpoints_mcp.fake import DEMO_JOB_IDS, demo_data
from openai_checkpoints_mcp.tools.plots import legend_labels

from .helpers import clean_env, demo_server, error_text, fake_id, job, mcp_client, table

pytestmark = pytest.mark.anyio

SUPPORT_BOT = DEMO_JOB_IDS["support_bot"]
REINFORCEMENT = DEMO_JOB_IDS["reinforcement"]
RUNNING = DEMO_JOB_IDS["running"]
SWEEP = [DEMO_JOB_IDS[name] for name in ("sweep_lr_0_5", "sweep_lr_1_0", "sweep_lr_2_0")]
WHITE = (255, 255, 255)


def decoded(result: Any) -> tuple[Image.Image, bytes]:
    """The result's image block, decoded by a real PNG decoder (Pillow)."""
    assert not result.is_error, result.content
    images = [block for block in result.content if block.type == "image"]
    assert len(images) == 1 and images[0].mime_type == "image/png"
    png = base64.b64decode(images[0].data)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    image.load()
    return image.convert("RGB"), png


def colour_counts(image: Image.Image) -> Counter[tuple[int, int, int]]:
    return Counter(image.get_flattened_data())


def near(counts: Counter[tuple[int, int, int]], hex_colour: str, tolerance: int = 24) -> int:
    """Pixels within `tolerance` (per channel) of a colour."""
    target = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return sum(n for rgb, n in counts.items() if all(abs(a - b) <= tolerance for a, b in zip(rgb, target, strict=True)))


def assert_a_real_picture(image: Image.Image, png: bytes) -> Counter[tuple[int, int, int]]:
    assert image.size == (900, 500)
    assert 5_000 < len(png) < 80_000  # a few tens of KB
    counts = colour_counts(image)
    assert len(counts) >= 16  # lines, markers, text: not a flat image
    background = counts[WHITE] / (900 * 500)
    assert 0.5 < background < 0.97  # mostly white, but a fair share drawn
    return counts


async def test_one_job_is_a_png_of_the_promised_size_with_training_metrics_numbers_beside_it(serve_fake):
    with serve_fake(demo_data()) as api:
        async with api.client() as client:
            result = await client.call_tool("plot_training_curve", {"job_id": SUPPORT_BOT})
            metrics = (await client.call_tool("training_metrics", {"job_id": SUPPORT_BOT})).structured_content
            best = (await client.call_tool("best_checkpoint", {"job_id": SUPPORT_BOT})).structured_content
    image, png = decoded(result)
    counts = assert_a_real_picture(image, png)
    summary = result.structured_content
    assert summary["image"] == {
        "mime_type": "image/png",
        "width": 900,
        "height": 500,
        "bytes": len(png),
        "log_scale": True,  # train loss falls from 2.3 to 0.17: more than a factor of 10
        "resource": f"openai-ft://jobs/{SUPPORT_BOT}/curve.png",
    }
    assert summary["title"] == f"{SUPPORT_BOT} · gpt-4o-mini-2024-07-18 · support-bot"
    (job,) = summary["jobs"]
    assert job["drawn"] and job["source"] == "result_file" and job["metrics"] == ["train_loss", "valid_loss"]
    for key in ("best_validation", "overfitting", "retained_checkpoints"):
        assert job[key] == metrics[key], key
    assert job["diagnostics"] == metrics["diagnostics"] and job["diagnostics"]["plateau"]["detected"]
    assert (
        f"plateau from step {job['diagnostics']['plateau']['start_step']}" in summary["caption"]
    )  # the same numbers, not a second opinion
    assert job["steps"] == metrics["steps"] and job["last_step"] == metrics["last_step"]
    highlighted = job["best_checkpoint"]
    assert highlighted["step_number"] == best["best"]["step_number"] == 240
    assert highlighted["metric"] == best["metric"] == "full_valid_loss"
    assert highlighted["value"] == best["best"]["metrics"]["full_valid_loss"]
    assert highlighted["fine_tuned_model_checkpoint"] == best["best"]["fine_tuned_model_checkpoint"]
    assert job["overfitting"]["detected"] is True and job["best_validation"]["step"] == 290
    assert "step 240" in summary["caption"] and "290 (not kept)" in summary["caption"]
    # what the figure promises is drawn: the train line, the validation points, the green best checkpoint, the red
    # circle of the best validation step (a few hundred pixels each at least)
    for colour in (plot.TRAIN_COLOUR, plot.VALIDATION_COLOUR, plot.BEST_COLOUR, plot.BEST_VALIDATION_COLOUR):
        assert near(counts, colour) > 150, colour
    text = [block.text for block in result.content if block.type == "text"]
    assert len(text) == 1 and json.loads(text[0]) == summary  # the same summary for clients that read text


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_two_jobs_give_different_pictures_in_both_protocol_eras(serve_fake, mode):
    with serve_fake(demo_data()) as api:
        async with api.client(mode=mode) as client:
            first = decoded(await client.call_tool("plot_training_curve", {"job_id": SUPPORT_BOT}))
            second = decoded(await client.call_tool("plot_training_curve", {"job_id": REINFORCEMENT}))
            again = decoded(await client.call_tool("plot_training_curve", {"job_id": SUPPORT_BOT}))
    assert first[1] != second[1] and first[1] == again[1]  # deterministic for one job, different for another
    differing = sum(a != b for a, b in zip(first[0].get_flattened_data(), second[0].get_flattened_data(), strict=True))
    assert differing > 0.05 * 900 * 500
    assert_a_real_picture(*second)


async def test_a_reinforcement_job_is_drawn_by_its_rewards_on_a_linear_axis(serve_fake):
    with serve_fake(demo_data()) as api:
        async with api.client() as client:
            result = await client.call_tool("plot_training_curve", {"job_id": REINFORCEMENT})
    summary = result.structured_content
    (job,) = summary["jobs"]
    assert job["metrics"] == ["train_mean_reward", "full_valid_mean_reward"]
    assert summary["image"]["log_scale"] is False
    assert job["best_checkpoint"]["step_number"] == 40 and job["best_checkpoint"]["metric"] == "full_valid_mean_reward"


async def test_a_sweep_is_one_figure_with_a_colour_and_a_name_per_job(serve_fake):
    with serve_fake(demo_data()) as api:
        async with api.client() as client:
            result = await client.call_tool("plot_training_curve", {"job_ids": SWEEP})
            singles = [
                (await client.call_tool("training_metrics", {"job_id": job_id})).structured_content for job_id in SWEEP
            ]
    image, png = decoded(result)
    counts = assert_a_real_picture(image, png)
    summary = result.structured_content
    assert summary["title"] == "3 jobs · gpt-4o-mini-2024-07-18 · lr-sweep"
    assert summary["image"]["resource"] is None
    jobs = summary["jobs"]
    assert [j["job_id"] for j in jobs] == SWEEP
    assert [j["label"] for j in jobs] == ["lr-sweep, lr 0.5", "lr-sweep, lr 1.0", "lr-sweep, lr 2.0"]
    assert [j["colour"] for j in jobs] == list(plot.JOB_COLOURS[:3])
    for plotted, single in zip(jobs, singles, strict=True):
        assert plotted["best_validation"] == single["best_validation"]
        assert plotted["overfitting"] == single["overfitting"]
        assert near(counts, plotted["colour"]) > 300, plotted["label"]  # every job's colour is on the figure
    assert [j["best_checkpoint"]["step_number"] for j in jobs] == [360, 360, 120]
    assert summary["upstream_requests"] == 9  # job, checkpoints and result file of each


async def test_a_sweep_draws_the_jobs_it_can_and_says_why_not_the_others(serve_fake):
    unknown = fake_id("ftjob-", 404)
    with serve_fake(demo_data()) as api:
        async with api.client() as client:
            result = await client.call_tool(
                "plot_training_curve", {"job_ids": [SWEEP[0], unknown, DEMO_JOB_IDS["failed"], SWEEP[0]]}
            )
    decoded(result)
    drawn, missing, failed = result.structured_content["jobs"]  # the repeated id counts once
    assert drawn["drawn"] and drawn["colour"] == plot.JOB_COLOURS[0]
    assert not missing["drawn"] and missing["reason"].startswith("not_found: ") and missing["colour"] is None
    assert not failed["drawn"] and failed["status"] == "failed" and "no result file" in failed["reason"]


async def test_a_running_job_is_drawn_from_its_metrics_events(serve_fake):
    with serve_fake(demo_data()) as api:
        async with api.client() as client:
            result = await client.call_tool("plot_training_curve", {"job_id": RUNNING})
            events = api.upstream_requests("/events")
    assert_a_real_picture(*decoded(result))
    (job,) = result.structured_content["jobs"]
    assert job["source"] == "events" and job["status"] == "running" and "metrics events" in job["reason"]
    assert job["metrics"] == ["train_loss", "valid_loss"]
    assert (job["last_step"], job["total_steps"]) == (140, 450)
    assert job["retained_checkpoints"] == [] and job["best_checkpoint"] is None
    assert job["steps"] == 14  # an event every 10 steps
    assert len(events) == 1


async def test_a_job_with_nothing_to_plot_is_not_found(serve_fake):
    with serve_fake(demo_data()) as api:
        async with api.client() as client:
            result = await client.call_tool("plot_training_curve", {"job_id": DEMO_JOB_IDS["failed"]})
    text = error_text(result)
    assert text.startswith(f"not_found: Job {DEMO_JOB_IDS['failed']} (failed) has no curve to plot: ")


async def test_an_unknown_job_is_the_apis_not_found(serve_fake):
    with serve_fake(demo_data()) as api:
        async with api.client() as client:
            result = await client.call_tool("plot_training_curve", {"job_id": fake_id("ftjob-", 404)})
    assert error_text(result).startswith("not_found: ")


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({}, "invalid_argument: job_id is required, or job_ids"),
        ({"job_id": SUPPORT_BOT, "job_ids": SWEEP}, "invalid_argument: give job_id (one job) or job_ids"),
        ({"job_ids": [SUPPORT_BOT] * 9}, "invalid_argument: job_ids"),
        ({"job_ids": ["ftjob-../files"]}, "invalid_argument: job_ids"),
        ({"job_id": SUPPORT_BOT, "metrics": []}, "invalid_argument: metrics"),
        ({"job_id": SUPPORT_BOT, "metrics": ["a", "b", "c", "d", "e"]}, "invalid_argument: metrics"),
        ({"job_id": SUPPORT_BOT, "metrics": ["no spaces"]}, "invalid_argument: metrics"),
    ],
)
async def test_bad_arguments_reach_nothing_upstream(serve_fake, arguments, expected):
    with serve_fake(demo_data()) as api:
        async with api.client() as client:
            result = await client.call_tool("plot_training_curve", arguments)
        assert api.faults.requests == []
    assert error_text(result).startswith(expected)


async def test_a_metric_no_job_has_is_refused_with_the_ones_it_has(serve_fake):
    with serve_fake(demo_data()) as api:
        async with api.client() as client:
            result = await client.call_tool(
                "plot_training_curve", {"job_id": SUPPORT_BOT, "metrics": ["train_loss", "full_valid_reward"]}
            )
            chosen = await client.call_tool(
                "plot_training_curve", {"job_id": SUPPORT_BOT, "metrics": ["valid_mean_token_accuracy", "train_loss"]}
            )
    text = error_text(result)
    assert text.startswith("invalid_argument: metrics: full_valid_reward is in no result file or checkpoint")
    assert "valid_loss" in text and "full_valid_loss" in text  # the file's columns and the checkpoints' metrics
    assert_a_real_picture(*decoded(chosen))
    assert chosen.structured_content["jobs"][0]["metrics"] == ["valid_mean_token_accuracy", "train_loss"]


async def test_the_curve_resource_serves_the_same_picture(serve_fake):
    with serve_fake(demo_data()) as api:
        async with api.client() as client:
            templates = (await client.list_resource_templates()).resource_templates
            read = await client.read_resource(f"openai-ft://jobs/{SUPPORT_BOT}/curve.png")
            tool = decoded(await client.call_tool("plot_training_curve", {"job_id": SUPPORT_BOT}))
    (template,) = [t for t in templates if t.uri_template.endswith("/curve.png")]
    assert template.uri_template == "openai-ft://jobs/{job_id}/curve.png" and template.mime_type == "image/png"
    (contents,) = read.contents
    assert contents.mime_type == "image/png"
    png = base64.b64decode(contents.blob)
    assert png == tool[1]


async def test_an_unknown_job_is_resource_not_found_and_a_bad_id_is_refused_before_any_request(serve_fake):
    with serve_fake(demo_data()) as api:
        async with api.client() as client:
            with pytest.raises(MCPError) as unknown:
                await client.read_resource(f"openai-ft://jobs/{fake_id('ftjob-', 404)}/curve.png")
            with pytest.raises(MCPError) as nothing:
                await client.read_resource(f"openai-ft://jobs/{DEMO_JOB_IDS['failed']}/curve.png")
            api.faults.requests.clear()
            for bad in ("ftjob-abc.def", "job-abc", "ftjob-%2E%2E", "ftjob-" + "a" * 95):
                with pytest.raises(MCPError) as refused:
                    await client.read_resource(f"openai-ft://jobs/{bad}/curve.png")
                assert refused.value.error.code == -32602, bad
            assert api.faults.requests == []
    assert unknown.value.error.code == nothing.value.error.code == -32602  # the protocol's resource-not-found
    assert "not_found" in unknown.value.error.message


async def test_the_image_crosses_the_streamable_http_transport():
    with demo_server() as root:
        async with mcp_client(root) as client:
            result = await client.call_tool("plot_training_curve", {"job_id": SUPPORT_BOT})
    assert_a_real_picture(*decoded(result))
    assert "DEMO DATA" in result.structured_content["notice"]


# --- without the [plot] extra -----------------------------------------------------------------------------------------

WITHOUT_MATPLOTLIB = """
import sys, json, importlib.abc

class NoMatplotlib(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoMatplotlib())

import anyio
from mcp import Client, MCPError
from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.server import create_server

async def main():
    async with Client(create_server(Settings.from_env({}, demo=True))) as client:
        tools = [tool.name for tool in (await client.list_tools()).tools]
        result = await client.call_tool("plot_training_curve", {"job_id": sys.argv[1]})
        other = await client.call_tool("training_metrics", {"job_id": sys.argv[1]})
        try:
            await client.read_resource(f"openai-ft://jobs/{sys.argv[1]}/curve.png")
            resource = None
        except MCPError as exc:
            resource = [exc.error.code, exc.error.message]
    print(json.dumps({
        "resource": resource,
        "tools": tools,
        "is_error": result.is_error,
        "text": result.content[0].text,
        "others_work": not other.is_error,
        "links": [block.uri for block in other.content if block.type == "resource_link"],
        "imported": "matplotlib" in sys.modules,
    }))

anyio.run(main)
"""


def test_without_matplotlib_the_tool_is_listed_and_says_how_to_install_it():
    run = subprocess.run(
        [sys.executable, "-c", WITHOUT_MATPLOTLIB, SUPPORT_BOT],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert "plot_training_curve" in out["tools"] and out["is_error"] is True
    assert out["text"].startswith("missing_dependency: ")
    assert "pip install 'openai-checkpoints-mcp[plot]'" in out["text"]
    assert out["others_work"] is True and out["imported"] is False
    assert out["links"] and not [uri for uri in out["links"] if uri.endswith("curve.png")]  # nothing to read there
    code, message = out["resource"]
    assert code == -32603 and message.startswith("missing_dependency: ")


def test_starting_and_listing_import_no_matplotlib():
    script = (
        "import sys, anyio\n"
        "from mcp import Client\n"
        "from openai_checkpoints_mcp.config import Settings\n"
        "from openai_checkpoints_mcp.server import create_server\n"
        "async def main():\n"
        "    async with Client(create_server(Settings.from_env({}, demo=True))) as c:\n"
        "        await c.list_tools(); await c.list_resource_templates()\n"
        "anyio.run(main)\n"
        "print(sorted(m for m in ('matplotlib', 'numpy', 'PIL') if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=clean_env())
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]"


# --- the drawing on its own -------------------------------------------------------------------------------------------


def test_smoothing_is_centred_so_it_does_not_lag():
    line = [float(v) for v in range(100)]
    assert plot.smoothed(line, 9) == pytest.approx(line)  # a centred mean of a straight line is the line
    noisy = [1.0, 3.0] * 50
    assert all(1.5 < v < 2.5 for v in plot.smoothed(noisy, 9)[4:-4])
    assert plot.smoothing_window(10) == 5 and plot.smoothing_window(360) == 19


def test_the_loss_axis_is_logarithmic_only_over_a_factor_of_ten():
    assert plot.wants_log([2.4, 0.2])
    assert not plot.wants_log([2.4, 0.3])
    assert not plot.wants_log([2.4, 0.0, 0.1])  # not every value positive
    assert not plot.wants_log([])


def test_crowded_checkpoint_labels_go_on_separate_rows():
    assert plot.label_rows([100, 300, 500], [60, 60, 60]) == [0, 0, 0]
    assert plot.label_rows([100, 130, 200], [60, 90, 60]) == [0, 1, 0]
    assert plot.label_rows([100, 130, 160], [60, 90, 60]) == [0, 1, 2]


def test_axis_labels_say_what_the_metrics_are():
    assert plot.axis_label(["train_loss", "valid_loss"]) == "loss"
    assert plot.axis_label(["train_mean_reward", "full_valid_mean_reward"]) == "mean reward"
    assert plot.axis_label(["train_loss", "pg_entropy"]) == "train_loss, pg_entropy"


def test_render_refuses_an_empty_figure_and_draws_checkpoints_only():
    with pytest.raises(ValueError):
        plot.render(plot.FigureSpec(title="nothing"))
    empty = table([])
    only = plot.JobCurve(
        job_id="ftjob-x",
        label="x",
        table=empty,
        metrics=("full_valid_loss",),
        retained_steps=(10, 20),
        best_checkpoint=plot.CheckpointMark(20, "full_valid_loss", 0.4),
        checkpoint_values={"full_valid_loss": ((10, 0.5), (20, 0.4))},
    )
    rendered = plot.render(plot.FigureSpec(title="checkpoints only", jobs=(only,)))
    image = Image.open(io.BytesIO(rendered.png))
    assert image.size == (900, 500) and rendered.colours == (plot.TRAIN_COLOUR,)
    with pytest.raises(ValueError):
        plot.render(plot.FigureSpec(title="no such metric", jobs=(plot.JobCurve("ftjob-x", "x", empty, ("x",)),)))


def test_the_legend_names_jobs_by_suffix_then_by_what_differs():
    def sweep_job(n: int, suffix: str | None, lr: float) -> Job:
        body = job(fake_id("ftjob-", n), suffix=suffix)
        body["method"]["supervised"]["hyperparameters"]["learning_rate_multiplier"] = lr
        return Job.model_validate(body)

    jobs = [sweep_job(1, "lr-sweep", 0.5), sweep_job(2, "lr-sweep", 2.0), sweep_job(3, "other", 0.5)]
    assert legend_labels(jobs) == ["lr-sweep, lr 0.5", "lr-sweep, lr 2.0", "other"]
    twins = [sweep_job(4, "same", 1.0), sweep_job(5, "same", 1.0), sweep_job(6, None, 1.0)]
    labels = legend_labels(twins)
    assert labels[:2] == [f"same ({twins[0].id})", f"same ({twins[1].id})"] and labels[2] == twins[2].id


def test_legend_columns_fit_the_width():
    assert plot.legend_columns([15] * 6, 880) == 5
    assert plot.legend_columns([45] * 7, 880) == 2
    assert plot.legend_columns([130, 10], 880) == 1


def test_spikes_are_marked_and_the_plateau_shaded():
    import math
    import random

    from openai_checkpoints_mcp.analysis.training import analyse

    rng = random.Random(3)
    steps = list(range(1, 301))
    train = [(0.3 + 2 * math.exp(-s / 30)) * (1 + 0.04 * rng.gauss(0, 1)) for s in steps]
    for step in (80, 150, 220):
        train[step - 1] *= 1.8
    valid = [None if s % 10 else 0.35 + 2 * math.exp(-s / 35) for s in steps]
    curve = table(steps, train_loss=train, valid_loss=valid)
    analysis = analyse(curve, [100, 200, 300])
    assert analysis.spikes[0].steps == [80, 150, 220] and analysis.plateau and analysis.plateau.detected

    def drawn(with_diagnostics: bool) -> Counter[tuple[int, int, int]]:
        job = plot.JobCurve(
            "ftjob-x",
            "x",
            curve,
            ("train_loss", "valid_loss"),
            retained_steps=(100, 200, 300),
            spikes=analysis.spikes if with_diagnostics else (),
            plateau=analysis.plateau if with_diagnostics else None,
        )
        png = plot.render(plot.FigureSpec(title="spikes", jobs=(job,))).png
        return colour_counts(Image.open(io.BytesIO(png)).convert("RGB"))

    marked, plain = drawn(True), drawn(False)
    assert near(marked, plot.SPIKE_COLOUR, 30) > near(plain, plot.SPIKE_COLOUR, 30) + 30  # three small triangles

    def band(counts: Counter[tuple[int, int, int]]) -> int:
        return sum(n for rgb, n in counts.items() if rgb != WHITE and all(236 <= c <= 250 for c in rgb))

    assert (
        band(marked) > band(plain) + 20_000 and marked[WHITE] > 0.5 * 900 * 500
    )  # a faint band, the picture still mostly white
