"""The pure parts of benchmarks.peer: which configs a family compares, what it reads
back from Joey's and attnmt's logs, where Joey's run directory is, and the report."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from benchmarks.peer import FAMILIES, RNN_REFERENCE, choose, joey, ours, process, report
from benchmarks.peer.__main__ import smoke_data

# ------------------------------------------------------------------ config choice


def test_each_family_names_its_pair_of_configs_and_the_rnn_reference_only_for_the_transformer():
    config, joey_config, reference = choose("rnn", None, None)
    assert (config.name, joey_config.name, reference) == (
        "multi30k_de_en_luong_concat.yaml",
        "rnn_m30k.yaml",
        None,
    )
    config, joey_config, reference = choose("transformer", None, None)
    assert (config.name, joey_config.name) == (
        "multi30k_de_en_transformer.yaml",
        "transformer_m30k.yaml",
    )
    assert reference == RNN_REFERENCE
    for family in FAMILIES.values():  # attnmt's presets ship with the repository
        assert family.ours.is_file()


def test_config_replaces_only_attnmts_model_and_with_rnn_switches_the_reference():
    config, joey_config, reference = choose("transformer", "my.yaml", False)
    assert config == Path("my.yaml")
    assert joey_config.name == "transformer_m30k.yaml"
    assert reference is None
    with pytest.raises(ValueError, match="RNN reference itself"):
        choose("rnn", None, True)
    with pytest.raises(ValueError, match="rnn, transformer"):
        choose("lstm", None, None)


# ------------------------------------------------------------------ Joey's side


def test_joeys_config_copy_changes_only_the_seed_the_data_folder_and_the_logging():
    config = {
        "name": "m",
        "random_seed": 42,
        "data": {"train": "/tmp/joey_m30k/train", "dev": "/tmp/joey_m30k/val",
                 "test": "/tmp/joey_m30k/test_2016_flickr", "src": {"lang": "de"}},
        "training": {"validation_freq": 500, "logging_freq": 25},
    }  # fmt: skip
    copy = joey.for_run(config, 2, Path("/smoke"), 1)
    assert copy["random_seed"] == 2
    assert copy["data"] == {**config["data"], "train": "/smoke/train", "dev": "/smoke/val",
                            "test": "/smoke/test_2016_flickr"}  # fmt: skip
    assert copy["training"] == {"validation_freq": 500, "logging_freq": 1}
    changed = ("random_seed", "data", "training")
    assert {k: v for k, v in copy.items() if k not in changed} == {
        k: v for k, v in config.items() if k not in changed
    }
    assert config["random_seed"] == 42 and config["training"]["logging_freq"] == 25


def test_a_validation_freq_joey_refuses_is_refused_before_any_run():
    joey.check_valid_freq(50, 25)
    joey.check_valid_freq(2, 1)
    for refused in (25, 26, 10):  # not above logging_freq, or not a multiple of it
        with pytest.raises(ValueError, match="multiple of logging_freq"):
            joey.check_valid_freq(refused, 25)
    for family in FAMILIES.values():
        if family.joey.is_file():  # the peer scripts sit outside the repository
            joey.check_valid_freq(family.valid_freq, joey.config_logging_freq(family.joey))


def test_write_config_keeps_the_name_run_sh_names_the_run_directory_after(tmp_path):
    source = tmp_path / "transformer_m30k.yaml"
    sets = {"train": "/d/train", "dev": "/d/val", "test": "/d/test_2016_flickr"}
    source.write_text(
        yaml.safe_dump({"random_seed": 42, "training": {"logging_freq": 25}, "data": sets})
    )
    copy = joey.write_config(source, tmp_path / "seed3", 3, Path("/d"), 25)
    assert copy == tmp_path / "seed3/transformer_m30k.yaml"
    assert yaml.safe_load(copy.read_text())["random_seed"] == 3
    assert joey.config_logging_freq(copy) == 25


def test_joeys_run_directory_is_the_model_dir_of_run_shs_config_copy(tmp_path):
    run_dir = "/tmp/joey_runs/transformer_m30k_peer_window1"  # not /tmp/joey_runs/rnn_m30k_...
    (tmp_path / "train.yaml").write_text(yaml.safe_dump({"name": "x", "model_dir": run_dir}))
    assert joey.run_directory(tmp_path) == Path(run_dir)


JOEY_LOG = """\
2026-12-07 16:46:07,909 - INFO - joeynmt.training - Train config:
2026-12-07 16:46:07,909 - INFO - joeynmt.training - EPOCH 1
2026-12-07 16:46:37,000 - INFO - joeynmt.training - Epoch   1, Step:       25, Batch Loss: 7.1, \
Batch Acc: 0.010000, Tokens per Sec:      400, Lr: 0.000063
2026-12-07 16:47:07,000 - INFO - joeynmt.training - Epoch   1, Step:       50, Batch Loss: 6.2, \
Batch Acc: 0.050000, Tokens per Sec:      651, Lr: 0.000125
2026-12-07 16:47:37,000 - INFO - joeynmt.training - Epoch   1, Step:       75, Batch Loss: 5.9, \
Batch Acc: 0.080000, Tokens per Sec:      660, Lr: 0.000188
2026-12-07 16:47:50,409 - INFO - joeynmt.training - Interrupt at epoch 1, step 80.
"""


def test_joeys_training_time_runs_from_the_first_epoch_to_the_interruption():
    assert joey.training_seconds(JOEY_LOG) == pytest.approx(102.5)
    assert joey.training_seconds(JOEY_LOG.replace("Interrupt at", "Stopped at")) is None


def test_joeys_logged_rates_leave_out_the_first_interval():
    assert joey.logged_rates(JOEY_LOG) == [651.0, 660.0]


# ------------------------------------------------------------------ attnmt's side and /usr/bin/time


def test_attnmts_printed_speed_steps_and_precision():
    printed = (
        "precision auto: bf16 (1.61x fp32 on this run's batches)\n"
        "stopped after 1234 steps (max_minutes), 5.0 min\n"
        "training speed: 2,325 target tokens/s, 9,876,543 parameters\n"
    )
    assert ours.printed_figures(printed) == {
        "tok_per_s": 2325.0,
        "steps": 1234,
        "precision": "bf16 (1.61x fp32 on this run's batches)",
    }
    assert ours.printed_figures("") == {"tok_per_s": None, "steps": None, "precision": None}


def test_gnu_time_reads_wall_clock_and_peak_rss(tmp_path):
    report_file = tmp_path / "x.time"
    report_file.write_text(
        "\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02:03.5\n"
        "\tMaximum resident set size (kbytes): 2373084\n"
    )
    wall, rss = process.gnu_time(report_file)
    assert wall == pytest.approx(3723.5)
    assert rss == pytest.approx(2373084 / 1024)
    assert process.gnu_time(tmp_path / "missing") == (None, None)


def test_smoke_data_cuts_dev_and_test_and_links_the_rest(tmp_path, monkeypatch):
    prepared, raw = tmp_path / "joey_m30k", tmp_path / "gz"
    prepared.mkdir()
    raw.mkdir()
    for name in ("train", "val", "test_2016_flickr"):
        for lang in ("de", "en"):
            (prepared / f"{name}.{lang}").write_text("".join(f"{lang} {i}\n" for i in range(9)))
    for name in ("spm_joint8k.model", "vocab_joint8k.txt", "train.de.gz", "train.en.gz"):
        (prepared if "gz" not in name else raw).joinpath(name).write_text("x")
    monkeypatch.setattr(joey, "DATA", prepared)
    ours_data, joey_data = smoke_data(tmp_path / "smoke", 3, raw)
    assert (joey_data / "test_2016_flickr.en").read_text() == "en 0\nen 1\nen 2\n"
    assert (joey_data / "val.de").read_text().count("\n") == 3
    assert (joey_data / "train.de").resolve() == prepared / "train.de"
    assert (joey_data / "vocab_joint8k.txt").is_symlink()
    assert (ours_data / "train.en.gz").resolve() == raw / "train.en.gz"
    import gzip

    with gzip.open(ours_data / "val.de.gz", "rt") as f:
        assert f.read() == "de 0\nde 1\nde 2\n"


# ------------------------------------------------------------------ the report


def window(toolkit: str, rate: float, rss: float) -> dict:
    return {"toolkit": toolkit, "tok_per_s": rate, "train_rss_mib": rss}


def cells(rows: list[str], start: str) -> list[str]:
    (found,) = [r for r in rows if r.startswith(f"| {start}")]
    return [c.strip() for c in found.strip("|").split("|")]


def test_speed_ratios_are_means_over_the_windows_with_the_familys_target():
    windows = [window("joey", 600, 2000), window("attnmt", 2400, 1500),
               window("reference", 3000, 1200), window("joey", 400, 2100),
               window("attnmt", 2600, 1600), window("reference", 3400, 1300)]  # fmt: skip
    results = {"windows": windows, "quality": [], "minutes": 30}
    rows = report.tables(results, FAMILIES["transformer"])
    joey_table, reference_table = "\n".join(rows).split("\n\n")
    speed = cells(joey_table.splitlines(), "training target tokens/s")
    assert speed[1:4] == ["2,500", "500", "5.00×"]  # 2,500 / 500
    assert speed[4] == "≥ 5×: met"
    assert cells(joey_table.splitlines(), "peak RSS")[1:5] == [
        "1,600",
        "2,100",
        "0.76×",
        "≤ 1×: met",
    ]
    speed = cells(reference_table.splitlines(), "training target tokens/s")
    assert speed[1:4] == ["2,500", "3,200", "0.78×"]
    assert speed[4] == "≥ 1.5× (moonshot 2×): **not met**"
    rows = report.tables({**results, "windows": windows[:2]}, FAMILIES["rnn"])
    assert "\n\n" not in "\n".join(rows)  # no reference timed: no second table
    assert cells(rows, "training target tokens/s")[4] == "≥ 3× (moonshot 5×): met"  # 4×


def test_quality_rows_average_the_seeds_and_name_each_decoded_checkpoint():
    def side(bleu: float, step: int) -> dict:
        return {"steps": 1000, "tok_per_s": 1.0, "train_rss_mib": 1.0, "best_step": step,
                "best_dev_bleu": 30.0, "greedy_bleu": bleu - 1, "beam5_bleu": bleu,
                "greedy_sent_per_s": 100.0, "beam5_sent_per_s": 30.0,
                "greedy_rss_mib": 900.0, "beam5_rss_mib": 1000.0}  # fmt: skip

    runs = [
        {"seed": 1, "attnmt": side(38.0, 1250), "joey": side(35.0, 600)},
        {"seed": 2, "attnmt": side(37.0, 1500), "joey": side(36.0, 400)},
    ]
    rows = report.quality_rows(runs, 30, FAMILIES["transformer"])
    assert cells(rows, "test_2016_flickr BLEU, beam 5")[1:] == [
        "37.50", "35.50", "+2.00", "≥ +2: met"]  # fmt: skip
    assert cells(rows, "seed 2: BLEU, beam 5")[1:4] == ["37.00", "36.00", "+1.00"]
    assert cells(rows, "seed 1: step of the decoded")[1:3] == [
        "1,250 (dev 30.00)",
        "600 (dev 30.00)",
    ]
    assert cells(rows, "decoding sentences/s, greedy")[4] == ""  # the Transformer: beam 5 only
    assert cells(rows, "decoding sentences/s, beam 5")[4] == "≥ 3×: **not met**"
