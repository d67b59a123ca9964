#!/usr/bin/env bash
# Packs on a lent GPU, in one device call (../shared/device/README.md says how the project runs there):
#   tar -xJf .device/site312.tar.xz -C /tmp && export PYTHONPATH=$PWD:/tmp/site312 PYTHONUNBUFFERED=1 \
#     RAY_USAGE_STATS_ENABLED=0 && bash bench/gpu_packs.sh        (carry: [".device"]; about 8 minutes)
# 1. bench/pack.py: a pack of K models against K models one after another (28 px grey, ngf=ndf=64).
# 2. bench/packed_search.py: the baseline search (15 members and the control, 1,500 steps each,
#    --gpus-per-worker 0.0625) as today's layout (--pack 1) and as one pack of 16, training images/s and
#    end to end. Their tables go to $OUT (docs/performance.md keeps them, with the date and the card).
set -euo pipefail
OUT=${OUT:-$(mktemp -d)}
MNIST=${MNIST:-.device/mnist}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python bench/pack.py --device cuda --size 28 --width 64 --packs 1 4 16 --steps 200 2>&1 | tee "$OUT/pack.txt"
python bench/packed_search.py --packs 1 16 -- --population 15 --gpus-per-worker 0.0625 --image-size 28 \
  --dataset "idx:$MNIST" --steps 1500 --set ngf=64 --set ndf=64 2>&1 | tee "$OUT/packed_search.txt"
