# The front door. `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CHECKOV_VERSION := 3.3.30

.PHONY: install templates demo test lint format typecheck clean pricing-refresh pricing-crosscheck pricing-audit bench email-preview pricing-docs package deploy invoke download checkov

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the daily report end to end on an embedded AWS (moto) and write the CSV and the email to out/.
## LOG_SOURCE=s3 reads the invocation logs from the objects Bedrock delivers to S3 (the embedded engine) instead of
## CloudWatch Logs Insights: make demo LOG_SOURCE=s3
LOG_SOURCE ?= cloudwatch
demo: $(STAMP) templates
	$(BIN)/python -m local_aws.demo --out out --log-source $(LOG_SOURCE)

## The email templates' Python and its bytecode, generated ahead of time (templates/compiled/; a template changed since
## is compiled at first use instead). The zip gets its own from `make package`.
templates: $(STAMP)
	$(BIN)/python -c 'from lambda_function.report.mail import compile_templates; compile_templates()'

## Render the demo's email in headless Chromium to docs/email-preview.png (needs Debian's chromium).
email-preview: $(STAMP)
	@ls out/*.html >/dev/null 2>&1 || $(MAKE) demo
	$(BIN)/python -m local_aws.preview --png docs/email-preview.png

## Run the whole test suite offline, on every CPU (at most 4; TEST_WORKERS=0 runs it in one process).
## Hypothesis runs a tenth of its examples unless HYPOTHESIS_PROFILE=ci (as .ci/run sets).
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy lambda_function
	$(BIN)/pytest -q -n $(TEST_WORKERS)

## Rebuild pricing/token_prices.csv from the AWS Price List API (needs AWS credentials; prints what changed).
pricing-refresh: $(STAMP)
	$(BIN)/python -m pricing.refresh

## Price every Bedrock text/embedding entry of LiteLLM's price file through the CLI and list the differences:
## make pricing-crosscheck LITELLM=/tmp/litellm.json (see pricing/README.md for how to get the file).
pricing-crosscheck: $(STAMP)
	$(BIN)/python -m pricing.crosscheck $(LITELLM)

## Benchmarks: 1k/10k/50k/100k groups a day, the CLI's CPU and memory in its own process, and the naive way beside
## it; then LOG_SOURCE=s3: 100k records a day of S3-delivered logs through the embedded engine, DuckDB's read_json
## beside it, and what Athena would scan and bill (figures in README). BENCH_S3_FLAGS=--million adds 1M a day.
BENCH_S3_FLAGS ?=
bench: $(STAMP) templates
	$(BIN)/python -m bench.bench_scale
	$(BIN)/python -m bench.bench_s3_logs $(BENCH_S3_FLAGS)

## Where each price row comes from, per provider and region; stale and unconfirmed rows (pricing/README.md).
pricing-audit: $(STAMP)
	$(BIN)/python -m pricing.audit

## Regenerate README.md's list of priced models from pricing/*.csv.
pricing-docs: $(STAMP)
	$(BIN)/python -m pricing.models_doc

## The Lambda deployment zip (python3.12, arm64) in dist/.
package: $(STAMP)
	$(BIN)/python scripts/package.py

## Package, upload and deploy the stack with the AWS CLI (settings: see docs/deploy.md).
deploy: package
	scripts/deploy.sh

## Run a manual window on the deployed function: make invoke EVENT='{"date": "2026-11-20"}'
invoke:
	scripts/stack.sh invoke

## Fetch CSVs from the deployed stack's bucket: make download DATE=2026-11-20, or FROM=2026-11-01 TO=2026-11-30
download:
	scripts/stack.sh download

## checkov in its own virtualenv (its pins clash with moto's).
CHECKOV_VENV := .venv-checkov
$(CHECKOV_VENV)/bin/checkov:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)

checkov: $(CHECKOV_VENV)/bin/checkov
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f cloudformation/template.yaml

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy lambda_function

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) out build dist .cache .pytest_cache .ruff_cache .mypy_cache
