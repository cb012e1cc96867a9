# driftd — the two commands a newcomer needs:
#   make demo   run driftd on one machine against real engines (see README)
#   make test   fetch and start real Kafka and the ClickHouse engine (and install Chromium
#               for the page tests when missing), then run every test
SHELL := /bin/bash
GO ?= go
KAFKA_PORT ?= 19092
# Fuzz for a number of executions, not a duration: a duration that ends while a worker
# runs an input fails the run with "context deadline exceeded" (seen here).
FUZZTIME ?= 200000x

.PHONY: build demo test fuzz bench kafka-start kafka-stop chdb clean

build:
	$(GO) build -o bin/driftd ./cmd/driftd

# The main job on one machine: in-process Kafka on 127.0.0.1:9092, the embedded ClickHouse
# engine on http://127.0.0.1:8123, driftd and simulated traffic, with a live view.
demo:
	$(GO) run ./cmd/driftd dev

chdb:
	@scripts/chdb.sh >/dev/null

kafka-start:
	@KAFKA_PORT=$(KAFKA_PORT) scripts/kafka.sh start

kafka-stop:
	@KAFKA_PORT=$(KAFKA_PORT) scripts/kafka.sh stop

# test starts the engines itself and always stops the broker it started.
test:
	@set -euo pipefail; \
	lib=$$(scripts/chdb.sh); \
	chromium=$$(scripts/chromium.sh); \
	brokers=$$(KAFKA_PORT=$(KAFKA_PORT) scripts/kafka.sh start); \
	trap 'KAFKA_PORT=$(KAFKA_PORT) scripts/kafka.sh stop' EXIT; \
	echo "engines: kafka $$brokers, chdb $$lib, chromium $$chromium"; \
	CHROMIUM_PATH=$$chromium CHDB_LIB_PATH=$$lib KAFKA_BROKERS=$$brokers KAFKA_SASL_BROKERS=127.0.0.1:$$(($(KAFKA_PORT) + 2)) \
	KAFKA_TLS_BROKERS=127.0.0.1:$$(($(KAFKA_PORT) + 3)) KAFKA_TLS_CA=$(CURDIR)/.cache/kafka-run-$(KAFKA_PORT)/tls/ca.pem $(GO) test -count=1 -timeout 45m ./... ; \
	CHDB_LIB_PATH=$$lib KAFKA_BROKERS=$$brokers $(MAKE) --no-print-directory fuzz

# Every fuzz target, each for a bounded time.
fuzz:
	@set -euo pipefail; \
	for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# driftd bench's arguments: the topic's size and shape (driftd bench --help).
BENCH_ARGS ?= --events 1000000 --features 6 --format json

# Benchmarks: decode and window update alone, one member end to end (real Kafka and the
# ClickHouse engine, started as for test), and driftd bench: the bare-consumer ceiling and
# driftd run on the same topic in the same run (docs/performance.md).
bench:
	@set -euo pipefail; \
	lib=$$(scripts/chdb.sh); \
	brokers=$$(KAFKA_PORT=$(KAFKA_PORT) scripts/kafka.sh start); \
	trap 'KAFKA_PORT=$(KAFKA_PORT) scripts/kafka.sh stop' EXIT; \
	CHDB_LIB_PATH=$$lib KAFKA_BROKERS=$$brokers $(GO) test -run '^$$' -bench . -benchmem ./processors/ ./schemas/ ; \
	CHDB_LIB_PATH=$$lib KAFKA_BROKERS=$$brokers $(GO) test -run '^$$' -bench EndToEnd -benchtime 300000x -benchmem ./pipeline/ ; \
	CHDB_LIB_PATH=$$lib DRIFTD_KAFKA_BROKERS=$$brokers $(GO) run ./cmd/driftd bench $(BENCH_ARGS)

clean:
	rm -rf bin .driftd
