# Assay: `make demo` runs the whole pipeline on embedded defaults; `make test` runs every test.
# Both install missing Debian packages first (scripts/install-deps.sh).

SWIFT ?= swift
export PATH := /opt/swift/usr/bin:$(PATH)
SWIFT_BUILD_FLAGS ?=

.PHONY: all deps build release test demo bench chaos ui-test migrations proto fuzz clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build $(SWIFT_BUILD_FLAGS)

release: deps
	$(SWIFT) build -c release $(SWIFT_BUILD_FLAGS)

# The whole suite: unit tests, and integration tests against a throwaway PostgreSQL
# cluster (or $$DATABASE_URL) and librdkafka's in-process mock cluster. scripts/run-tests.sh
# reruns it once only when librdkafka 2.0.2's mock broker aborted the test process.
test: deps
	$(SWIFT) build --build-tests $(SWIFT_BUILD_FLAGS)
	SWIFT=$(SWIFT) scripts/run-tests.sh $(SWIFT_BUILD_FLAGS)

demo: deps
	$(SWIFT) build $(SWIFT_BUILD_FLAGS) --product assay
	$$($(SWIFT) build $(SWIFT_BUILD_FLAGS) --show-bin-path)/assay demo

# Ingest and scoring against the Kafka read and PostgreSQL COPY limits, side by side, in
# release builds; BENCH_ARGS="--n 25000" etc. Results: the table and one JSON line.
bench: deps
	$(SWIFT) build -c release $(SWIFT_BUILD_FLAGS) --product assay
	$(SWIFT) build -c release $(SWIFT_BUILD_FLAGS) --product assay-bench
	$$($(SWIFT) build -c release $(SWIFT_BUILD_FLAGS) --show-bin-path)/assay-bench $(BENCH_ARGS)

# Three assay serve replicas, a broker process and PostgreSQL under every fault kind, then
# exactly-once checks; CHAOS_ARGS="--seed 2 --traces 8000 --seconds 120" etc. The short form
# (--short) also runs in make test.
chaos: deps
	$(SWIFT) build $(SWIFT_BUILD_FLAGS) --product assay
	$(SWIFT) build $(SWIFT_BUILD_FLAGS) --product assay-chaos
	$$($(SWIFT) build $(SWIFT_BUILD_FLAGS) --show-bin-path)/assay-chaos $(CHAOS_ARGS)

# The dashboard in headless Chromium against a demo database (installs chromium when missing).
ui-test: deps
	SWIFT="$(SWIFT)" SWIFT_BUILD_FLAGS="$(SWIFT_BUILD_FLAGS)" scripts/ui-test.sh

# Regenerate the migrations compiled into the binary from schemas/postgres/*.sql.
migrations:
	scripts/embed-migrations.sh

# Regenerate Sources/AssayOTLP/Generated from schemas/otlp/*.proto (needs protoc; never run in CI).
proto:
	scripts/generate-otlp-protos.sh

# The OTLP decoder fuzz test with 100k inputs (the default suite runs 5k).
fuzz: deps
	$(SWIFT) build --build-tests $(SWIFT_BUILD_FLAGS)
	ASSAY_OTLP_FUZZ_ITERATIONS=100000 $(SWIFT) test --skip-build $(SWIFT_BUILD_FLAGS) --filter AssayOTLPTests.FuzzTests

clean:
	rm -rf .build
