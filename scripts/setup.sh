#!/usr/bin/env bash
# Set up a fresh machine for the local demo and the tests: Java 17, a venv, pinned packages.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
VENV="${VENV:-.venv}"
EXTRAS="${EXTRAS:-local,dev}"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; return; fi
  if ! command -v sudo >/dev/null 2>&1; then
    echo "setup: '$*' needs root and sudo is missing; run it as root, then run setup again" >&2
    exit 1
  fi
  sudo "$@"
}

# apt-get install, waiting up to 5 minutes for another apt (say an
# unattended upgrade) to let go of its lock instead of failing at once.
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: this machine has no apt-get; install $* yourself, then run setup again" >&2
    exit 1
  fi
  as_root apt-get -o DPkg::Lock::Timeout=300 update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "$@" >/dev/null
}

# Whether a Node version (v20.16.0) is 20.16 or later: package-lock.json holds a dependency that
# needs it (Debian 12's nodejs is 18).
node_is_recent() { [ "$(printf '%s\n' v20.16.0 "$1" | sort -V | head -n1)" = v20.16.0 ]; }

java_major() { "${1:-java}" -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print v[1]; exit}'; }

# The home of a Java 17 runtime: $JAVA_HOME's when it is 17, else the default java's, else an
# installed one.
java17_home() {
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ] && [ "$(java_major "$JAVA_HOME/bin/java")" = 17 ]; then
    echo "$JAVA_HOME"
    return
  fi
  if command -v java >/dev/null 2>&1 && [ "$(java_major)" = 17 ]; then
    dirname "$(dirname "$(readlink -f "$(command -v java)")")"
    return
  fi
  for home in /usr/lib/jvm/java-17-*; do
    if [ -x "$home/bin/java" ] && [ "$(java_major "$home/bin/java")" = 17 ]; then echo "$home"; return; fi
  done
}

if [ -z "$(java17_home)" ]; then
  echo "setup: installing a Java 17 runtime (Spark 3.5 / Glue 5.1 run on Java 17)"
  apt_install openjdk-17-jre-headless
fi
JAVA17_HOME="$(java17_home)"
if [ -z "$JAVA17_HOME" ]; then
  echo "setup: no Java 17 runtime found after installing one; set JAVA_HOME to a Java 17 home" >&2
  exit 1
fi

# Graphviz's dot renders the architecture diagrams (architecture/render.py, make diagrams).
if ! command -v dot >/dev/null 2>&1; then
  echo "setup: installing Graphviz (dot renders the architecture diagrams)"
  apt_install graphviz
fi

# ShellCheck lints the shell of the seed's build (tests/test_cfn.py).
if ! command -v shellcheck >/dev/null 2>&1; then
  echo "setup: installing ShellCheck (the tests lint the CodeBuild scripts with it)"
  apt_install shellcheck
fi

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "setup: $PYTHON not found (Glue 5.1 runs Python 3.11); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
# Debian and Ubuntu ship the venv module's ensurepip in a package of its own.
if ! "$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing $(basename "$PYTHON")-venv"
  apt_install "$(basename "$PYTHON")-venv"
fi
# A venv left by another Python (or whose Python was removed since) is made again.
if [ -e "$VENV" ] && ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
  echo "setup: $VENV is not a working Python 3.11 venv; making it again"
  "$PYTHON" -m venv --clear "$VENV"
  rm -f "$VENV"/.installed-*
elif [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
# The make targets run Spark with this Java, also where the default java is another version.
echo "$JAVA17_HOME" > "$VENV/java-home"
# Direct pins in pyproject.toml, every other package held by constraints.txt; a change of either
# installs again.
stamp="$VENV/.installed-$(cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)-${EXTRAS//,/_}"
if [ ! -f "$stamp" ]; then
  echo "setup: installing the pinned packages ($EXTRAS)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[${EXTRAS}]"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
# checkov pins its own boto3 and ships a module named hcl2 that clashes with python-hcl2, so it
# lives in a venv of its own; the tests find it there.
CHECKOV_VENV="$VENV/tools-checkov"
if [ "$("$CHECKOV_VENV/bin/checkov" --version 2>/dev/null)" != 3.3.30 ]; then
  echo "setup: installing checkov 3.3.30 into $CHECKOV_VENV"
  "$PYTHON" -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/python" -m pip install -q --upgrade pip
  "$CHECKOV_VENV/bin/python" -m pip install -q "checkov==3.3.30"
fi

# The Amazon States Language validator is an npm package (pinned in package.json, every
# dependency held by package-lock.json; a changed lock installs again).
if [ ! -x node_modules/.bin/asl-validator ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "setup: installing Node.js and npm"
    apt_install nodejs npm
  fi
  node_version="$(node --version 2>/dev/null || echo v0)"
  if ! node_is_recent "$node_version"; then
    echo "setup: Node $node_version is older than 20.16, which asl-validator needs; not installing it" \
         "(its test is skipped and listed; install Node 20 or later, then run setup again)" >&2
  else
    echo "setup: installing asl-validator (npm ci, the versions of package-lock.json)"
    if ! npm ci --no-audit --no-fund --loglevel=error >/dev/null; then
      echo "setup: npm could not install asl-validator (its error is above; Node $node_version)" >&2
      exit 1
    fi
  fi
fi

echo "setup: ready ($("$VENV/bin/python" --version), java $(java_major "$JAVA17_HOME/bin/java") in $JAVA17_HOME)"
