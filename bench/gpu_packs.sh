#!/usr/bin/env bash
# Issue 33's GPU checks, in one device call (../shared/device/README.md says how the project runs there):
#   tar -xJf .device/site312.tar.xz -C /tmp && export PYTHONPATH=$PWD:/tmp/site312 PYTHONUNBUFFERED=1 \
#     RAY_USAGE_STATS_ENABLED=0 && bash bench/gpu_packs.sh        (carry: [".device"]; about 10 minutes)
# Before the call, here: mkdir -p .device/base && git archive 3f9c834 | tar -x -C .device/base
# In order of what the later steps need (a call cut short keeps what $OUT holds):
# 1. The GPU-only tests: the captured step against the eager one, a warm step asking the host nothing,
#    a pack against its members alone there (tests/dcgan/test_graph.py, test_pack.py; skipped on CPUs).
# 2. A lone dcgan.train (28 px MNIST, ngf=ndf=64, 3,000 steps, no scoring) in the base commit's code and
#    today's, eager and with cuda_graph=true: steps/s of the loop, from each run's last progress line.
# 3. bench/pack.py: a pack of K models against K models one after another (28 px grey, ngf=ndf=64).
# 4. bench/packed_search.py: the issue's baseline search (15 members and the control, 1,500 steps each,
#    --gpus-per-worker 0.0625) as today's layout (--pack 1) and as one pack of 16, training images/s and
#    end to end. The tables go to $OUT (docs/performance.md keeps them, with the date and the card).
set -euo pipefail
OUT=${OUT:-$(mktemp -d)}
MNIST=$(realpath "${MNIST:-.device/mnist}")
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python -m pytest -q -p no:cacheprovider -o addopts="" tests/dcgan/test_graph.py tests/dcgan/test_pack.py 2>&1 \
  | tail -n 40 | tee "$OUT/tests.txt" || true
lone=(-m dcgan.train --no-eval --steps 3000 --set device=cuda --set image_size=28 --set "dataset=idx:$MNIST"
      --set eval_every=1000 --set ngf=64 --set ndf=64)
for arm in base:.device/base:false today:.:false captured:.:true; do
  IFS=: read -r name tree graph <<< "$arm"
  extra=(); [ "$graph" = true ] && extra=(--set cuda_graph=true)
  rm -rf "/tmp/lone-$name"
  (cd "$tree" && PYTHONPATH="$PWD:${PYTHONPATH#*:}" python "${lone[@]}" "${extra[@]}" --out "/tmp/lone-$name") 2>&1 \
    | grep "steps/s" | tail -n 1 | sed "s/^/$name: /" | tee -a "$OUT/lone.txt" || true
done
python bench/pack.py --device cuda --size 28 --width 64 --packs 1 4 16 --steps 200 2>&1 | tee "$OUT/pack.txt"
python bench/packed_search.py --packs 1 16 -- --population 15 --gpus-per-worker 0.0625 --image-size 28 \
  --dataset "idx:$MNIST" --steps 1500 --set ngf=64 --set ndf=64 2>&1 | tee "$OUT/packed_search.txt"
