# The README's two set-up commands are `make test` and `make demo`.
GO        ?= go
SO        := build/cloudwatch_opensearch.so
STATICCHECK_VERSION := v0.8.2
BENCH_COUNT ?= 5

.PHONY: build test bench lint demo image tools clean

build: $(SO)

$(SO): $(shell find plugin internal -name '*.go' -not -name '*_test.go') go.mod go.sum
	CGO_ENABLED=1 $(GO) build -buildmode=c-shared -trimpath -o $@ ./plugin

# Everything: unit, fuzz seeds, moto_server integration, the C ABI host, end-to-end, deploy checks.
# The end-to-end tests write one summary line each (records in, delivered per destination,
# duplicates, rejected) to build/e2e-summary.txt, printed at the end.
test: build
	$(GO) vet ./...
	rm -f build/e2e-summary.txt
	E2E_SUMMARY=$(CURDIR)/build/e2e-summary.txt $(GO) test -count=1 -timeout 30m ./...; s=$$?; cat build/e2e-summary.txt 2>/dev/null; exit $$s
	$(GO) test -race -count=1 -timeout 20m ./internal/... ./plugin/
	$(GO) test -race -count=1 -run '^TestConcurrentInstances$$' ./test/e2e/

# Benchmarks print their figures (ns/record, records/s, allocs) and the baseline ratio.
bench:
	mkdir -p build
	$(GO) test -run '^$$' -bench . -benchmem -count=$(BENCH_COUNT) -timeout 60m ./... | tee build/bench.txt

lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

demo:
	@bash docker/demo.sh

image:
	docker build -f docker/Dockerfile -t cloudwatch-opensearch-fluent-bit:dev .

clean:
	rm -rf build
