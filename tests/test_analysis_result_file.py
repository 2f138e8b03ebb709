"""Unit tests of analysis.result_file: parsing result files (CSV, base64, Azure columns, encodings, bad cells)."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path

import pytest

from openai_checkpoints_mcp.analysis.result_file import (
    ResultFileError,
    ResultTable,
    decode_result_file,
    parse_result_file,
    result_file_text,
)
from openai_checkpoints_mcp.fake.curves import (
    RFT_COLUMNS,
    SFT_COLUMNS,
    LossCurve,
    RewardCurve,
    loss_rows,
    result_csv,
    reward_rows,
)

DATA = Path(__file__).parent / "data"


SAMPLE_CSV = (DATA / "step_metrics.csv").read_bytes()


SAMPLE_B64 = (DATA / "step_metrics.csv.b64").read_bytes()


SFT_NAMES = [
    "train_loss",
    "train_mean_token_accuracy",
    "valid_loss",
    "valid_mean_token_accuracy",
]


def parse(text: str) -> ResultTable:
    return parse_result_file(text.encode())


def test_decode_gives_the_csv_and_how_it_was_served() -> None:
    assert decode_result_file(SAMPLE_CSV) == (SAMPLE_CSV, "csv")
    assert decode_result_file(SAMPLE_B64) == (base64.b64decode(SAMPLE_B64), "base64")
    assert base64.b64decode(SAMPLE_B64) == SAMPLE_CSV
    with pytest.raises(ResultFileError, match="HTML page"):
        decode_result_file(b"<html><title>Bad gateway</title></html>")


def test_sample_csv() -> None:
    table = parse_result_file(SAMPLE_CSV)
    assert table.encoding == "csv"
    assert table.steps == tuple(range(1, 11))
    assert list(table.columns) == SFT_NAMES
    assert table.renamed == {"train_accuracy": "train_mean_token_accuracy"}
    assert table.columns["train_loss"][0] == 2.41873
    assert table.columns["train_mean_token_accuracy"][-1] == 0.8
    assert table.columns["valid_loss"] == (None,) * 9 + (0.88231,)
    assert table.values("valid_mean_token_accuracy") == [(10, 0.76744)]
    assert table.values("absent") == []
    assert (table.skipped_rows, table.duplicate_rows, table.dropped_columns) == (
        0,
        0,
        (),
    )


@pytest.mark.parametrize(
    "body",
    [
        SAMPLE_B64,
        base64.encodebytes(SAMPLE_CSV),  # wrapped at 76 characters
        SAMPLE_B64.rstrip(b"=\n"),  # padding dropped
        base64.urlsafe_b64encode(SAMPLE_CSV),
        base64.b64encode(b"\xef\xbb\xbf" + SAMPLE_CSV.replace(b"\n", b"\r\n")),  # BOM and CRLF inside
        b"  \n" + SAMPLE_B64 + b"\n\n",
    ],
    ids=[
        "sample",
        "wrapped",
        "unpadded",
        "urlsafe",
        "bom-crlf-inside",
        "surrounding-blank-lines",
    ],
)
def test_base64_forms_parse_like_the_csv(body: bytes) -> None:
    plain, encoded = parse_result_file(SAMPLE_CSV), parse_result_file(body)
    assert encoded.encoding == "base64"
    assert (encoded.steps, encoded.columns, encoded.renamed) == (
        plain.steps,
        plain.columns,
        plain.renamed,
    )


@pytest.mark.parametrize(
    "body", [SAMPLE_CSV, SAMPLE_B64, base64.encodebytes(SAMPLE_CSV)], ids=["csv", "b64", "wrapped"]
)
def test_result_file_text_is_the_csv_decoded(body: bytes) -> None:
    assert result_file_text(body) == SAMPLE_CSV.decode()
    assert result_file_text(b"\xef\xbb\xbf" + SAMPLE_CSV) == SAMPLE_CSV.decode()  # without the BOM


@pytest.mark.parametrize("body", [b"", b"<html><body>Sign in</body></html>", base64.b64encode(b"a,b\n1,2\n")])
def test_result_file_text_refuses_what_parsing_refuses(body: bytes) -> None:
    with pytest.raises(ResultFileError):
        parse_result_file(body)
    with pytest.raises(ResultFileError):
        result_file_text(body)


def test_azure_columns_are_renamed_to_checkpoint_names() -> None:
    table = parse(
        "step,train_loss,train_mean_token_accuracy,valid_loss,validation_mean_token_accuracy,full_valid_loss,"
        "full_valid_mean_token_accuracy\n"
        "1,2.5,0.4,,,,\n"
        "2,2.1,0.5,2.2,0.45,2.15,0.46\n"
    )
    assert list(table.columns) == [
        *SFT_NAMES,
        "full_valid_loss",
        "full_valid_mean_token_accuracy",
    ]
    assert table.renamed == {"validation_mean_token_accuracy": "valid_mean_token_accuracy"}
    assert table.columns["valid_mean_token_accuracy"] == (None, 0.45)
    assert table.columns["full_valid_loss"] == (None, 2.15)


def test_full_validation_alias() -> None:
    table = parse("step,full_validation_mean_token_accuracy\n5,0.7\n")
    assert table.columns == {"full_valid_mean_token_accuracy": (0.7,)}
    assert table.renamed == {"full_validation_mean_token_accuracy": "full_valid_mean_token_accuracy"}


def test_reinforcement_columns_are_kept_as_written() -> None:
    header = (
        "step,train_mean_reward,full_valid_mean_reward,pg_loss_sum,total_loss_sum,entropy_loss_sum,"
        "completion_tokens_mean,errors/graders/triage/train_sample_parse_error_count"
    )
    table = parse(f"{header}\n1,0.41,,0.12,0.2,-0.08,755.5,0\n5,0.52,0.5,0.1,0.18,-0.07,700.25,2\n")
    assert list(table.columns) == header.split(",")[1:]
    assert table.renamed == {}
    assert table.columns["full_valid_mean_reward"] == (None, 0.5)
    assert table.columns["entropy_loss_sum"] == (-0.08, -0.07)
    assert table.columns["errors/graders/triage/train_sample_parse_error_count"] == (
        0.0,
        2.0,
    )


@pytest.mark.parametrize(
    ("columns", "base64_encoded"),
    [(SFT_COLUMNS, False), (SFT_COLUMNS, True), (RFT_COLUMNS, False)],
)
def test_reads_the_demo_result_files(columns: list[tuple[str, str]], base64_encoded: bool) -> None:
    if columns is SFT_COLUMNS:
        rows = loss_rows(
            LossCurve(2.4, 0.42, 35, 0.25, valid_start=2.2, valid_floor=0.33, valid_tau=40),
            steps_per_epoch=30,
            n_epochs=2,
            validation=True,
            seed="test",
        )
    else:
        rows = reward_rows(
            RewardCurve(0.4, 0.8, 10, 30, 0.001),
            total_steps=40,
            eval_interval=5,
            seed="test",
        )
    body = result_csv(rows, columns)
    table = parse_result_file(base64.b64encode(body) if base64_encoded else body)
    assert table.encoding == ("base64" if base64_encoded else "csv")
    assert table.steps == tuple(row["step"] for row in rows)
    for _, key in columns[1:]:
        assert table.columns[key] == tuple(row.get(key) for row in rows), key


def test_blank_and_bad_cells_are_missing() -> None:
    table = parse(
        "step,train_loss,valid_loss,note\n"
        "1, 2.5 ,  ,ok\n"
        "2,nan,inf,\n"
        "3,-inf,abc,fine\n"
        "4,1_000,0.5\n"  # a short row: the missing cell is empty
        "5,1e-3,NaN,x\n"
    )
    assert table.columns["train_loss"] == (2.5, None, None, None, 0.001)
    assert table.columns["valid_loss"] == (None, None, None, 0.5, None)
    assert "note" not in table.columns
    assert table.dropped_columns == ("note",)


@pytest.mark.parametrize(
    ("text", "columns", "dropped"),
    [
        (
            "step,valid_loss\n1,n/a\n2,n/a\n",
            {"valid_loss": (None, None)},
            (),
        ),  # known: kept though never a number
        ("step,status\n1,ok\n2,ok\n", {}, ("status",)),  # unknown text column: dropped
        (
            "step,grad_norm\n1,\n2,\n",
            {"grad_norm": (None, None)},
            (),
        ),  # unknown but all empty: kept
        (
            "step,grad_norm\n1,nan\n2,inf\n",
            {"grad_norm": (None, None)},
            (),
        ),  # numbers, none finite: kept
        (
            "step,train_loss,\n1,0.5,\n",
            {"train_loss": (0.5,)},
            ("(unnamed column 3)",),
        ),  # trailing comma
    ],
    ids=["known-text", "unknown-text", "unknown-empty", "non-finite", "trailing-comma"],
)
def test_which_columns_are_kept(
    text: str, columns: dict[str, tuple[float | None, ...]], dropped: tuple[str, ...]
) -> None:
    table = parse(text)
    assert (table.columns, table.dropped_columns) == (columns, dropped)


def test_header_names_are_stripped_and_case_folded() -> None:
    table = parse("\ufeff STEP , Train_Loss ,Train_Accuracy, My_Metric\n1,0.5,0.9,3\n")
    assert list(table.columns) == [
        "train_loss",
        "train_mean_token_accuracy",
        "My_Metric",
    ]
    assert table.renamed == {
        "Train_Loss": "train_loss",
        "Train_Accuracy": "train_mean_token_accuracy",
    }


def test_canonical_column_wins_over_its_alias() -> None:
    table = parse("step,train_accuracy,train_mean_token_accuracy,step\n1,0.1,0.9,7\n")
    assert table.columns == {"train_mean_token_accuracy": (0.9,)}
    assert table.renamed == {}
    assert table.dropped_columns == ("train_accuracy", "step")


def test_crlf_bom_blank_lines_and_trailing_commas() -> None:
    body = b"\xef\xbb\xbf\r\nstep,train_loss,valid_loss,\r\n1,2.0,,\r\n\r\n,,,\r\n2,1.5,1.7,\r\n\r\n\r\n"
    table = parse_result_file(body)
    assert table.encoding == "csv"
    assert table.steps == (1, 2)
    assert table.columns == {"train_loss": (2.0, 1.5), "valid_loss": (None, 1.7)}
    assert table.skipped_rows == 0


def test_utf16_with_bom() -> None:
    table = parse_result_file("step,train_loss\n1,0.5\n".encode("utf-16"))
    assert table.columns == {"train_loss": (0.5,)}


def test_duplicated_steps_last_row_wins_and_steps_are_sorted() -> None:
    table = parse("step,train_loss,valid_loss\n3,0.3,\n1,1.0,0.9\n2,0.5,\n1,0.8,\n")
    assert table.steps == (1, 2, 3)
    assert table.columns == {
        "train_loss": (0.8, 0.5, 0.3),
        "valid_loss": (None, None, None),
    }
    assert table.duplicate_rows == 1


@pytest.mark.parametrize(
    ("step_cell", "kept_step"),
    [
        ("7", 7),
        (" 7 ", 7),
        ("88.0", 88),
        ("0", 0),
        ("", None),
        ("abc", None),
        ("-1", None),
        ("1.5", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_step_cells(step_cell: str, kept_step: int | None) -> None:
    table = parse(f"step,train_loss\n{step_cell},0.5\n")
    assert table.steps == (() if kept_step is None else (kept_step,))
    assert table.skipped_rows == (1 if kept_step is None else 0)


def test_header_only_file_has_no_steps() -> None:
    table = parse("step,train_loss,train_accuracy\n")
    assert table.steps == ()
    assert table.columns == {"train_loss": (), "train_mean_token_accuracy": ()}
    assert parse("step").steps == ()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the result file is empty"),
        (b" \r\n\n\t", "the result file is empty"),
        (b"Cg==", "the result file is empty (after base64 decoding)"),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "not CSV and not base64 of CSV: the body is binary data (16 bytes",
        ),
        (
            gzip.compress(SAMPLE_CSV, mtime=0),
            "not CSV and not base64 of CSV: the body is binary data",
        ),
        (
            b"<!DOCTYPE html>\n<html><head><title>502 Bad\n Gateway</title></head><body>nginx</body></html>",
            "not CSV and not base64 of CSV: the body is an HTML page titled '502 Bad Gateway'",
        ),
        (
            b'{"error": {"message": "No such File object: file-abc", "type": "invalid_request_error"}}',
            "not CSV and not base64 of CSV: the body is JSON with error message 'No such File object: file-abc'",
        ),
        (
            b'{"data": []}',
            "not CSV and not base64 of CSV: the body is JSON: '{\"data\": []}'",
        ),
        (b"Not Found", "not CSV and not base64 of CSV; it starts with 'Not Found'"),
        (b"epoch,train_loss\n1,0.5\n", "no step column; header was: epoch,train_loss"),
        (
            base64.b64encode(b"epoch,loss\n1,2\n"),
            "no step column (in the base64-decoded CSV); header was: epoch,loss",
        ),
        (
            b"\x00step,train_loss\n",
            "not CSV and not base64 of CSV: the body is binary data",
        ),
    ],
    ids=[
        "empty",
        "whitespace",
        "base64-of-newline",
        "png",
        "gzip",
        "html",
        "json-error",
        "json-other",
        "text",
        "no-step-column",
        "base64-no-step-column",
        "nul",
    ],
)
def test_bodies_that_are_not_result_files(body: bytes, message: str) -> None:
    with pytest.raises(ResultFileError) as caught:
        parse_result_file(body)
    assert str(caught.value).startswith(message)


def test_long_base64_line_is_not_mistaken_for_a_csv_field() -> None:
    """One base64 line longer than the csv module's field limit (128 KiB) still decodes."""
    rows = "".join(f"{step},{1 / step:.5f}\n" for step in range(1, 20_000))
    body = base64.b64encode(f"step,train_loss\n{rows}".encode())
    assert len(body) > 131_072
    table = parse_result_file(body)
    assert (table.encoding, len(table.steps)) == ("base64", 19_999)
