"""A fast stand-in for ``lit_snn.train`` with the same contract (selected by LIT_SNN_TRAIN_MODULE).

It trains a real (tiny) Lightning model on random data, so callbacks and loggers are exercised,
and returns metrics that are a deterministic function of the config (the energy one unrelated to
the accuracy, so that the two trade off). Knobs (environment):
``FAKE_TRAIN_SLEEP`` seconds per epoch, ``FAKE_TRAIN_FAIL`` a neuron preset whose trials raise,
``FAKE_TRAIN_EFFECT`` a JSON mapping neuron preset -> accuracy offset: then the score is
``0.7 + offset + FAKE_TRAIN_NOISE * z`` (noise default 0.01) with ``z`` a standard normal drawn
deterministically from (seed, neuron), i.e. a planted effect plus seed noise for the statistics.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import os
import random
import time

import lightning as L
import torch

from lit_snn.neurons import neuron_config

MODEL_DEFAULTS = {"backbone": "small_conv", "neuron": "lif", "neuron_overrides": {}, "backbone_kwargs": None,
                  "time_steps": 4, "loss": "ce", "tet_lambda": 0.05, "optimizer": "sgd", "lr": 0.1,
                  "momentum": 0.9, "weight_decay": 5e-4, "weight_decay_1d": False, "warmup_epochs": 0,
                  "tet_phi": 1.0, "tet_one_hot": False,
                  "label_smoothing": 0.0, "energy_batches": 4}
DATA_DEFAULTS = {"root": "data", "batch_size": 64, "seed": 0, "limit_train": None, "limit_val": None,
                 "limit_test": None}


def resolve_config(config: dict) -> dict:
    config = copy.deepcopy(config)
    unknown = set(config) - {"seed_everything", "trainer", "model", "data"}
    if unknown:
        raise ValueError(f"unknown top-level key(s) {sorted(unknown)}")
    trainer_args = set(inspect.signature(L.Trainer.__init__).parameters) - {"self"}
    trainer = config.get("trainer") or {}
    bad = set(trainer) - trainer_args
    if bad:
        raise ValueError(f"unknown trainer argument(s) {sorted(bad)}")
    model = {**MODEL_DEFAULTS, **(config.get("model") or {})}
    bad = set(model) - set(MODEL_DEFAULTS)
    if bad:
        raise ValueError(f"unknown model argument(s) {sorted(bad)}")
    neuron_config(model["neuron"], **(model["neuron_overrides"] or {}))  # unknown preset/field -> ValueError
    if not isinstance(model["lr"], (int, float)) or model["lr"] <= 0:
        raise ValueError(f"lr must be a positive number, got {model['lr']!r}")
    data = config.get("data") or {}
    init_args = {**DATA_DEFAULTS, **(data.get("init_args") or {})}
    return {"seed_everything": config.get("seed_everything", 0),
            "trainer": {"max_epochs": 2, "logger": False, **trainer},
            "model": model,
            "data": {"class_path": data.get("class_path", "lit_snn.data.DigitsDataModule"), "init_args": init_args}}


def _score(config: dict) -> float:
    effects = os.environ.get("FAKE_TRAIN_EFFECT")
    if effects:
        neuron, seed = config["model"]["neuron"], config["seed_everything"]
        z = random.Random(f"{seed}|{neuron}").gauss(0.0, 1.0)  # str seeds are hashed deterministically
        noise = float(os.environ.get("FAKE_TRAIN_NOISE", "0.01"))
        return 0.7 + float(json.loads(effects).get(neuron, 0.0)) + noise * z
    text = f"{config['model']['neuron']}|{config['model']['neuron_overrides']}|{config['model']['lr']}"
    h = int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)
    return 0.5 + 0.4 * (h % 1000) / 1000 + 0.001 * config["seed_everything"]


def _energy(config: dict) -> float:
    """Grows with T, otherwise a hash of the config unrelated to the score: accuracy and energy trade off."""
    text = f"energy|{config['model']['neuron']}|{config['model']['neuron_overrides']}|{config['model']['lr']}"
    h = int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)
    return 0.0025 * config["model"]["time_steps"] * (0.5 + (h % 1000) / 1000)


class _Tiny(L.LightningModule):
    def __init__(self, score: float, lr: float) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)
        self.score, self.lr = score, lr

    def training_step(self, batch, _):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.layer(x), y)
        self.log("train/loss", loss, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch, _):
        self.log("val/acc", self.score * (1 + self.current_epoch) / (1 + self.trainer.max_epochs),
                 on_epoch=True)

    def on_train_epoch_end(self) -> None:
        time.sleep(float(os.environ.get("FAKE_TRAIN_SLEEP", "0")))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=min(self.lr, 0.1))


def run_training(config: dict, *, callbacks=None, loggers=None, default_root_dir=None) -> dict[str, float]:
    config = resolve_config(config)
    if config["model"]["neuron"] == os.environ.get("FAKE_TRAIN_FAIL"):
        raise RuntimeError("fake failure requested by FAKE_TRAIN_FAIL")
    L.seed_everything(config["seed_everything"], verbose=False)
    data = torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    trainer_kw = {k: v for k, v in config["trainer"].items() if k not in ("logger",)}
    trainer = L.Trainer(**{**trainer_kw, "logger": loggers or False, "callbacks": callbacks or [],
                           "default_root_dir": default_root_dir, "enable_checkpointing": False,
                           "enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu"})
    score = _score(config)
    energy = _energy(config)
    start = time.time()
    trainer.fit(_Tiny(score, config["model"]["lr"]), loader, loader)
    return {"test/acc": score, "test/acc_top5": 1.0, "test/loss": 1 - score, "test/firing_rate": score / 10,
            "test/sops": 1e5 * score, "test/energy_mj": energy, "test/ann_energy_mj": 0.05,
            "val/acc_best": score, "train_seconds": time.time() - start}
