#!/usr/bin/env python3
"""Checks that every #include in the libraries points down the layering of docs/design.md:
base (ps/base, proto, config) -> data -> models -> ps -> worker / scheduler / serving -> launch, and nothing sideways between worker/,
scheduler/ and serving/. A new folder must be given its place in LAYERS before its includes pass."""
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))

# config/: the parameter table (params.def), below everything.
BASE = {"ps/base", "proto", "config"}
# metrics/ (the registry and the /metrics endpoint) sits on ps/base; every runtime layer above may use it.
# folder -> folders it may include (itself always).
LAYERS = {
    "ps/base": set(),
    "config": {"ps/base"},
    "proto": set(),
    "metrics": BASE,
    "data": BASE,
    "models": BASE | {"data"},
    "ps/store": BASE | {"data", "models"},
    "ps": BASE | {"data", "models", "ps/store", "metrics"},
    "worker": BASE | {"data", "models", "ps", "ps/store", "metrics"},
    "scheduler": BASE | {"data", "models", "ps", "ps/store", "metrics"},
    "serving": BASE | {"data", "models", "ps", "ps/store", "metrics"},
    "datagen": BASE | {"data", "models"},
}
# Tops: may include any library folder (not tests/).
TOPS = {"launch", "bench", "fuzz", "tests"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of(path):
    """The layer folder a repository path belongs to (the longest LAYERS/TOPS prefix)."""
    parts = path.split("/")
    for n in (2, 1):
        cand = "/".join(parts[:n])
        if cand in LAYERS or cand in TOPS:
            return cand
    return parts[0]


def main():
    errors = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = os.path.relpath(dirpath, ROOT)
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and not d.startswith("build")
                       and (rel_dir != "." or d not in ("python", "docs", "scripts"))]
        for name in filenames:
            if not name.endswith((".h", ".cc")):
                continue
            rel = os.path.normpath(os.path.join(rel_dir, name))
            own = folder_of(rel)
            if own in TOPS:
                continue
            if own not in LAYERS:
                errors.append(f"{rel}: folder {own}/ has no place in the layering (tests/layering/layering_test.py)")
                continue
            with open(os.path.join(ROOT, rel), encoding="utf-8", errors="replace") as f:
                text = f.read()
            for m in INCLUDE.finditer(text):
                inc = m.group(1)
                if "/" not in inc:
                    continue  # a generated or same-folder header
                target = folder_of(inc)
                if target == own or target in LAYERS[own]:
                    continue
                line = text.count("\n", 0, m.start()) + 1
                errors.append(f"{rel}:{line}: includes {inc}: {own}/ may not include {target}/")
    for e in errors:
        print(e)
    print(f"layering: {len(errors)} include(s) against the layering")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
