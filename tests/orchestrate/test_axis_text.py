"""One spelling of an axis value (axis_text.py): keys as existing studies stored them, tags in the key's
spelling, a study tagged in the old spelling comparing the same, the seed read from where it is stored."""

from __future__ import annotations

import math

import pandas as pd
from mlflow import MlflowClient
from orchestrate_helpers import planted_training, results_dir, store_args

from lit_snn.orchestrate import ablate_main, compare, load_spec
from lit_snn.orchestrate.axis_text import (
    axis_tags,
    key_text,
    parse_key,
    parse_text,
    seed_of_key,
    stored_spellings,
    value_text,
)
from lit_snn.orchestrate.space import decode_value, encode_value, point_key
from lit_snn.orchestrate.statistics import grid_label
from lit_snn.orchestrate.trial_runs import _seeds

MIXED = {"model.neuron": "lif", "model.time_steps": 4, "model.lr": 0.5, "model.neuron_overrides.detach_reset": True,
         "model.backbone_kwargs": {"widths": [8, 16], "act": None}, "data.init_args.crop": [28, 28]}
# the key of MIXED at seed 2 exactly as studies run before axis_text.py stored it (Optuna user attr
# `key`, MLflow tag lit_snn.key): a resumed study finds its trials by it, so it must never change
MIXED_KEY = ('model.neuron=lif,model.time_steps=4,model.lr=0.5,model.neuron_overrides.detach_reset=true,'
             'model.backbone_kwargs={"act": null, "widths": [8, 16]},data.init_args.crop=[28, 28],seed=2')


def test_one_spelling_and_what_derives_from_it():
    assert point_key(MIXED, 2) == key_text(MIXED, 2) == MIXED_KEY
    assert grid_label(MIXED) == key_text(MIXED) == MIXED_KEY.rsplit(",seed=", 1)[0]
    texts = parse_key(MIXED_KEY)  # the inverse, though JSON values hold commas
    assert texts == {**{path: value_text(v) for path, v in MIXED.items()}, "seed": "2"}
    assert {path: parse_text(text) for path, text in texts.items() if path != "seed"} == MIXED
    assert axis_tags(MIXED) == {f"axis.{path}": text for path, text in texts.items() if path != "seed"}
    assert parse_key("") == {} and parse_key("model.neuron=lif") == {"model.neuron": "lif"}
    # the Optuna param: a scalar as it is, a list or dict as json: + its text (as stored studies hold them)
    assert encode_value(True) is True and encode_value("lif") == "lif" and encode_value(0.5) == 0.5
    assert encode_value([28, 28]) == "json:[28, 28]" and decode_value(encode_value(MIXED["model.backbone_kwargs"])) \
        == MIXED["model.backbone_kwargs"]
    assert parse_text("lif") == "lif" and parse_text("2") == 2 and math.isnan(parse_text(math.nan))


def test_seed_of_a_key_and_of_a_run():
    assert seed_of_key(MIXED_KEY) == 2 and seed_of_key("seed=0") == 0
    assert seed_of_key("model.lr=0.01,model.time_steps=4") is None  # a sweep's key has no seed
    assert seed_of_key(math.nan) is None
    runs = pd.DataFrame({"params.seed_everything": ["3", None, None],
                         "tags.lit_snn.key": ["model.neuron=lif,seed=0", "model.neuron=lif,seed=1", "model.lr=0.1"]})
    assert _seeds(runs).tolist() == [3, 1, pd.NA]  # the param where logged, the key where not, else none


def test_old_spellings_read_as_the_text():
    spellings = stored_spellings([True, None, ["a", 1], "lif", 2, 0.5])
    assert spellings == {"True": "true", "true": "true", "None": "null", "null": "null", "['a', 1]": '["a", 1]',
                         '["a", 1]': '["a", 1]', "lif": "lif", "2": "2", "0.5": "0.5"}


def test_a_study_tagged_in_the_old_spelling_compares_the_same(tmp_path, write_study, monkeypatch):
    """New runs are tagged with the key's spelling (true); a study whose runs hold str's (True), as
    before axis_text.py, gives the same statistics and the same report."""
    monkeypatch.setattr("lit_snn.orchestrate.study.run_training", planted_training({"ar_lif": 0.05}))
    flag = "model.neuron_overrides.detach_reset"
    path = write_study("flag", axes={"model.neuron": ["lif", "ar_lif"], flag: [False, True]}, seeds=[0, 1],
                       baseline={flag: True})
    assert ablate_main([str(path), *store_args(tmp_path), "--no-compare"]) == 0
    store = f"sqlite:///{tmp_path / 'store' / 'mlruns.db'}"
    client = MlflowClient(tracking_uri=store)
    runs = [r for r in client.search_runs([client.get_experiment_by_name("ablation/flag").experiment_id])
            if r.data.tags.get("lit_snn.role") == "trial"]
    assert len(runs) == 8
    for run in runs:
        tag, key = run.data.tags[f"axis.{flag}"], run.data.tags["lit_snn.key"]
        assert tag in ("false", "true") and tag == parse_key(key)[flag]
    spec = load_spec(path, "ablation")
    report = results_dir(tmp_path, path) / "report.md"
    new = compare(spec, store, results_dir=tmp_path / "results", log=lambda _: None)
    new_report = report.read_text()
    assert f"### {flag} (baseline true)" in new_report
    assert "### every grid point (baseline model.neuron=lif,model.neuron_overrides.detach_reset=true)" in new_report
    arm_runs = [r for r in client.search_runs([client.get_experiment_by_name("ablation/flag").experiment_id])
                if r.data.tags.get("lit_snn.role") == "arm"]
    assert {r.data.tags.get(f"axis.{flag}") for r in arm_runs} == {"false", "true", None}  # None: the neuron arms

    for run in runs:  # back to the spelling runs were tagged with before
        client.set_tag(run.info.run_id, f"axis.{flag}", str(parse_text(run.data.tags[f"axis.{flag}"])))
    assert {client.get_run(r.info.run_id).data.tags[f"axis.{flag}"] for r in runs} == {"False", "True"}
    old = compare(spec, store, results_dir=tmp_path / "results", log=lambda _: None)
    assert report.read_text() == new_report
    pd.testing.assert_frame_equal(old.stats, new.stats)
    assert old.runs[f"axis.{flag}"].tolist() == new.runs[f"axis.{flag}"].tolist()
