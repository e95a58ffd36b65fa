"""A sweep trial the sampler gives a finished trial's params is not trained again: it reports that
trial's values and is tagged ``repeat_of`` (NSGA-II ran 2 identical configurations of 16)."""

from __future__ import annotations

import optuna
from orchestrate_helpers import planted_training, store_args

from lit_snn.orchestrate import sweep_main
from lit_snn.orchestrate.study import REPEAT_ATTR


def test_repeated_params_reuse_the_finished_trial(tmp_path, write_study, monkeypatch, capsys):
    trained = []
    planted = planted_training({"lif": 0.0, "ar_lif": 0.1})

    def counting(config, **kwargs):
        trained.append(config["model"]["neuron"])
        return planted(config, **kwargs)

    monkeypatch.setattr("lit_snn.orchestrate.study.run_training", counting)
    # two configurations, five trials: at least three are repeats, whatever the sampler draws
    path = write_study("repeats", params={"model.neuron": {"type": "categorical", "choices": ["lif", "ar_lif"]}},
                       n_trials=5, sampler={"type": "nsga2", "seed": 0, "population_size": 2})
    assert sweep_main([str(path), *store_args(tmp_path), "--no-compare"]) == 0
    storage = f"sqlite:///{tmp_path / 'store' / 'optuna.db'}"
    (name,) = optuna.get_all_study_names(storage)
    trials = optuna.load_study(study_name=name, storage=storage).trials
    assert len(trials) == 5 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert sorted(trained) == sorted(set(trained))  # each configuration trained once
    repeats = [t for t in trials if REPEAT_ATTR in t.user_attrs]
    assert len(repeats) == 5 - len(trained) >= 3
    for t in repeats:
        twin = trials[t.user_attrs[REPEAT_ATTR]]
        assert twin.params == t.params and twin.values == t.values and REPEAT_ATTR not in twin.user_attrs
    assert "values reused (not trained again)" in capsys.readouterr().out
