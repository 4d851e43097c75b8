"""``pydocs``: a real-text retrieval task built from the docstrings of the installed Python standard library.

Nothing in it was written by this project: documents and queries are CPython's own docstrings (PSF License
Agreement, https://docs.python.org/3/license.html), and the judgments are derived mechanically:

* for every public function, class or method (``inspect.getdoc``) of the modules in ``MODULES`` whose docstring has a
  summary paragraph of 4–40 words and at least 25 more words, the **query** is the summary with the object's name
  removed and the **relevant document** (grade 1) is the rest of its docstring, titled with its qualified name
  (``json.dumps``);
* every other docstring of those modules is a document too (the distractors a first stage has to get past);
* queries are split **by module** (sha256 of the module name): about a fifth of the modules are held out for
  ``test``, the rest are ``train``; ``demo`` is the first 8 test queries in id order — a CPU demo small enough for a
  135M model on 2 cores.

The files are built once per Python version into ``$HARNESS_CACHE_DIR/tasks/pydocs/py<version>-r<recipe>/<subset>/``
(BEIR layout), with a manifest of sha256 checksums, on first use (about a second); the task revision is the content
hash, so another Python version is another dataset.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import re
import sys
import warnings
from pathlib import Path

from harness.benchmark import BenchmarkInfo, SubsetInfo
from harness.errors import HarnessError
from harness.files import TempDir, sha256_file
from tasks.base import TaskFamily, unknown_subset
from tasks.beir import BeirDirTask

RECIPE = 1  # bump when the recipe below changes (a new dataset version)
MODULES = tuple(sorted(set("""
argparse ast asyncio.base_events asyncio.events asyncio.locks asyncio.queues asyncio.streams asyncio.tasks base64
bisect bz2 calendar cmd codecs collections colorsys concurrent.futures._base configparser contextlib copy csv
dataclasses datetime decimal difflib dis doctest email.message email.utils enum filecmp fileinput fnmatch fractions
ftplib functools getopt gettext glob graphlib gzip hashlib heapq hmac html html.parser http.client http.cookiejar
http.server imaplib importlib.metadata inspect io ipaddress json json.decoder json.encoder logging logging.handlers
lzma mailbox mimetypes multiprocessing.pool numbers operator optparse os pathlib pdb pickle pkgutil platform plistlib
poplib pprint profile pstats queue quopri random re reprlib sched secrets selectors shelve shlex shutil signal smtplib
socket socketserver sqlite3 ssl statistics string struct subprocess sysconfig tarfile tempfile textwrap threading
timeit tokenize tomllib trace traceback types typing unittest.case unittest.mock urllib.parse urllib.request uuid
warnings wave weakref webbrowser xml.dom.minidom xml.etree.ElementTree zipfile zoneinfo
""".split())))
TEST_SHARE = 5  # a module is held out when sha256(name) % 5 == 0
DEMO_QUERIES = 8
SUBSETS = ("train", "test", "demo")

INFO = BenchmarkInfo(
    name="pydocs",
    title="pydocs (Python docstrings)",
    description="real-text task from the installed Python standard library's docstrings (train / test / demo)",
    subsets=tuple(SubsetInfo(s, title=s, protocol={"domain": "python-docs"}) for s in SUBSETS),
    default_first_stage="bm25",
    average=None,  # train/test/demo are splits, not subsets to average
    board_order=200,
    source="CPython standard-library docstrings (PSF License); judgments derived mechanically (tasks/pydocs.py)",
)


def data_dir() -> Path:
    from harness.paths import cache_dir

    version = f"py{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    return cache_dir("tasks", "pydocs") / f"{version}-r{RECIPE}"


def _members(module_name: str):
    """(qualified name, docstring) of the module's public functions and classes and the classes' methods."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            module = importlib.import_module(module_name)
        except Exception:  # a module this Python lacks (e.g. no _ssl): the dataset version records that
            return
    seen: set[int] = set()

    def visit(owner, qualified: str, depth: int):
        for attr, member in sorted(vars(owner).items()):
            if attr.startswith("_") or id(member) in seen:
                continue
            if not (inspect.isfunction(member) or inspect.isclass(member) or inspect.isbuiltin(member)
                    or inspect.ismethoddescriptor(member)):
                continue
            if depth == 0 and getattr(member, "__module__", None) not in (module_name, None):
                continue  # re-exported from elsewhere
            seen.add(id(member))
            doc = inspect.getdoc(member)
            if doc:
                yield f"{qualified}.{attr}", attr, doc
            if inspect.isclass(member) and depth == 0:
                yield from visit(member, f"{qualified}.{attr}", 1)

    yield from visit(module, module_name, 0)


def _paragraphs(doc: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", doc) if p.strip()]


def _strip_name(summary: str, short: str, qualified: str) -> str:
    for name in sorted({qualified, qualified.split(".", 1)[-1], short}, key=len, reverse=True):
        summary = re.sub(rf"(?<![\w.]){re.escape(name)}(\(\))?(?![\w])", "", summary)
    return " ".join(summary.replace("``", "").split()).strip(" :;,-")


def _is_test_module(module: str) -> bool:
    return int(hashlib.sha256(module.encode()).hexdigest(), 16) % TEST_SHARE == 0


def collect() -> tuple[list[dict], list[dict], dict[str, str]]:
    """(documents, queries, {qid: relevant docid}) — deterministic for a given Python installation."""
    documents, queries, gold = [], [], {}
    for module in MODULES:
        for qualified, short, doc in _members(module):
            paragraphs = _paragraphs(doc)
            summary, body = (paragraphs[0], " ".join(paragraphs[1:])) if len(paragraphs) > 1 else ("", "")
            query = _strip_name(summary, short, qualified) if summary else ""
            signature = query.startswith(("(", "[")) or re.match(r"^[\w.]*\(", summary) is not None
            if len(paragraphs) > 1 and 4 <= len(query.split()) <= 40 and len(body.split()) >= 25 and not signature:
                documents.append({"_id": qualified, "title": qualified, "text": body})
                qid = f"q:{qualified}"
                queries.append({"_id": qid, "text": query, "module": module})
                gold[qid] = qualified
            else:
                documents.append({"_id": qualified, "title": qualified, "text": " ".join(paragraphs)})
    return documents, queries, gold


def build(directory: Path | None = None) -> Path:
    """Write the three BEIR-layout subsets (idempotent; checked against the manifest)."""
    directory = directory or data_dir()
    if _intact(directory):
        return directory
    documents, queries, gold = collect()
    test = [q for q in queries if _is_test_module(q["module"])]
    train = [q for q in queries if not _is_test_module(q["module"])]
    demo = sorted(test, key=lambda q: q["_id"])[:DEMO_QUERIES]
    with TempDir(directory) as tmp:
        corpus = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in documents)
        files = {}
        for name, split in (("train", train), ("test", test), ("demo", demo)):
            root = tmp / name
            (root / "qrels").mkdir(parents=True)
            (root / "corpus.jsonl").write_text(corpus, encoding="utf-8")
            (root / "queries.jsonl").write_text("".join(
                json.dumps({"_id": q["_id"], "text": q["text"], "module": q["module"]}, ensure_ascii=False) + "\n"
                for q in split), encoding="utf-8")
            (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
                f"{q['_id']}\t{gold[q['_id']]}\t1\n" for q in split), encoding="utf-8")
            for part in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
                files[f"{name}/{part}"] = sha256_file(root / part)
        (tmp / "manifest.json").write_text(json.dumps({
            "python": sys.version.split()[0], "recipe": RECIPE, "documents": len(documents),
            "queries": {"train": len(train), "test": len(test), "demo": len(demo)},
            "test_modules": sorted({q["module"] for q in test}), "sha256": files,
        }, indent=2) + "\n", encoding="utf-8")
    return directory


def _intact(directory: Path) -> bool:
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        return all(sha256_file(directory / f) == digest for f, digest in manifest["sha256"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def resolve(subset: str | None) -> list[BeirDirTask]:
    if subset in (None, ""):
        raise HarnessError("pydocs has splits, not subsets to average: name one, e.g. --task pydocs/test "
                           f"({', '.join(SUBSETS)}).")
    if subset not in SUBSETS:
        raise unknown_subset(INFO, subset)
    root = build()
    return [BeirDirTask(root / subset, benchmark="pydocs", subset=subset, benchmark_info=INFO,
                        subset_info=INFO.subset(subset))]


FAMILY = TaskFamily(INFO, resolve)
