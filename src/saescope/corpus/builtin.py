"""Built-in offline corpora: real text by other people, installed from
Debian and with Python itself.

Sizes with the SmolLM2 tokenizer (measured with Python 3.11.7 and python3.11-doc 3.11.2-6+deb12u9;
a document is one file; EOS separators not counted):

- ``python-docs``: English prose, the reStructuredText sources of the CPython documentation
  (Debian package python3.11-doc): 497 files, 11.0 M characters, 2,864,711 tokens.
- ``python-stdlib``: code, the .py files of the running Python's standard library: 665 files
  (663 with text), 10.1 M characters, 2,640,315 tokens. Left out: site-packages/dist-packages
  (not the standard library), the test suites (they hold deliberately malformed files, and
  Debian ships them in a separate package, so the corpus would differ between machines),
  pydoc_data (a generated copy of the docs), _sysconfigdata and the gencodec.py code tables.
  Files are decoded as Python does (PEP 263 coding cookies); an undecodable file is skipped.
- ``builtin`` (the default): both, 5.5 M tokens, interleaved so that the mix of prose and code
  stays even all the way through.

The stdlib's exact content follows the Python version; describe_corpus records it.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import sysconfig
import tokenize
from collections.abc import Iterator
from pathlib import Path

from saescope.errors import SaescopeError

BUILTIN_CORPORA: dict[str, str] = {
    "builtin": "python-docs and python-stdlib interleaved: English prose and Python code (the default).",
    "python-docs": "English prose: the CPython documentation sources (reStructuredText). "
    "Source: Debian package python3.11-doc; licence: PSF License 2 / Zero-Clause BSD.",
    "python-stdlib": "Python code: the standard library's .py files of the running Python "
    "(no tests, no site-packages, no generated modules). Licence: PSF License 2.",
}

DOCS_PACKAGE = "python3.11-doc"
_DOCS_ROOT = "/usr/share/doc/python3.11/html/_sources"

# Directories of the stdlib that are not hand-written library code: installed packages,
# test suites (full of deliberately broken files) and caches.
_STDLIB_SKIP_DIRS = {
    "site-packages",
    "dist-packages",
    "__pycache__",
    "test",
    "tests",
    "idle_test",
    "pydoc_data",
}


def builtin_files(name: str) -> list[Path]:
    """The files of a built-in corpus, sorted; the error says how to install it if it is missing."""
    if name == "python-docs":
        return _docs_files()
    if name == "python-stdlib":
        return _stdlib_files()
    raise SaescopeError(
        f"unknown built-in corpus {name!r}; built-in corpora: {', '.join(BUILTIN_CORPORA)}."
    )


def builtin_parts(name: str) -> list[str]:
    """The single corpora a built-in name stands for ('builtin' is both)."""
    return ["python-docs", "python-stdlib"] if name == "builtin" else [name]


def builtin_root(name: str) -> str:
    return docs_root() if name == "python-docs" else stdlib_root()


def docs_root() -> str:
    if os.path.isdir(_DOCS_ROOT):
        return _DOCS_ROOT
    # Another Debian release may ship another Python's docs; they serve the same purpose.
    others = sorted(glob.glob("/usr/share/doc/python3.*/html/_sources"))
    return others[-1] if others else _DOCS_ROOT


def stdlib_root() -> str:
    return sysconfig.get_paths()["stdlib"]


def docs_package_version() -> str | None:
    """The installed version of the Debian docs package, for run manifests (None if unknown)."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", DOCS_PACKAGE],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def _docs_files() -> list[Path]:
    root = docs_root()
    files = sorted(Path(root).rglob("*.rst.txt"))
    if not files:
        raise SaescopeError(
            f"the built-in corpus 'python-docs' is not installed: no *.rst.txt files under {root}. "
            f"Install the Debian package {DOCS_PACKAGE} (sudo apt-get install {DOCS_PACKAGE}, or "
            "run scripts/setup.sh as root), or choose another corpus (python-stdlib, a local "
            "path, hf:NAME)."
        )
    return files


def _stdlib_files() -> list[Path]:
    root = Path(stdlib_root())
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in _STDLIB_SKIP_DIRS and not d.startswith("config-")
        )
        files += [
            Path(dirpath, f)
            for f in filenames
            if f.endswith(".py")
            and not f.startswith("_sysconfigdata")
            and not _is_generated(Path(dirpath, f))
        ]
    files.sort()
    if not files:
        raise SaescopeError(
            f"the built-in corpus 'python-stdlib' is not available: no .py files under {root} "
            f"(Python {sys.version.split()[0]}). On Debian install libpython3-stdlib or python3, "
            "or choose another corpus (python-docs, a local path, hf:NAME)."
        )
    return files


def _is_generated(path: Path) -> bool:
    """Character-mapping codecs (encodings/cp1252.py, ...) are tables generated by gencodec.py."""
    if path.parent.name != "encodings":
        return False
    with path.open("rb") as f:
        return b"gencodec.py" in f.read(400)


def read_builtin_file(name: str, path: Path) -> str:
    """The text of one file; '' for a file that is not a real hand-written document."""
    if name == "python-docs":
        return path.read_text(encoding="utf-8", errors="replace")
    try:
        # tokenize.open honours PEP 263 coding cookies (a few stdlib files are latin-1).
        with tokenize.open(path) as f:
            return f.read()
    except (SyntaxError, UnicodeDecodeError):
        return ""  # an undecodable file is skipped, like an empty one


def interleave(files_by_part: dict[str, list[Path]]) -> Iterator[tuple[str, Path]]:
    """Merge the parts' file lists so each part is spread evenly: always take from the part
    that has used the smallest fraction of its files (ties go to the first part)."""
    position = dict.fromkeys(files_by_part, 0)
    total = sum(len(f) for f in files_by_part.values())
    for _ in range(total):
        part = min(
            (p for p in files_by_part if position[p] < len(files_by_part[p])),
            key=lambda p: position[p] / len(files_by_part[p]),
        )
        yield part, files_by_part[part][position[part]]
        position[part] += 1
