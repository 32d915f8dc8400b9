# ADWorkbench: the two set-up commands (`make demo`, `make test`) install the Debian packages
# they need when missing, then run the Swift command.

APT_PACKAGES := libopenblas-dev liblapacke-dev zlib1g-dev pkg-config
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Tests build in release with testing enabled: numeric loops in debug Swift are 10-100x slower.
SWIFT_TEST := swift test -c release -Xswiftc -enable-testing
SWIFT_RUN := swift run -c release adwb
# The newest peer baselines (PyTorch beside the project, nibabel in reports/), for side-by-side figures.
PEERS := $(lastword $(sort $(wildcard ../shared/peers/baseline-*.json))) $(lastword $(sort $(wildcard reports/peers-nibabel-*.json))) \
	$(lastword $(sort $(wildcard reports/peers-registration-*.json)))

.PHONY: deps demo test bench build

deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing" $$missing; \
	  $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y $$missing; \
	fi

build: deps
	swift build -c release

test: deps
	$(SWIFT_TEST)

# The main job so far (in demo/): the synthetic cohort, its validation, its preprocessing (RAS,
# affine registration to the built-in template, skull strip, z-score; QC page in
# demo/preprocessed/qc/; the steps below still read the raw cohort until `adwb compare` lands),
# the participant-level split,
# both autoencoders pretrained on the first fold's training participants only (never on test
# participants), every scan's features extracted with each encoder (with the feature reports),
# then the three classifier back ends on that fold (SVM on each feature set, ICA + SVM on the
# voxels, the CAE encoder fine-tuned with a dense head), then the benchmark.
demo: deps
	$(SWIFT_RUN) synth --participants 60 --seed 0 --out demo/cohort
	$(SWIFT_RUN) manifest validate demo/cohort/manifest.tsv
	$(SWIFT_RUN) preprocess --manifest demo/cohort/manifest.tsv --out demo/preprocessed
	$(SWIFT_RUN) manifest split demo/cohort/manifest.tsv --folds 5 --test-fraction 0.2 --seed 0 --out demo/splits
	$(SWIFT_RUN) pretrain --preset payan2015 --manifest demo/splits/split-0/train.tsv --out demo/pretrain-sae --overwrite
	$(SWIFT_RUN) pretrain --preset hosseini2016 --epochs 3 --manifest demo/splits/split-0/train.tsv --out demo/pretrain-cae --overwrite
	$(SWIFT_RUN) extract --model demo/pretrain-sae --manifest demo/cohort/manifest.tsv --out demo/features-sae --overwrite
	$(SWIFT_RUN) extract --model demo/pretrain-cae --manifest demo/cohort/manifest.tsv --out demo/features-cae --overwrite
	$(SWIFT_RUN) classify --backend svm --features demo/features-sae --split demo/splits/split-0 --out demo/classify/svm-sae --overwrite
	$(SWIFT_RUN) classify --backend svm --features demo/features-cae --split demo/splits/split-0 --out demo/classify/svm-cae --overwrite
	$(SWIFT_RUN) classify --backend ica-svm --manifest demo/cohort/manifest.tsv --split demo/splits/split-0 --out demo/classify/ica-svm --overwrite
	$(SWIFT_RUN) classify --backend cnn --model demo/pretrain-cae --manifest demo/cohort/manifest.tsv --split demo/splits/split-0 --out demo/classify/cnn --overwrite
	$(SWIFT_RUN) bench $(foreach p,$(PEERS),--peers $(p))

bench: deps
	$(SWIFT_RUN) bench --json
