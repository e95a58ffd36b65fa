"""The study fingerprint (part of the default study name; resume finds a study by it) stays byte for byte.

The hex strings were computed by the orchestrator before the spec was split into an ablation and a
sweep class (issue 23): a change here renames every existing study, so ``lit-snn ablate FILE`` would
start over instead of resuming. Only a deliberate change of what a trial computes may change them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lit_snn.orchestrate.spec import load_spec, spec_from_dict

REPO = Path(__file__).resolve().parents[2]

SHIPPED = {  # file -> fingerprint
    "ablations/adaptive.yaml": "42e170e570",
    "ablations/ar_lif_reset.yaml": "2b57c0e09e",
    "ablations/ar_lif_reset_cifar100.yaml": "c09b7adfab",
    "ablations/da_lif_decay.yaml": "fa1a8d787c",
    "ablations/da_lif_decay_cifar10dvs.yaml": "0a4007474e",
    "ablations/default.yaml": "fdd19314f8",
    "ablations/fashion_mnist.yaml": "91268f4ca8",
    "ablations/ib_ra_lif_range.yaml": "61a2b9be5c",
    "ablations/ib_ra_lif_range_cifar100.yaml": "e7f54180b2",
    "ablations/ib_ra_lif_range_imagenet.yaml": "4b8bf8d8c4",
    "ablations/reset_zoo.yaml": "2df72a82cc",
    "ablations/reset_zoo_cifar100.yaml": "3b8130eb10",
    "ablations/threshold_zoo.yaml": "d05e513db0",
    "ablations/threshold_zoo_cifar100.yaml": "26a9dfc8a9",
    "sweeps/ar_lif_cifar100.yaml": "376c09b65e",
    "sweeps/ar_lif_digits.yaml": "cbbd9728f1",
    "sweeps/lif_digits.yaml": "9dc9c676f0",
    "sweeps/pareto_digits.yaml": "c15df90cba",
}

# a fixed inline base (no tmp_path in it: the base is part of the fingerprint)
BASE = {"seed_everything": 0, "trainer": {"max_epochs": 1, "accelerator": "cpu"},
        "model": {"backbone": "small_conv", "neuron": "lif", "time_steps": 2},
        "data": {"class_path": "lit_snn.data.DigitsDataModule", "init_args": {"batch_size": 32, "limit_train": 96}}}
AXES = {"model.neuron": ["lif", "ar_lif", "plif"], "model.time_steps": [2, 4]}
INLINE = {  # id -> (kind, file content, --set overrides, --max-epochs)
    "ablation-plain": ("ablation", {"base": BASE, "axes": AXES}, [], None),
    "ablation-seed-list": ("ablation", {"base": BASE, "axes": AXES, "seeds": [0, 1, 7]}, [], None),
    "ablation-exclude": ("ablation", {"base": BASE, "axes": AXES, "seeds": [0, 1],
                                      "exclude": [{"model.neuron": "plif", "model.time_steps": 4}]}, [], None),
    "ablation-report-only": ("ablation", {"base": BASE, "axes": AXES, "baseline": {"model.neuron": "ar_lif"},
                                          "alpha": 0.1, "equivalence_margin": {"test/acc": 0.3},
                                          "min_effect": {"test/acc": 0.5, "test/energy_mj": 2}}, [], None),
    "ablation-adaptive": ("ablation", {"base": BASE, "axes": {"model.neuron": ["lif", "ar_lif", "plif"]},
                                       "seeds": {"adaptive": {"start": 3, "step": 2, "max": 9}},
                                       "equivalence_margin": {"test/acc": 1.0}}, [], None),
    "ablation-adaptive-baseline": ("ablation", {"base": BASE, "axes": {"model.neuron": ["lif", "ar_lif"]},
                                                "seeds": {"adaptive": {"start": 2, "step": 1, "max": 4}},
                                                "baseline": {"model.neuron": "ar_lif"}, "alpha": 0.01,
                                                "metric": "test/energy_mj"}, [], None),
    "ablation-budget-sets": ("ablation", {"base": BASE, "axes": AXES, "overrides": {"model.lr": 0.05},
                                          "budget": {"max_epochs": 3, "trial_time_limit_s": 90.5,
                                                     "time_limit_s": 600}},
                             ["data.init_args.batch_size=16"], 2),
    "sweep-plain": ("sweep", {"base": BASE, "n_trials": 4,
                              "params": {"model.lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True},
                                         "model.time_steps": [1, 2],
                                         "model.neuron_overrides.v_threshold": {"type": "float", "low": 1,
                                                                                "high": 2}}}, [], None),
    "sweep-sampler-pruner": ("sweep", {"base": BASE, "n_trials": 8, "seed": 3, "metric": "val/loss",
                                       "params": {"model.time_steps": {"type": "int", "low": 1, "high": 8,
                                                                       "step": 1}},
                                       "sampler": {"type": "random", "seed": 5},
                                       "pruner": {"type": "percentile", "percentile": 25.0,
                                                  "n_warmup_steps": 1}}, ["model.lr=0.01"], 3),
    "sweep-objectives": ("sweep", {"base": BASE, "n_trials": 8,
                                   "params": {"model.neuron": ["lif", "ar_lif"]},
                                   "objectives": [{"metric": "val/acc_best", "direction": "maximize"},
                                                  {"metric": "test/energy_mj"}],
                                   "sampler": {"type": "nsga2", "population_size": 4, "seed": 0}}, [], None),
}
INLINE_FINGERPRINTS = {  # id -> fingerprint
    "ablation-plain": "95e13726f0",
    "ablation-seed-list": "100cab6bc0",
    "ablation-exclude": "64dd623950",
    "ablation-report-only": "95e13726f0",  # baseline, alpha, margins: report only, the study stays
    "ablation-adaptive": "49841e651c",
    "ablation-adaptive-baseline": "e12e8e7e47",
    "ablation-budget-sets": "fdedfdd8a0",
    "sweep-plain": "1250e9545d",
    "sweep-sampler-pruner": "24ab0f46d3",
    "sweep-objectives": "5892a3abbf",
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_files_keep_their_fingerprint(name, monkeypatch):
    monkeypatch.chdir(REPO)  # base_config paths are relative to the repository
    kind = "sweep" if name.startswith("sweeps/") else "ablation"
    assert load_spec(name, kind).fingerprint == SHIPPED[name]


@pytest.mark.parametrize("name", sorted(INLINE))
def test_inline_specs_keep_their_fingerprint(name):
    kind, data, sets, max_epochs = INLINE[name]
    assert spec_from_dict(data, kind, sets=sets, max_epochs=max_epochs).fingerprint == INLINE_FINGERPRINTS[name]


def test_every_shipped_file_is_pinned():
    files = {f"{p.parent.name}/{p.name}" for folder in ("ablations", "sweeps") for p in (REPO / folder).glob("*.yaml")}
    assert files == set(SHIPPED)
