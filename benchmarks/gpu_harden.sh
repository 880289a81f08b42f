#!/usr/bin/env bash
# The `harden` study on a GPU, in the reference's regime: ResNet-20 adapted to 28x28 grey
# inputs, the full Fashion-MNIST training set, 30 epochs of SGD (lr 0.1, cosine) for the
# source, and the reference's fine-tuning (SGD, lr 1e-3) to convergence (at most 20 epochs,
# patience 3) for every method; 3 seeds, 1000 test images, every attacker and attack of the
# preset, plus the pool hardening (magnitude+pool, issue 22). --tiny runs the preset's methods
# against the new attackers only (independent-arch, robust, replicas of 2), with PGD only.
#
#   bash benchmarks/gpu_harden.sh           # on a CUDA machine; results in benchmarks/results/harden_gpu/
#   bash benchmarks/gpu_harden.sh --tiny    # the same study on 160 images on CPU, about a minute (tests the script)
#
# OUT=<folder> puts the results there instead. The study's cache stays in $WORK (default: a
# temporary folder), so a rerun with the same WORK resumes.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-gpu}
case "$mode" in
  gpu)
    out=${OUT:-benchmarks/results/harden_gpu}
    settings=(--device cuda --n-train 60000 --n-test 1000 --epochs 30
              --finetune-epochs 20 --finetune-patience 3
              --methods "gap-grad,random,magnitude,gap-iter,gap-grad+tat,magnitude+tat,magnitude+tat-fgsm,gap-grad+gal,ensemble-adv>magnitude,magnitude+pool")
    ;;
  --tiny)
    out=${OUT:-$(mktemp -d)/harden_tiny}
    settings=(--device cpu --seeds 0 --n-train 160 --n-test 16 --epochs 1
              --finetune-epochs 1 --no-sanity-checks --replicas 2 --attacks pgd
              --threat-models dense,independent-arch,robust,replicas)
    ;;
  *)
    echo "usage: bash benchmarks/gpu_harden.sh [--tiny]" >&2
    exit 2
    ;;
esac
work=${WORK:-$(mktemp -d)}

start=$(date +%s)
python -m gap_art bench --preset harden --arch resnet20-28 "${settings[@]}" --out "$work/study" --resume
mkdir -p "$out"
cp "$work"/study/report.md "$work"/study/report.html "$work"/study/results.json "$work"/study/results.csv "$out"/
cp "$work"/study/*.png "$out"/ 2>/dev/null || true
{
  echo "command: bash benchmarks/gpu_harden.sh $*"
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)"
  echo "wall seconds: $(( $(date +%s) - start ))"
  python -c "import platform, torch; print('python', platform.python_version(), '| torch', torch.__version__, '| cuda', torch.version.cuda, '| device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "nvidia-smi: not available"
} > "$out/environment.txt"
echo "results in $out"
