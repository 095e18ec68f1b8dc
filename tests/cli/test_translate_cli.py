"""`attnmt translate`: streams, files, formats, the interactive loop, and one-line errors.
(`attnmt chat` is tested in test_chat_pty.py and translate/test_chatbot.py.)"""

from __future__ import annotations

import builtins
import gzip
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import SENTENCES, make_run

from attnmt.cli import translate as translate_command
from attnmt.cli.main import main
from attnmt.translate.schema import Translation, formatter
from attnmt.translate.streaming import interactive, terminal_lines, translate_stream
from attnmt.translate.translator import Translator

LINES = [SENTENCES[0], "", SENTENCES[1], SENTENCES[2]]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def translator(run_dir: Path) -> Translator:
    return Translator.load(run_dir, device="cpu")


def feed_stdin(monkeypatch: pytest.MonkeyPatch, lines: list[str]) -> None:
    """Pipe `lines` into stdin (not a terminal)."""
    data = "".join(line + "\n" for line in lines).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def cli(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    lines: list[str],
    *args: str,
) -> tuple[int, str, str]:
    feed_stdin(monkeypatch, lines)
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def expected_texts(translator: Translator, **options: object) -> list[str]:
    return [r.text for r in translator.translate(LINES, **options)]


def test_stdin_to_stdout(
    run_dir: Path, translator: Translator, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    code, out, _ = cli(monkeypatch, capsys, LINES, "translate", "--model", str(run_dir))
    assert code == 0
    assert out.split("\n")[:-1] == expected_texts(translator)
    assert out.split("\n")[1] == ""  # the empty line stays an empty line


def test_files_in_and_out_gzip_input(
    run_dir: Path, translator: Translator, tmp_path: Path, monkeypatch, capsys
) -> None:
    source = tmp_path / "in.txt.gz"
    source.write_bytes(gzip.compress("".join(x + "\n" for x in LINES).encode()))
    target = tmp_path / "out" / "translations.txt"
    args = ["translate", "--model", str(run_dir), "--beam", "2"]
    code, out, _ = cli(
        monkeypatch, capsys, [], *args, "--input", str(source), "--output", str(target)
    )
    assert code == 0 and out == ""
    assert target.read_text(encoding="utf-8").split("\n")[:-1] == expected_texts(translator, beam=2)
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temp file left


def test_json_format_has_every_field(run_dir: Path, monkeypatch, capsys) -> None:
    args = ["translate", "--model", str(run_dir), "--format", "json", "--beam", "3"]
    code, out, _ = cli(monkeypatch, capsys, LINES, *args, "--n-best", "2")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == len(LINES)
    for line, record in zip(LINES, records, strict=True):
        keys = {"text", "score", "rank_score", "tokens", "source_tokens", "attention"}
        assert keys | {"hypotheses", "unknown"} == record.keys()
        assert record["unknown"] == []  # every word of LINES is in the tiny run's vocabulary
        assert len(record["source_tokens"]) == len(line.split())
        assert len(record["attention"]) == len(record["tokens"]) + 1
        assert all(len(row) == len(record["source_tokens"]) for row in record["attention"])
        assert len(record["hypotheses"]) == (2 if line else 1)  # an empty line: one, empty
        assert all(keys - {"source_tokens"} == h.keys() for h in record["hypotheses"])
        assert {k: record["hypotheses"][0][k] for k in keys - {"source_tokens"}} == {
            k: record[k] for k in keys - {"source_tokens"}
        }
        assert all(round(w, 4) == w for row in record["attention"] for w in row)


def test_json_units_words_merges_pieces(translator: Translator) -> None:
    """Words: tokens lose the "▁" mark, rows stay distributions and match word_attention."""
    result = translator.translate(SENTENCES[0], beam=2, n_best=2)
    record = result.to_dict(units="words")
    src_words, tgt_words, merged = result.word_attention()
    assert record["source_tokens"] == src_words
    assert record["tokens"] + ["</s>"] == tgt_words
    assert np.allclose(record["attention"], merged, atol=1e-4)
    for h in record["hypotheses"]:
        assert all(sum(row) == pytest.approx(1.0, abs=1e-3) for row in h["attention"])
    assert result.to_dict(attention=False)["attention"] is None


def test_n_best_text_format(run_dir: Path, translator: Translator, monkeypatch, capsys) -> None:
    args = ["translate", "--model", str(run_dir), "--beam", "3", "--n-best", "3"]
    code, out, _ = cli(monkeypatch, capsys, LINES, *args)
    assert code == 0
    rows = [line.split(" ||| ") for line in out.splitlines()]
    expected = translator.translate(LINES, beam=3, n_best=3)
    assert [int(index) for index, _, _ in rows] == [
        i for i, r in enumerate(expected) for _ in r.hypotheses
    ]
    assert [text for _, text, _ in rows] == [h.text for r in expected for h in r.hypotheses]
    for (_, _, score), h in zip(rows, [h for r in expected for h in r.hypotheses], strict=True):
        assert float(score) == pytest.approx(h.score, abs=1e-4)


def test_chunked_streaming_keeps_order(translator: Translator) -> None:
    lines = SENTENCES[:7]
    render = formatter("text", 1)
    outputs: list[str] = []
    count = translate_stream(
        lambda chunk, _: translator.translate(chunk), lines, outputs.append, render, chunk_lines=3
    )
    assert count == 7 and len(outputs) == 3  # chunks of 3, 3 and 1 lines
    assert "".join(outputs).splitlines() == [r.text for r in translator.translate(lines)]


def test_missing_model_is_one_line_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "attnmt.cli", "translate", "--model", "no/such/run"],
        input="a dog\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "attnmt translate: error: run directory not found: no/such/run"
    ]


def test_bad_options_and_input_are_one_line_errors(
    run_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    for args, fragment in [
        (["--n-best", "2"], "n_best (2) must be at most beam (1)"),
        (["--top-p", "2"], "decode.top_p"),
        (["--input", str(tmp_path / "missing.txt")], "--input: file not found"),
    ]:
        code, out, err = cli(monkeypatch, capsys, [], "translate", "--model", str(run_dir), *args)
        assert code == 2 and out == ""
        assert len(err.strip().splitlines()) == 1 and fragment in err


# ---------------------------------------------------------------------------
# Interactive use


def test_interactive_loop_translates_each_line_until_eof(translator: Translator) -> None:
    written: list[str] = []
    code = interactive(
        translator.translate, iter(SENTENCES[:3]), written.append, formatter("text", 1)
    )
    assert code == 0
    assert [w.rstrip("\n") for w in written] == [
        r.text for r in translator.translate(SENTENCES[:3])
    ]


@pytest.mark.parametrize("stop", [EOFError, KeyboardInterrupt])
def test_terminal_lines_end_cleanly_on_ctrl_d_and_ctrl_c(
    monkeypatch: pytest.MonkeyPatch, stop: type[BaseException]
) -> None:
    typed = iter(["first", "second"])

    def fake_input(prompt: str) -> str:
        line = next(typed, None)
        if line is None:
            raise stop
        return line

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(builtins, "input", fake_input)
    assert list(terminal_lines("> ")) == ["first", "second"]


def test_translate_on_a_terminal_is_interactive(
    run_dir: Path, translator: Translator, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def typed() -> Iterator[str]:
        yield SENTENCES[0]
        raise KeyboardInterrupt  # Ctrl-C while translating the next line

    feed_stdin(monkeypatch, [])
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(translate_command, "terminal_lines", lambda prompt: typed())
    assert main(["translate", "--model", str(run_dir)]) == 0
    assert capsys.readouterr().out == translator.translate(SENTENCES[0]).text + "\n"


def test_results_render_from_translations() -> None:
    empty = Translation("", [], [], 0.0, 0.0, None)
    empty.hypotheses = [empty]
    assert formatter("text", 2)(4, empty) == "4 |||  ||| 0.0000\n"
    assert json.loads(formatter("json", 1)(0, empty))["attention"] is None
