#!/usr/bin/env bash
# The README's results on real data, one configuration per name:
#
#   bash benchmarks/real_data.sh necklines-mobilenet-smote     # runs `dvc exp run -n <name> ...`
#   bash benchmarks/real_data.sh --list                        # the names
#   bash benchmarks/real_data.sh --dry-run NAME                # print the command, run nothing
#   bash benchmarks/real_data.sh NAME -S finetune.enabled=true # more overrides after the name
#
# With -S finetune.enabled=true the fine-tuned backbone is trained by the finetune stage and, on the same
# folds as the head and the baseline, in every crossval fold: 5 folds x 3 repeats of fine-tuning take about an
# hour on 2 CPU cores for the neckline photos (docs/finetuning.md, "Cross-validated by the crossval stage"); add
# -S crossval.repeats=1 for a third of that. benchmarks/crossval_cost.py times a few of those folds first.
#
# Each is a plain `dvc exp run` with the -S overrides printed before it runs, reading the data and
# the MobileNet weights in ../shared (VGG16 and ResNet50 need a connected machine for their ImageNet
# weights: -S model=vgg16 -S features.weights=imagenet). Results land in metrics/test.json and in
# `dvc exp show`. Every override is given explicitly, because `dvc exp run` starts from the
# workspace's params, which hold the last experiment's values.
set -euo pipefail
set -f  # the overrides hold regular expressions: no file-name globbing
cd "$(dirname "$0")/.."

W=../shared/weights
MOBILENET="-S model=mobilenet -S features.weights=$W/mobilenet_1.0_224_no_top.weights.h5 -S features.alpha=1.0"
MOBILENET_V2="-S model=mobilenet_v2 -S features.weights=$W/mobilenet_v2_1.0_224_no_top.weights.h5 -S features.alpha=1.0"
# Both side by side: the head sees MobileNet's 1024 and MobileNetV2's 1280 features of each photo.
ENSEMBLE="-S model=mobilenet+mobilenet_v2 -S features.alpha=1.0 \
 -S features.weights={mobilenet:$W/mobilenet_1.0_224_no_top.weights.h5,mobilenet_v2:$W/mobilenet_v2_1.0_224_no_top.weights.h5}"
# Whole photos, padded to a square, features of each photo as it is.
WHOLE="-S data.region.top=0.0 -S data.region.bottom=1.0 -S data.region.left=0.0 -S data.region.right=1.0 \
 -S data.resize=pad -S data.locate=none -S features.mirror=false"
# The neckline photos are named <...>-<product>-<view>.jpg: all views of a product in one split.
# (quoted for DVC's override grammar, which would read the parentheses otherwise)
ITEMS="-S split.group='-(\\d+)-\\d+\\.[a-z]+\$'"
# The CNN's schedule when the photo rows of docs/results.md were measured: 60 epochs from a rate of 0.003 (the
# default run now trains 40 from 0.005, to keep to its 3 minutes; docs/default-run.md).
CNN_60="-S cnn.epochs=60 -S cnn.patience=60 -S cnn.learning_rate=0.003"
NECKLINES="$CNN_60 -S data.source=folder -S data.path=../shared/data/necklines -S data.image_size=224 $ITEMS $WHOLE"
# Only the upper 60 % of each neckline photo, where the neckline is, filling the 224x224 square;
# each photo's features averaged with its mirror image's (necklines_top) or not (necklines_top_nomirror).
UPPER_REGION="$CNN_60 -S data.source=folder -S data.path=../shared/data/necklines -S data.image_size=224 $ITEMS \
 -S data.region.top=0.0 -S data.region.bottom=0.6 -S data.region.left=0.0 -S data.region.right=1.0 -S data.resize=crop"
NECKLINES_UPPER="$UPPER_REGION -S data.locate=none"
# The neckline located under the wearer's face (data.locate: face; the upper 60 % where no face is found),
# cropped square; the CNN sees all of it (its default region is cut for the generated necklines).
# Chosen by grouped cross-validation (docs/locate.md).
NECKLINES_FACE="$UPPER_REGION -S data.locate=face -S data.locate_box.top=0.9 -S data.locate_box.bottom=2.2 \
 -S data.locate_box.half_width=1.1 -S features.mirror=false \
 -S cnn.region.top=0.0 -S cnn.region.bottom=1.0 -S cnn.region.left=0.0 -S cnn.region.right=1.0"
# Every photo located (data.locate: auto: the face, else the shoulders, else a close-up's top band; back views
# marked), the same box.
NECKLINES_AUTO="${NECKLINES_FACE/-S data.locate=face/-S data.locate=auto}"
NECKLINES_TOP="$NECKLINES_UPPER -S features.mirror=true"
NECKLINES_TOP_NOMIRROR="$NECKLINES_UPPER -S features.mirror=false"
# The CNN's input as it was before the necklines recipe: the whole image as it is, no colour augmentation
# (the defaults cut out the generated necklines' neck region and make colours meaningless).
CNN_WHOLE="-S cnn.region.top=0.0 -S cnn.region.bottom=1.0 -S cnn.region.left=0.0 -S cnn.region.right=1.0 \
 -S cnn.standardize=false -S cnn.augment.channel_shuffle=false -S cnn.augment.invert=0"
CLOTHING="$CNN_60 -S data.source=folder -S data.path=../shared/data/clothing -S data.image_size=224 -S split.group=null $WHOLE $CNN_WHOLE"
# Fashion-MNIST at its own 28x28 (the backbones enlarge it to their minimum, 32); the CNN chosen on the
# validation split (README, "Fashion-MNIST"): three blocks of two 3x3 convolutions with batch
# normalisation, flatten, Dense 256 + Dropout 0.4, cosine schedule from 0.002, label smoothing 0.1,
# flips and small shifts, 40 epochs in batches of 64.
FASHION="-S data.source=fashion_mnist -S data.path=../shared/data/fashion-mnist -S data.image_size=28 -S split.group=null $WHOLE \
 -S split.validation=0.1 -S cnn.image_size=28 -S cnn.filters=[32,64,128] -S cnn.convolutions=2 -S cnn.dense_units=[256] \
 -S cnn.dropout=0.4 -S cnn.batch_norm=true -S cnn.pooling=flatten -S cnn.learning_rate=0.002 -S cnn.schedule=cosine \
 -S cnn.reduce_lr_patience=0 -S cnn.weight_decay=0 -S cnn.label_smoothing=0.1 -S cnn.batch_size=64 -S cnn.epochs=40 \
 -S cnn.patience=40 -S cnn.class_weight=true -S cnn.augment.flip=true -S cnn.augment.rotation=0 -S cnn.augment.zoom=0 \
 -S cnn.augment.brightness=0 -S cnn.augment.contrast=0 -S cnn.augment.shift=0.05 -S cnn.augment.hue=0 \
 -S cnn.augment.grayscale=0 $CNN_WHOLE"

# Cross-validation as the README's results measure it: 5 folds x 3 repeats (the default run does 1
# repeat); Fashion-MNIST's 10,000 training images make one repeat enough (and 3 would take an hour).
CROSSVAL="-S crossval.folds=5 -S crossval.repeats=3"
declare -A CROSSVAL_OF=([fashion]="-S crossval.folds=5 -S crossval.repeats=1"
                        [fashion224]="-S crossval.folds=5 -S crossval.repeats=1")

# The original project's way with Fashion-MNIST: each 28x28 image enlarged to 224x224 RGB, frozen backbone
# features, the head on top (1.9 GB image store). The CNN is not the point here: 1 epoch, and not reported.
FASHION224="-S data.source=fashion_mnist -S data.path=../shared/data/fashion-mnist -S data.image_size=224 \
 -S split.group=null $WHOLE -S split.validation=0.1 -S cnn.epochs=1 -S cnn.image_size=28 -S cnn.filters=[8] $CNN_WHOLE"

declare -A DATA=([necklines]=$NECKLINES [necklines_top]=$NECKLINES_TOP [necklines_top_nomirror]=$NECKLINES_TOP_NOMIRROR
                 [necklines_face]=$NECKLINES_FACE
                 [clothing]=$CLOTHING [fashion]=$FASHION [fashion224]=$FASHION224)
declare -A MODEL=([mobilenet]=$MOBILENET [mobilenet_v2]=$MOBILENET_V2 [ensemble]=$ENSEMBLE)
declare -A SMOTE=([smote]="-S smote.enabled=true" [nosmote]="-S smote.enabled=false")
declare -A RUNS=()  # NAME = data-backbone-smote
for data in "${!DATA[@]}"; do
  for model in "${!MODEL[@]}"; do
    for smote in "${!SMOTE[@]}"; do
      RUNS[$data-$model-$smote]="${DATA[$data]} ${MODEL[$model]} ${SMOTE[$smote]} ${CROSSVAL_OF[$data]:-$CROSSVAL}"
    done
  done
done

# The neckline configuration chosen by grouped cross-validation (docs/locate.md): every photo located, the chosen
# box, MobileNet 1.0, SMOTE, with every model: the fine-tuned backbone beside the head, the baseline and the CNN, so
# that CV ranks them on the same folds (the baseline first, the fine-tuned backbone level with it within the noise;
# docs/locate.md, "The CNN and fine-tuning on the located crops"). The crossval stage fine-tunes in each of its 15
# folds: about 25 min of the run's 30 on 2 CPU cores.
RUNS[necklines_best]="$NECKLINES_AUTO $MOBILENET ${SMOTE[smote]} $CROSSVAL -S finetune.enabled=true"

DRY_RUN=false
if [[ ${1:-} == --dry-run ]]; then DRY_RUN=true; shift; fi
if [[ $# -lt 1 || ${1:-} == --list || -z ${RUNS[${1:-}]+set} ]]; then
  [[ ${1:-} == --list ]] || echo "usage: bash benchmarks/real_data.sh NAME   (one of the names below)" >&2
  printf '%s\n' "${!RUNS[@]}" | sort
  [[ ${1:-} == --list ]]
  exit $?
fi
echo "dvc exp run -n $1 ${RUNS[$1]} ${*:2}"
$DRY_RUN && exit 0
# shellcheck disable=SC2086  # the overrides are meant to split into words
time dvc exp run -n "$1" ${RUNS[$1]} "${@:2}"
