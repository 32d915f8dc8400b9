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

# The main job: `adwb demo` synthesises the built-in cohort (120 participants), preprocesses it
# (registration to the cohort's template, skull strip, z-score), pretrains an SAE and a CAE in
# every one of 5 participant-level folds, extracts features, compares SVM on each feature set,
# ICA + SVM on voxels and the fine-tuned CNN head, and writes reports/demo-<UTC time>/index.html.
# Data and stage outputs go to demo/; a rerun resumes after the finished stages.
demo: deps
	$(SWIFT_RUN) demo

# The kernels' figures beside the peers' (PyTorch, scikit-learn, nibabel, SimpleITK/ANTs).
bench: deps
	$(SWIFT_RUN) bench $(foreach p,$(PEERS),--peers $(p))
