# Ordo — one entry point for every routine task. `make help` lists them.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PROTO_SRC := $(wildcard protos/ordo/v1/*.proto)
GEN_DIR := services/ordo/v1
# Images the demo ingests: the shared sample photos beside the checkout, or any folder you name.
DEMO_IMAGES ?= ../shared/datasets/coco-captions-mini
export PYTHONUNBUFFERED := 1
# The web UI (web/, Vite + TypeScript) is built into the package, which serves it; not committed.
WEB_STATIC := services/ordo/gateway/static/index.html
WEB_SRC := $(wildcard web/src/*.ts web/src/*/*.ts web/src/*.css) web/src/openapi.json web/index.html web/package.json web/package-lock.json web/vite.config.ts

.PHONY: help install protos protos-check protos-breaking lint test browser demo up up-distributed bench chaos clean web web-api web-api-check

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel
	# The CPU torch wheel first, pinned, so nothing below pulls a multi-GB CUDA build.
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed ## create .venv and install Ordo with its dev tools (CPU torch)

protos: $(VENV)/.installed ## regenerate Python code from protos/ (the only way generated code is made)
	$(BIN)/buf lint protos
	rm -f $(GEN_DIR)/*_pb2*.py $(GEN_DIR)/*_pb2*.pyi
	$(PY) -m grpc_tools.protoc -I protos --python_out=services --grpc_python_out=services --pyi_out=services $(PROTO_SRC)
	touch $(GEN_DIR)/__init__.py

protos-check: protos ## fail when the committed generated code is stale
	@git diff --exit-code --stat -- $(GEN_DIR) || { echo "Generated protobuf code is stale: run 'make protos' and commit."; exit 1; }
	@test -z "$$(git status --porcelain -- $(GEN_DIR))" || { echo "Untracked generated files: run 'make protos' and commit."; git status --porcelain -- $(GEN_DIR); exit 1; }

# buf breaking (category WIRE_JSON, protos/buf.yaml) against the previous commit: binary and JSON clients of
# the last commit keep working. Skipped, with a notice, where that commit is not here (a shallow clone) and where
# HEAD's message carries the trailer "Buf-Breaking: intended" (a contract change the issue asked for).
BREAKING_AGAINST ?= HEAD~1
protos-breaking: $(VENV)/.installed ## buf breaking (WIRE_JSON) against the previous commit
	@if ! git rev-parse --verify --quiet '$(BREAKING_AGAINST)^{commit}' >/dev/null; then \
		echo "buf breaking: skipped, $(BREAKING_AGAINST) is not in this clone (shallow?)"; \
	elif ! git cat-file -e '$(BREAKING_AGAINST):protos/buf.yaml' 2>/dev/null; then \
		echo "buf breaking: skipped, $(BREAKING_AGAINST) has no protos/buf.yaml"; \
	elif git log -1 --format=%B | grep -qiE '^Buf-Breaking: *intended'; then \
		echo "buf breaking: skipped, HEAD says 'Buf-Breaking: intended'"; \
	else \
		$(BIN)/buf breaking protos --against '.git#ref=$(BREAKING_AGAINST),subdir=protos'; \
	fi

lint: $(VENV)/.installed ## ruff, pyright, buf lint (with comment rules), buf breaking (against the previous commit)
	$(BIN)/ruff check services tests bench
	$(BIN)/ruff format --check services tests bench
	$(BIN)/buf lint protos
	$(BIN)/pyright
	@$(MAKE) --no-print-directory -o $(VENV)/.installed protos-breaking

test: $(VENV)/.installed $(WEB_STATIC) browser ## the whole test suite (sets up its own browser, Redis and SeaweedFS)
	$(BIN)/pytest -q --durations=25 tests

# The browser tests drive Debian's Chromium (the browser Playwright would download does not run here);
# the tests start their own Redis, so only the binaries are needed.
browser: ## install Debian's Chromium and redis-server when missing (the test suite's system packages)
	@missing=""; [ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing (apt-get)"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq $$missing >/dev/null; \
	fi

web: $(WEB_STATIC) ## build the web UI (npm: Vite + TypeScript) into services/ordo/gateway/static

$(WEB_STATIC): $(WEB_SRC)
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build

# The UI's TypeScript shapes are generated: the gateway's OpenAPI document → openapi-typescript → api-types.ts.
web-api: $(VENV)/.installed ## regenerate web/src/openapi.json and web/src/api-types.ts from the gateway's routes
	$(PY) -m ordo.gateway.openapi_dump > web/src/openapi.json
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run gen:api

web-api-check: web-api ## fail when the committed OpenAPI document or the UI's generated types are stale
	@git diff --exit-code --stat -- web/src/openapi.json web/src/api-types.ts || { echo "The web UI's API types are stale: run 'make web-api' and commit."; exit 1; }

demo: $(VENV)/.installed ## start the embedded stack, ingest sample photos, search and print results
	$(BIN)/ordo demo "$(DEMO_IMAGES)"

up: $(VENV)/.installed ## run the embedded stack in the foreground (data under $$ORDO_DATA_DIR, default ./data)
	$(BIN)/ordo up

up-distributed: $(VENV)/.installed ## the distributed topology without Docker: Redis, SeaweedFS, index host, services, 2 workers
	$(BIN)/ordo ops up-distributed --workers $${WORKERS:-2} --data-dir $${ORDO_DATA_DIR:-data}/distributed

chaos: $(VENV)/.installed ## SIGKILL `ordo up` at every kill point, K rounds (CHAOS_ROUNDS=20, CHAOS_IMAGES=500); prints a table
	$(PY) -m tests.chaos --rounds $${CHAOS_ROUNDS:-20} --images $${CHAOS_IMAGES:-500}

bench: $(VENV)/.installed ## benchmarks: prints a table, writes bench/results/*.json
	$(PY) -m bench.run $(BENCH_ARGS)

soak: $(VENV)/.installed ## 50 gRPC + 20 REST search clients and 8 uploaders for 60 s against `ordo up`
	$(PY) -m bench.soak $(SOAK_ARGS)

clean:
	rm -rf .pytest_cache .ruff_cache bench/results/*.json
