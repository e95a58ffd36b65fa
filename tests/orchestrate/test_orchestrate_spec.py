"""Study files: structure checks, grid expansion, and bad input rejected before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from orchestrate_helpers import store_args, tiny_base

from lit_snn.orchestrate import SpecError, ablate_main, load_spec, sweep_main
from lit_snn.orchestrate.space import check_sweep, expand_grid
from lit_snn.orchestrate.spec import AblationSpec, SweepSpec, default_direction, spec_from_dict
from lit_snn.orchestrate.spec_schema import file_keys
from lit_snn.orchestrate.yamlio import parse_yaml

REPO = Path(__file__).resolve().parents[2]


def _nothing_created(tmp_path: Path) -> None:
    """No Optuna study, no MLflow run: the stores were not even created."""
    store = tmp_path / "store"
    assert not (store / "optuna.db").exists()
    assert not (store / "mlruns.db").exists()
    assert not (store / "mlartifacts").exists()


def _ablation(tmp_path: Path, **fields) -> dict:
    return {"base": tiny_base(tmp_path / "data"), "axes": {"model.neuron": ["lif", "ar_lif"]}, **fields}


# ---------------------------------------------------------------------- YAML
def test_yaml_floats_and_line_numbers():
    assert parse_yaml("lr: 1e-3\nwd: 5E+4\nn: 2") == {"lr": 0.001, "wd": 50000.0, "n": 2}
    with pytest.raises(SpecError, match=r"f\.yaml:3:\d+: malformed YAML"):
        parse_yaml("a: 1\nb: [1, 2\n", "f.yaml")
    with pytest.raises(SpecError, match=r"duplicate key 'a' \(first defined on line 1\)"):
        parse_yaml("a: 1\nb: 2\na: 3\n", "f.yaml")


@pytest.mark.parametrize(
    "text, message",
    [
        ("axes:\n  model.neuron: [lif, ar_lif\nseeds: [0]\n", r"bad\.yaml:\d+:\d+: malformed YAML"),
        ("base_config: nowhere.yaml\naxes: {model.neuron: [lif]}\n", r"base_config 'nowhere.yaml' not found"),
    ],
    ids=["malformed-yaml", "missing-base-config"],
)
def test_bad_file_rejected_before_any_trial(tmp_path, text, message, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert ablate_main([str(path), *store_args(tmp_path)]) == 2
    assert __import__("re").search(message, capsys.readouterr().err)
    _nothing_created(tmp_path)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"axes": {"model.neuron_overrides.rset": ["hard"]}}, r"'rset' is not a neuron field"),
        ({"axes": {"model.nueron": ["lif"]}}, r"'model.nueron' is not a setting.*did you mean model.neuron"),
        ({"axes": {"trainer.max_epoch": [1]}}, r"not a lightning.Trainer argument.*max_epochs"),
        ({"axes": {"model.neuron": ["lif", "no_such_neuron"]}}, r"unknown neuron preset.*no_such_neuron"),
        ({"axes": {"model.neuron": []}}, r"axes.model.neuron: list should have at least 1 item"),
        ({"axes": {"model.neuron": "lif"}}, r"axes.model.neuron: input should be a valid list, got 'lif'"),
        ({"axes": {}}, r"axes: dictionary should have at least 1 item"),
        ({"seeds": []}, r"seeds: list should have at least 1 item"),
        ({"seeds": [0, "one"]}, r"seeds\[1\]: input should be a valid integer, got 'one'"),
        ({"seeds": [1, 1]}, r"seeds: value 1 is listed twice"),
        ({"seeds": [True]}, r"seeds\[0\]: input should be a valid integer, got True"),
        ({"axes": {"model.neuron": ["lif", "lif"]}}, r"listed twice"),
        ({"axes": {"model.neuron_overrides.beta": [0.5, -3.0]}, "base": {**tiny_base(Path("d")),
          "model": {"neuron": "da_lif"}}}, r"grid point .*beta=-3.0"),
        ({"metric": "accuracy"}, r"metric: 'accuracy' is not a stage/name metric such as test/acc"),
        ({"budget": {"max_epoch": 2}}, r"budget: unknown key\(s\) \['max_epoch'\]; valid: \['max_epochs'"),
        ({"exclude": [{"model.neuron": "plif"}]}, r"not a value of axis"),
        ({"params": {"model.lr": {"type": "float", "low": 0.1, "high": 1.0}}}, r"unknown key\(s\) \['params'\]"),
        ({"equivalence_margin": {"test/acc": -0.3}},
         r"equivalence_margin.test/acc: input should be greater than 0, got -0.3"),
        ({"min_effect": {"accuracy": 0.5}}, r"min_effect: 'accuracy' is not a stage/name metric"),
        ({"min_effect": 0.5}, r"min_effect: input should be a valid dictionary, got 0.5; e.g. \{test/acc: 0.3\}"),
        ({"experiment": "../../x"}, r"experiment: '../../x' is not names of letters"),
        ({"experiment": "/tmp/x"}, r"experiment: '/tmp/x' is not names of letters"),
        ({"experiment": "a/../../x"}, r"experiment: 'a/../../x' is not names"),
        ({"axes": {"model.lr": [0.1, float("nan")]}}, r"axes.model.lr: value nan is not a finite number"),
    ],
    ids=["neuron-field", "path-typo", "trainer-arg", "preset", "empty-axis", "scalar-axis", "no-axes",
         "no-seeds", "str-seed", "dup-seed", "bool-seed", "dup-value", "bad-value", "metric", "budget", "exclude",
         "sweep-key", "negative-margin", "margin-metric", "scalar-min-effect", "experiment-up", "experiment-absolute",
         "experiment-inner-up", "nan-axis-value"],
)
def test_bad_study_rejected_before_any_trial(tmp_path, fields, message, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_ablation(tmp_path, **fields)))
    assert ablate_main([str(path), *store_args(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert __import__("re").search(message, err), err
    _nothing_created(tmp_path)


def test_sweep_file_checks(tmp_path, capsys):
    base = tiny_base(tmp_path / "data")
    good = {"base": base, "n_trials": 2,
            "params": {"model.lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True},
                       "model.time_steps": [1, 2]}}
    spec = spec_from_dict(good, "sweep")
    assert spec.sampler["type"] == "tpe" and spec.pruner["type"] == "median" and spec.metric == "val/acc_best"
    for bad, message in [
        ({"params": {"model.lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}}, "log scale needs low > 0"),
        ({"params": {"model.lr": {"type": "float", "low": 1.0, "high": 0.1}}}, "low < high"),
        ({"params": {"model.lr": {"type": "normal"}}}, "type must be one of"),
        ({"pruner": {"type": "median", "n_warmup": 1}}, "unknown option.*MedianPruner"),
        ({"n_trials": 0}, "n_trials: input should be greater than or equal to 1, got 0"),
    ]:
        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump({**good, **bad}))
        assert sweep_main([str(path), *store_args(tmp_path)]) == 2
        assert __import__("re").search(message, capsys.readouterr().err)
    path.write_text(yaml.safe_dump({**good, "params": {"model.lr": {"type": "float", "low": -1.0, "high": 0.1}}}))
    assert sweep_main([str(path), *store_args(tmp_path)]) == 2  # lr <= 0 rejected by resolve_config
    assert "params.model.lr=-1.0" in capsys.readouterr().err
    _nothing_created(tmp_path)


# ---------------------------------------------------------------------- grid
def test_grid_product_seeds_exclude_and_overrides(tmp_path):
    data = _ablation(tmp_path, axes={"model.neuron": ["lif", "da_lif"], "model.neuron_overrides.decay_fn":
                                     ["sigmoid", "tanh"]},
                     seeds=[0, 1], exclude=[{"model.neuron": "lif", "model.neuron_overrides.decay_fn": "tanh"}],
                     overrides={"model.lr": 0.05}, budget={"max_epochs": 3})
    spec = spec_from_dict(data, "ablation", sets=["data.init_args.batch_size=16"], max_epochs=2)
    points = expand_grid(spec)
    assert [p.key for p in points] == [
        "model.neuron=lif,model.neuron_overrides.decay_fn=sigmoid,seed=0",
        "model.neuron=lif,model.neuron_overrides.decay_fn=sigmoid,seed=1",
        "model.neuron=da_lif,model.neuron_overrides.decay_fn=sigmoid,seed=0",
        "model.neuron=da_lif,model.neuron_overrides.decay_fn=sigmoid,seed=1",
        "model.neuron=da_lif,model.neuron_overrides.decay_fn=tanh,seed=0",
        "model.neuron=da_lif,model.neuron_overrides.decay_fn=tanh,seed=1",
    ]
    last = points[-1].config
    assert last["seed_everything"] == 1 and last["model"]["neuron"] == "da_lif"
    assert last["model"]["neuron_overrides"]["decay_fn"] == "tanh"
    assert last["model"]["lr"] == 0.05 and last["trainer"]["max_epochs"] == 2  # --max-epochs beats budget
    assert last["data"]["init_args"]["batch_size"] == 16
    assert points[0].params == {"model.neuron": "lif", "model.neuron_overrides.decay_fn": "sigmoid", "seed": 0}
    # the fingerprint (part of the study name) follows the content, not the object
    again = spec_from_dict(data, "ablation", sets=["data.init_args.batch_size=16"], max_epochs=2)
    assert again.default_study_name == spec.default_study_name
    other = spec_from_dict(data, "ablation", sets=["data.init_args.batch_size=8"], max_epochs=2)
    assert other.fingerprint != spec.fingerprint


@pytest.mark.parametrize("path", sorted((REPO / "ablations").glob("*.yaml")) + sorted((REPO / "sweeps").glob("*.yaml")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_study_files_are_valid(path, monkeypatch):
    """Every shipped file parses and every trial config it implies resolves (no dataset needed)."""
    monkeypatch.chdir(REPO)
    kind = "sweep" if path.parent.name == "sweeps" else "ablation"
    spec = load_spec(path, kind)
    assert spec.description
    if kind == "ablation":
        assert expand_grid(spec)
    else:
        check_sweep(spec)


@pytest.mark.parametrize("metric,direction", [
    ("test/acc", "maximize"), ("val/acc_best", "maximize"), ("test/energy_ratio", "maximize"),
    ("test/high_code_fraction", "maximize"), ("test/loss", "minimize"), ("test/energy_mj", "minimize"),
    ("test/sops", "minimize"), ("test/macs", "minimize"), ("test/firing_rate", "minimize"),
])
def test_study_direction_defaults(metric, direction):
    assert default_direction(metric) == direction


def test_report_settings_keep_the_fingerprint(tmp_path):
    """equivalence_margin and min_effect change the report only: the study (and its name) stays."""
    plain = spec_from_dict(_ablation(tmp_path), "ablation")
    planned = spec_from_dict(_ablation(tmp_path, equivalence_margin={"test/acc": 0.3},
                                       min_effect={"test/acc": 0.5, "test/energy_mj": 2}), "ablation")
    assert planned.equivalence_margin == {"test/acc": 0.3}
    assert planned.min_effect == {"test/acc": 0.5, "test/energy_mj": 2.0}
    assert planned.fingerprint == plain.fingerprint


# ---------------------------------------------------------------------- the two kinds and their schema
def test_each_kind_is_its_own_class(tmp_path):
    """What differs by kind is the class's: the parent run's tag and params, the listed values, pruning."""
    ablation = spec_from_dict(_ablation(tmp_path, seeds=[0, 1]), "ablation")
    params = {"model.lr": {"type": "float", "low": 1e-3, "high": 0.3}, "model.time_steps": [1, 2]}
    sweep = spec_from_dict({"base": tiny_base(tmp_path / "data"), "n_trials": 2, "params": params}, "sweep")
    assert isinstance(ablation, AblationSpec) and ablation.kind == ablation.describe()["kind"] == "ablation"
    assert isinstance(sweep, SweepSpec) and sweep.kind == "sweep" and sweep.describe()["n_trials"] == 2
    assert ablation.space_tag() == {"lit_snn.axes": "model.neuron"}
    assert sweep.space_tag() == {"lit_snn.params": "model.lr,model.time_steps"}
    assert ablation.space_params() == [("axis.model.neuron", ["lif", "ar_lif"]), ("seeds", [0, 1])]
    assert [name for name, _ in sweep.space_params()] == ["search.model.lr", "search.model.time_steps", "seeds"]
    assert ablation.listed_values() == {"model.neuron": ["lif", "ar_lif"]}
    assert sweep.listed_values() == {"model.time_steps": [1, 2]}  # a float range lists nothing
    assert not ablation.prunes and sweep.prunes and sweep.pruner["type"] == "median"
    unpruned = {"base": tiny_base(tmp_path), "n_trials": 1, "params": params, "pruner": {"type": "none"}}
    assert not spec_from_dict(unpruned, "sweep").prunes
    assert ablation.adaptive is None and sweep.adaptive is None
    assert file_keys("ablation") & file_keys("sweep") == {"name", "description", "experiment", "base_config", "base",
                                                           "overrides", "metric", "direction", "budget", "launcher"}


@pytest.mark.parametrize("kind, fields, message", [
    ("sweep", {"sampler": {"type": "tpe", "seed": "zero"}}, "<spec>: sampler.seed: input should be a valid integer, "
                                                           "got 'zero'; e.g. {type: tpe, seed: 0}"),
    ("sweep", {"pruner": {"type": "median", "monitor": 3}},
     "<spec>: pruner.monitor: input should be a valid string, got 3; e.g. {type: median, monitor: val/acc}"),
    ("sweep", {"n_trials": None}, "<spec>: n_trials: input should be a valid integer, got None"),
    ("sweep", {"seed": 1.5}, "<spec>: seed: input should be a valid integer, got 1.5"),
    ("ablation", {"base": {1: 2}}, "<spec>: base: input should be a valid string, got the key 1"),
    ("ablation", {"budget": {"max_epochs": 2.0}},
     "<spec>: budget.max_epochs: input should be a valid integer, got 2.0"),
    ("ablation", {"budget": {"time_limit_s": float("nan")}},
     "<spec>: budget.time_limit_s: input should be a finite number, got nan"),
    ("ablation", {"seeds": None}, "<spec>: seeds: input should be a valid list, got None; "
                                   "e.g. [0, 1, 2] or {adaptive: {start: 3, step: 2, max: 15}}"),
    ("ablation", {"name": 3}, "<spec>: name: input should be a valid string, got 3"),
    ("ablation", {"direction": "up"}, "<spec>: direction: input should be 'maximize' or 'minimize', got 'up'"),
    ("ablation", {"overrides": {"model..lr": 1}}, "<spec>: overrides: 'model..lr' is not a dotted config path like "
                                                  "'model.neuron_overrides.reset'"),
    ("ablation", {"base": None}, "<spec>: base: input should be a valid dictionary, got None"),
])
def test_a_bad_value_is_one_line_naming_key_and_value(tmp_path, kind, fields, message):
    """The schema's errors (pydantic's, multi-line) reach the user as one line: file, key path, value, what is valid."""
    base = tiny_base(tmp_path / "data")
    data = {"base": base, "axes": {"model.neuron": ["lif"]}} if kind == "ablation" else \
        {"base": base, "n_trials": 2, "params": {"model.time_steps": [1, 2]}}
    with pytest.raises(SpecError) as info:
        spec_from_dict({**data, **fields}, kind)
    assert str(info.value) == message


def test_the_file_name_is_checked_as_the_default_name(tmp_path):
    path = tmp_path / "two words.yaml"
    path.write_text(yaml.safe_dump({**_ablation(tmp_path), "experiment": "ablation/x"}))
    message = r"two words.yaml: name: 'two words' is not letters, digits, .*the file's name\)$"
    with pytest.raises(SpecError, match=message):
        load_spec(path, "ablation")
    path.write_text(yaml.safe_dump({**_ablation(tmp_path), "name": "two_words"}))
    assert load_spec(path, "ablation").experiment == "ablation/two_words"
