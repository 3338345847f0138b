#!/usr/bin/env bash
# Build (or reuse) the project virtualenv: torch, mmcv 2.1.0 with ops built from source,
# mmengine / mmdet / mmseg, timm, pycocotools and this package in editable mode.
# Idempotent: a stamp records what was installed; a re-run with nothing changed takes seconds.
# The mmcv wheel is cached outside the checkout (MAE_TRANSFER_CACHE) so fresh clones reuse it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MAE_TRANSFER_VENV:-$ROOT/.venv}"
CACHE="${MAE_TRANSFER_CACHE:-$HOME/.cache/mae-transfer}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="torch==2.14.1 torchvision==0.29.1"
MMCV_VERSION="2.1.0"

log() { echo "[setup] $*" >&2; }

stamp_input() {
  cat "$ROOT/tools/setup_env.sh" "$ROOT/pyproject.toml"
  command -v nvidia-smi >/dev/null 2>&1 && echo "gpu" || echo "cpu"
}
STAMP="$VENV/.mae-transfer-stamp"
want="$(stamp_input | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi

mkdir -p "$CACHE/wheels"
[ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

log "installing torch ($TORCH_SPEC)"
"${PIP[@]}" install $TORCH_SPEC wheel ninja

# mmcv 2.1.0 publishes no wheel for this torch: build one from the sdist with ops.
if "$VENV/bin/python" -c "import mmcv, mmcv.ops" >/dev/null 2>&1; then
  log "mmcv with ops already importable"
else
  torch_tag="$("$VENV/bin/python" -c 'import torch; print(torch.__version__.replace("+", "_"))')"
  flavour=cpu
  if command -v nvcc >/dev/null 2>&1 && "$VENV/bin/python" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    flavour=cuda
  fi
  wheel_dir="$CACHE/wheels/mmcv-$MMCV_VERSION-torch$torch_tag-$flavour"
  if ! ls "$wheel_dir"/mmcv-*.whl >/dev/null 2>&1; then
    log "building mmcv $MMCV_VERSION ($flavour ops); this takes ~8 minutes on 2 cores"
    build="$(mktemp -d)"
    # mmcv's setup.py needs pkg_resources (setuptools < 70); torch wants a newer one at run
    # time (and mmengine still imports pkg_resources, gone in setuptools 81), so the old one is in
    # place only while mmcv is fetched and built.
    "${PIP[@]}" install --no-deps "setuptools<70"
    "${PIP[@]}" download --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$build"
    tar -xzf "$build"/mmcv-*.tar.gz -C "$build"
    src="$(find "$build" -maxdepth 1 -type d -name 'mmcv-*' | head -1)"
    sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
    export MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}"
    [ "$flavour" = cuda ] && export FORCE_CUDA=1
    mkdir -p "$wheel_dir.tmp"
    "${PIP[@]}" wheel --no-build-isolation --no-deps "$src" -w "$wheel_dir.tmp"
    "${PIP[@]}" install "setuptools>=77.0.3,<81"
    rm -rf "$wheel_dir" && mv "$wheel_dir.tmp" "$wheel_dir" && rm -rf "$build"
  fi
  log "installing cached mmcv wheel from $wheel_dir"
  "${PIP[@]}" install "$wheel_dir"/mmcv-*.whl
fi

log "installing the package and its dependencies"
"${PIP[@]}" install -e "$ROOT[dev]"
"$VENV/bin/python" -c "import mmcv.ops, mmdet, mmseg, timm, pycocotools" \
  || { log "import check failed"; exit 1; }
echo "$want" > "$STAMP"
log "environment ready: $VENV"
