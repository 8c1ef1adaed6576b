#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on the GPU machine beyond the working tree, into .gpu/
# (git-ignored through .git/info/exclude). That image has Python with torch, onnx and onnxruntime
# but, by the workplace's package list, no node; a device call carries at most 64 MiB with the
# tree, so node and onnxruntime-node travel in two calls (README, "The GPU path"):
#   .gpu/node/node.xz          this machine's node binary, xz-compressed
#   .gpu/ort/gpu-engine.mjs    scripts/gpu-engine.ts bundled (esbuild), onnxruntime-node left external
#   .gpu/ort/modules.tar.xz    onnxruntime-node (linux x64 only) and onnxruntime-common
set -euo pipefail
cd "$(dirname "$0")/.."
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")" && touch "$exclude"
grep -qx '/.gpu/' "$exclude" || echo '/.gpu/' >> "$exclude"
rm -rf .gpu && mkdir -p .gpu/node .gpu/ort
node_modules/.bin/esbuild scripts/gpu-engine.ts --bundle --platform=node --format=esm --target=node20 \
  --external:onnxruntime-node --log-level=warning --outfile=.gpu/ort/gpu-engine.mjs \
  --banner:js="import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);"
tar -C node_modules -cJf .gpu/ort/modules.tar.xz --exclude='onnxruntime-node/bin/napi-v6/darwin' \
  --exclude='onnxruntime-node/bin/napi-v6/win32' --exclude='onnxruntime-node/bin/napi-v6/linux/arm64' \
  onnxruntime-node onnxruntime-common
xz -6 -T0 -c "$(command -v node)" > .gpu/node/node.xz
du -sh .gpu/node .gpu/ort
