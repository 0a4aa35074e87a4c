# Process Sentinel developer targets. `make` or `make help` lists them.
.DEFAULT_GOAL := help
PY ?= .venv/bin/python
VENV := .venv

.PHONY: help
help: ## list the targets
	@if [ -t 1 ] && [ -z "$$NO_COLOR" ]; then on='\033[36m'; off='\033[0m'; else on=''; off=''; fi; \
	awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*?## "} /^[a-zA-Z0-9_.-]+:.*?## / {printf "  %s%-18s%s %s\n", on, $$1, off, $$2}' $(MAKEFILE_LIST)

$(VENV)/bin/python:
	python3 -m venv $(VENV)

.PHONY: install
install: $(VENV)/bin/python ## editable install with test, bench and dev tools; compiles the core
	$(VENV)/bin/pip install -c constraints.txt -e '.[dev]'

.PHONY: lock
lock: ## re-pin constraints.txt to the newest releases pyproject.toml's ranges allow (fresh venv)
	rm -rf .venv-lock && python3 -m venv .venv-lock
	.venv-lock/bin/pip install -q '.[dev]'
	{ sed -n '1,3p' constraints.txt; .venv-lock/bin/pip freeze --all --exclude-editable --exclude process-sentinel --exclude pip | sort -f; } > constraints.new
	mv constraints.new constraints.txt && rm -rf .venv-lock

.PHONY: test-latest
test-latest: ## the suite on both cores against the newest releases the ranges allow (no constraints)
	rm -rf .venv-latest && python3 -m venv .venv-latest
	.venv-latest/bin/pip install -q --upgrade -e '.[test]'
	.venv-latest/bin/pytest -p no:cacheprovider
	SENTINEL_NO_EXTENSIONS=1 .venv-latest/bin/pytest -p no:cacheprovider -m 'not slow'

# The oldest python-oracledb pyproject.toml allows (its "oracledb>=" line).
ORACLEDB_FLOOR := $(shell sed -n 's/^ *"oracledb>=\([0-9.]*\)".*/\1/p' pyproject.toml)

.PHONY: test-oracle-floor
test-oracle-floor: ## the Oracle adapter and sql/ tests on the oldest python-oracledb allowed (scratch venv)
	rm -rf .venv-floor && python3 -m venv .venv-floor
	sed 's/^oracledb==.*/oracledb==$(ORACLEDB_FLOOR)/' constraints.txt > .venv-floor/constraints.txt
	.venv-floor/bin/pip install -q -c .venv-floor/constraints.txt -e '.[test]'
	.venv-floor/bin/python -c 'import oracledb; v = oracledb.__version__; assert v == "$(ORACLEDB_FLOOR)", v; print("python-oracledb", v)'
	.venv-floor/bin/pytest -p no:cacheprovider tests/test_oracle_adapter.py tests/test_sql_scripts.py

.PHONY: gen
gen: ## regenerate the core's declarations (.pxi, .pxd/.pyi blocks) from _schema.py and _shared.py
	$(PY) tools/gen_core.py

.PHONY: build
build: gen ## recompile the Cython core in place after editing a .pyx
	$(PY) setup.py build_ext --inplace

.PHONY: run
run: ## run the service on the embedded store with dev auth and demo traffic
	$(VENV)/bin/sentinel serve --dev --demo

.PHONY: test
test: ## the whole suite on the compiled core, then on the pure-Python twin
	$(VENV)/bin/pytest
	SENTINEL_NO_EXTENSIONS=1 $(VENV)/bin/pytest -m 'not slow'

.PHONY: test-fast
test-fast: ## the suite without the slow tests (servers, crash loops, schemathesis)
	$(VENV)/bin/pytest -m 'not slow'

.PHONY: lint
lint: ## ruff and mypy
	$(VENV)/bin/ruff check sentinel tests bench tools
	$(VENV)/bin/ruff format --check sentinel tests bench tools
	$(VENV)/bin/mypy

.PHONY: sql-check
sql-check: ## parse sql/ with sqlfluff's oracle dialect and print the Oracle migration plan
	$(VENV)/bin/pytest tests/test_sql_scripts.py -q
	$(VENV)/bin/sentinel migrate --oracle --dry-run > /dev/null

.PHONY: bench
bench: ## core (compiled vs twin) and end-to-end ingest (pipeline vs raw store) benches
	cd bench && ../$(VENV)/bin/pytest -c /dev/null --rootdir . -p no:cacheprovider -s test_core_bench.py test_ingest_bench.py

.PHONY: bench-ingest
bench-ingest: ## ingest events/s vs the raw log-row limit, empty and prefilled dedupe (PREFILL=2000000); GET /status p99 idle and under ingest (wrk)
	$(PY) bench/ingest_limit.py --prefill $(or $(PREFILL),2000000) $(BENCH_ARGS)

.PHONY: bench-http
bench-http: ## HTTP load: Sentinel vs the FastAPI/uvicorn baseline, tokens on
	$(PY) bench/http_load.py

.PHONY: bench-cost
bench-cost: ## interpreter instructions per GET /status inside a worker (callgrind; needs valgrind)
	$(PY) bench/request_cost.py

SWAGGER_UI_VERSION := 5.35.0
SWAGGER_UI_DIR := sentinel/ui/static/vendor/swagger-ui
SWAGGER_UI_FILES := swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui-standalone-preset.js \
	swagger-ui-standalone-preset.js.LICENSE.txt swagger-ui.css favicon-32x32.png LICENSE NOTICE

.PHONY: vendor
vendor: ## re-fetch the pinned Swagger UI assets /schema serves (npm pack; checks the registry's sha512)
	rm -rf .vendor-tmp && mkdir .vendor-tmp
	cd .vendor-tmp && npm pack --silent swagger-ui-dist@$(SWAGGER_UI_VERSION) > /dev/null
	test "$$(npm view swagger-ui-dist@$(SWAGGER_UI_VERSION) dist.integrity)" = \
		"sha512-$$(openssl dgst -sha512 -binary .vendor-tmp/swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz | base64 -w0)"
	tar xzf .vendor-tmp/swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz -C .vendor-tmp
	mkdir -p $(SWAGGER_UI_DIR)
	cd .vendor-tmp/package && cp $(SWAGGER_UI_FILES) ../../$(SWAGGER_UI_DIR)/
	sed -i "1s/.*/swagger-ui-dist $(SWAGGER_UI_VERSION)/" $(SWAGGER_UI_DIR)/VERSION
	rm -rf .vendor-tmp

.PHONY: bench-ui
bench-ui: ## server time of the dashboard's processes page with 50,000 processes in the tenant
	$(PY) bench/ui_render.py

.PHONY: wheel-check
wheel-check: ## build the wheel, check it holds the compiled core, test it in a fresh venv
	$(PY) tools/wheel_check.py

.PHONY: clean
clean: ## remove build output and caches
	rm -rf build dist wheelhouse *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	rm -f sentinel/_core/*.c sentinel/_core/*.so sentinel/_core/*.html
