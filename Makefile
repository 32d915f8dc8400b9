# ADWorkbench: the two set-up commands (`make demo`, `make test`) install the Debian packages
# they need when missing, then run the Swift command.

APT_PACKAGES := libopenblas-dev liblapacke-dev zlib1g-dev pkg-config
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Tests build in release with testing enabled: numeric loops in debug Swift are 10-100x slower.
SWIFT_TEST := swift test -c release -Xswiftc -enable-testing
SWIFT_RUN := swift run -c release adwb

.PHONY: deps demo test bench build

deps:
	@if ! dpkg-query -W -f='$${Status}\n' $(APT_PACKAGES) 2>/dev/null | grep -qv 'install ok installed' \
	    && [ "$$(dpkg-query -W -f='$${Status}\n' $(APT_PACKAGES) 2>/dev/null | wc -l)" = "$(words $(APT_PACKAGES))" ]; then \
	  echo "deps: $(APT_PACKAGES) present"; \
	else \
	  echo "deps: installing $(APT_PACKAGES)"; \
	  $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y $(APT_PACKAGES); \
	fi

build: deps
	swift build -c release

test: deps
	$(SWIFT_TEST)

demo: deps
	$(SWIFT_RUN) bench

bench: deps
	$(SWIFT_RUN) bench --json
