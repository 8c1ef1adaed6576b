#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on the GPU machine beyond the working tree, into .gpu/
# (git-ignored through .git/info/exclude). That image has Python with torch, onnx and onnxruntime
# but, by the workplace's package list, no node; a device call carries at most 64 MiB together with
# the working tree (about 44 MB), so one xz archive of node, onnxruntime-node (linux x64) and the
# bundled scripts/gpu-engine.ts is cut into 16 MB parts, .gpu/c00, .gpu/c01, ..., one per call
# (README, "The GPU path"). Unpacked there, it gives .gpu/bin/node, .gpu/gpu-engine.mjs and
# .gpu/node_modules, which models/toolkit/gpu_check.py looks for.
set -euo pipefail
cd "$(dirname "$0")/.."
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")" && touch "$exclude"
grep -qx '/.gpu/' "$exclude" || echo '/.gpu/' >> "$exclude"
rm -rf .gpu && mkdir -p .gpu/stage/bin .gpu/stage/node_modules/onnxruntime-node/bin/napi-v6/linux
node_modules/.bin/esbuild scripts/gpu-engine.ts --bundle --platform=node --format=esm --target=node20 \
  --external:onnxruntime-node --log-level=warning --outfile=.gpu/stage/gpu-engine.mjs \
  --banner:js="import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);"
ort=node_modules/onnxruntime-node
cp -r "$ort/package.json" "$ort/dist" .gpu/stage/node_modules/onnxruntime-node/
cp -r "$ort/bin/napi-v6/linux/x64" .gpu/stage/node_modules/onnxruntime-node/bin/napi-v6/linux/
cp -r node_modules/onnxruntime-common .gpu/stage/node_modules/
cp "$(command -v node)" .gpu/stage/bin/node
tar -C .gpu/stage -cf - . | xz -6 -T0 > .gpu/all.tar.xz
rm -rf .gpu/stage
split -b 16m -d .gpu/all.tar.xz .gpu/part-
rm .gpu/all.tar.xz
for p in .gpu/part-*; do n=${p##*-}; mkdir ".gpu/c$n" && mv "$p" ".gpu/c$n/"; done
du -sh .gpu/c*
