#!/usr/bin/env bash
# Your own model on your own images, through every gap-art command. Run it from a scratch
# folder: bash /path/to/examples/own_model/run.sh (it writes images/ and *.pt there).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"   # so that --arch mymodels:TinyNet imports
arch=(--arch mymodels:TinyNet --arch-kwargs '{"width": 8}')

python "$here/make_images.py" images                     # images/train/<class>/*.png, images/test/...

gap-art train --data images --mean 0.5 --std 0.25 "${arch[@]}" --epochs 30 --out model.pt
gap-art prune model.pt "${arch[@]}" --method magnitude --compression 4 --finetune-epochs 2 --out pruned.pt
gap-art export model.pt "${arch[@]}" --format state_dict --out model-dense.pt
gap-art export pruned.pt "${arch[@]}" --format sparse --out pruned.safetensors
gap-art export pruned.pt "${arch[@]}" --format sparse --int8 --out pruned-int8.safetensors
gap-art export pruned.pt "${arch[@]}" --format pt2 --int8 --out pruned-int8.pt2
gap-art evaluate --source model.pt "${arch[@]}" --target pruned=pruned.pt --target int8=pruned-int8.pt2 \
    --attacks fgsm,pgd --eps 0.3 --quiet --out evaluation
gap-art bench --source-checkpoint model.pt "${arch[@]}" --data images --mean 0.5 --std 0.25 \
    --methods random,magnitude --compression 4 --attacks fgsm,pgd --eps 0.3 --defences none --no-int8 \
    --seeds 0 --finetune-epochs 2 --threat-models dense,independent --epochs 30 --quiet --out study
gap-art report study
