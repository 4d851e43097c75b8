from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.first_stage import FIRST_STAGES
from harness.registry import Registry
from rerankers import RERANKERS
from tasks import TASK_FAMILIES, resolve_tasks


def test_did_you_mean_for_rerankers_tasks_and_first_stages():
    with pytest.raises(HarnessError, match="Did you mean 'reasonrank'"):
        RERANKERS.get("reasonrnak")
    with pytest.raises(HarnessError, match="Did you mean 'bright'"):
        resolve_tasks("brigth")
    with pytest.raises(HarnessError, match="Did you mean 'bm25'"):
        FIRST_STAGES.get("bm52")
    assert "tiny" in TASK_FAMILIES


def test_aliases_and_lazy_loading():
    registry = Registry("thing")
    registry.register("json", "json:dumps", "a", aliases=("js",))
    assert registry.get("js") is registry.get("json")
    registry.register("broken", "no_such_module_xyz:thing")
    assert "broken" in registry  # listing never imports
    with pytest.raises(ModuleNotFoundError):
        registry.get("broken")


def test_missing_task_directory_is_a_clear_error(tmp_path):
    with pytest.raises(HarnessError, match="does not exist"):
        resolve_tasks(str(tmp_path / "nope" / "dir"))
    (tmp_path / "half").mkdir()
    with pytest.raises(HarnessError, match="missing"):
        resolve_tasks(str(tmp_path / "half"))
