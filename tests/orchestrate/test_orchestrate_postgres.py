"""A study on a real PostgreSQL server (``scripts/start_postgres.sh`` starts one and prints its URL)."""

from __future__ import annotations

import os
import uuid
from collections import Counter

import optuna
import pytest
from orchestrate_helpers import store_args

from lit_snn.orchestrate import ablate_main

URL = os.environ.get("LIT_SNN_TEST_POSTGRES_URL")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not URL, reason="set LIT_SNN_TEST_POSTGRES_URL (scripts/start_postgres.sh prints one)"),
]


def test_two_workers_on_postgres(tmp_path, write_study):
    from lit_snn.orchestrate.storage import make_storage

    name = f"pg-{uuid.uuid4().hex[:8]}"
    path = write_study("pg", axes={"model.neuron": ["lif", "i_lif"]}, seeds=[0])
    storage = make_storage(URL, heartbeat_interval=None)
    try:
        assert ablate_main([str(path), *store_args(tmp_path), "--storage", URL, "--study-name", name,
                            "--workers", "2", "--no-compare"]) == 0
        trials = optuna.load_study(study_name=name, storage=storage).trials
        assert Counter(t.state.name for t in trials) == {"COMPLETE": 2}
        assert len({t.user_attrs["key"] for t in trials}) == 2
        # resuming a finished study against the server adds nothing
        assert ablate_main([str(path), *store_args(tmp_path), "--storage", URL, "--study-name", name,
                            "--no-compare"]) == 0
        assert len(optuna.load_study(study_name=name, storage=storage).trials) == 2
    finally:
        if name in optuna.get_all_study_names(storage):
            optuna.delete_study(study_name=name, storage=storage)
