#!/usr/bin/env bash
# The `harden` study on a GPU, in the reference's regime: ResNet-20 adapted to 28x28 grey
# inputs, the full Fashion-MNIST training set (60,000 images: 6,000 drawn first as the validation
# split no model trains on, the other 54,000 to train on).
#
#   bash benchmarks/gpu_harden.sh           # the whole study: hours on one GPU (below)
#   bash benchmarks/gpu_harden.sh --lease   # one seed, sized for a 15-minute GPU lease (below)
#   bash benchmarks/gpu_harden.sh --tiny    # the same script on 160 images on CPU, minutes (tests it)
#
# gpu: 30 epochs of SGD (lr 0.1, cosine) for the source, the reference's fine-tuning (SGD, lr
#   1e-3) to convergence (at most 20 epochs, patience 3) for every method; 3 seeds, 1000 test
#   images, every attacker and attack of the preset, plus the pool hardening (magnitude+pool,
#   issue 22), and ART's AutoAttack white-box on 100 of each target's test images (issue 36; 73 s
#   a lenet-wide target on 2 CPU cores, too slow for the CPU presets). Results in
#   benchmarks/results/harden_gpu/.
# --lease: seed 0, all 60,000 images (54,000 train, 6,000 validation), 1000 test images, 4 source epochs, fine-tuning and ART's
#   trainers for at most 2 epochs; random, magnitude and magnitude+tat against FBF, attacked
#   with FGSM, PGD and MI-FGSM from the dense model, another architecture, a robust model and
#   the replica. Results in benchmarks/results/harden_gpu_lease/. Sized from the CPU's task
#   times (about 6 minutes estimated on one H200); not yet run on a GPU.
# --tiny: the preset's methods against the new attackers only (independent-arch, robust,
#   one replica), with PGD only (transfer and white-box), on CPU.
#
# Environment: OUT=<folder> puts the results there instead; WORK=<folder> keeps the study's
# cache (default: a temporary folder), so a rerun with the same WORK resumes; METHODS=<list>
# replaces the mode's methods; DEFENCES=<list> the ART defences (the preset's by default);
# DATA_DIR=<folder> reads Fashion-MNIST's gzip files from there;
# PYTHON=<interpreter> (default python3); COMMIT=<hash> names the commit where git cannot;
# DRY_RUN=1 prints the mode's study (its settings and task counts) and runs nothing;
# DEVICE=<device> replaces cuda in the gpu and --lease modes (DEVICE=cpu DRY_RUN=1 plans one
# on a machine without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-gpu}
case "$mode" in
  gpu)
    out=${OUT:-benchmarks/results/harden_gpu}
    methods=""  # the preset's, the pool hardening (magnitude+pool) included
    settings=(--device "${DEVICE:-cuda}" --seeds 0,1,2 --n-train none --n-test 1000 --epochs 30
              --finetune-epochs 20 --finetune-patience 3 --autoattack-n 100)
    ;;
  --lease)
    out=${OUT:-benchmarks/results/harden_gpu_lease}
    methods="random,magnitude,magnitude+tat"
    settings=(--device "${DEVICE:-cuda}" --seeds 0 --n-train none --n-test 1000 --epochs 4
              --finetune-epochs 2 --finetune-patience 1 --defence-epochs 2
              --attacks fgsm,pgd,mifgsm --defences fbf
              --threat-models dense,independent-arch,robust,replica)
    ;;
  --tiny)
    out=${OUT:-$(mktemp -d)/harden_tiny}
    methods="gap-grad,random,magnitude,gap-iter,gap-grad+tat,magnitude+tat,magnitude+tat-fgsm,gap-grad+gal,ensemble-adv>magnitude"
    settings=(--device cpu --seeds 0 --n-train 160 --n-test 16 --epochs 1
              --finetune-epochs 1 --defence-epochs 1 --no-sanity-checks --attacks pgd
              --whitebox-attacks pgd
              --threat-models dense,independent-arch,robust,replica)
    ;;
  *)
    echo "usage: bash benchmarks/gpu_harden.sh [--lease|--tiny]" >&2
    exit 2
    ;;
esac
methods=${METHODS:-$methods}
if [[ -n "$methods" ]]; then
  settings+=(--methods "$methods")
fi
if [[ -n "${DEFENCES:-}" ]]; then
  settings+=(--defences "$DEFENCES")
fi
if [[ -n "${DATA_DIR:-}" ]]; then
  settings+=(--data-dir "$DATA_DIR")
fi
python=${PYTHON:-python3}
if [[ -n "${DRY_RUN:-}" ]]; then
  exec "$python" -m gap_art bench --preset harden --arch resnet20-28 "${settings[@]}" --dry-run
fi
work=${WORK:-$(mktemp -d)}

start=$(date +%s)
"$python" -m gap_art bench --preset harden --arch resnet20-28 "${settings[@]}" --out "$work/study" --resume
mkdir -p "$out"
cp "$work"/study/report.md "$work"/study/report.html "$work"/study/results.json "$work"/study/results.csv "$out"/
cp "$work"/study/*.png "$out"/ 2>/dev/null || true
{
  echo "command: bash benchmarks/gpu_harden.sh $*"
  echo "methods: ${methods:-those of the harden preset}"
  echo "commit: ${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
  echo "wall seconds: $(( $(date +%s) - start ))"
  "$python" -c "import platform, torch; print('python', platform.python_version(), '| torch', torch.__version__, '| cuda', torch.version.cuda, '| device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "nvidia-smi: not available"
} > "$out/environment.txt"
echo "results in $out"
