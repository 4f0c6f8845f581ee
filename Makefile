# synchub — the two commands a newcomer needs are `make run` and `make test`.

GO            ?= go
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
CONFIG        ?= configs/synchub.yaml

# Development-only secrets so `make run` works as is with the example config.
# Real deployments set these in the environment; the config only names them.
export SYNCHUB_ADMIN_TOKEN   ?= dev-admin-token
export ACME_WEBHOOK_SECRET   ?= whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
export GLOBEX_WEBHOOK_SECRET ?= whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

.PHONY: run build test unit e2e e2e-deps lint fuzz bench

## run: the hub on its embedded broker (Kafka on 127.0.0.1:9092) with the example config
run:
	$(GO) run ./cmd/synchub run --config $(CONFIG)

build:
	$(GO) build -o bin/synchub ./cmd/synchub

## test: unit and integration tests (race detector on), then the end-to-end tests
test: unit e2e

unit:
	$(GO) test -race -count=1 ./...

## e2e: the built binary, its embedded broker and kcat as an outside producer
e2e: e2e-deps
	$(GO) test -tags e2e -count=1 -timeout 10m ./e2e/

## e2e-deps: kcat from Debian's packages, node and npm likewise, each installed if missing;
## then Stoplight Prism (the vendor tests' spec validator) from e2e/prism's lock file
PRISM_LOCK := e2e/prism/node_modules/.package-lock.json
e2e-deps:
	@command -v kcat >/dev/null 2>&1 || { \
		echo "installing kcat"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq kcat >/dev/null; \
	}
	@{ command -v node && command -v npm; } >/dev/null 2>&1 || { \
		echo "installing nodejs and npm"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq nodejs npm >/dev/null; \
	}
	@[ -x e2e/prism/node_modules/.bin/prism ] && [ $(PRISM_LOCK) -nt e2e/prism/package-lock.json ] || { \
		echo "installing Stoplight Prism (npm ci in e2e/prism)"; \
		cd e2e/prism && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; \
	}

## lint: formatting, vet and staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags e2e ./e2e/

## fuzz: run the envelope decoder's fuzz target for a while (FUZZTIME=1m)
FUZZTIME ?= 1m
fuzz:
	$(GO) test ./event/ -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME)

## bench: synchub's connector stage against a naive one-request-per-event peer, on the
## embedded broker (a few minutes: naive is slow by design); table on stdout, JSON in
## bench/results.json. Flags: make bench BENCHFLAGS='-events 20000 -steady-for 5s'
bench:
	$(GO) run ./bench $(BENCHFLAGS)
