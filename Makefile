# synthgate — two commands: `make run` (set up, migrate, first admin, serve) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test
export SYNTHGATE_DATA_DIR ?= $(CURDIR)/data

.PHONY: run test test-sqlite test-postgres lint env system-deps bench bench-env lock clean schema bench-watermark

run: env
	$(BIN)/synthgate init
	$(BIN)/synthgate serve

test: env system-deps test-sqlite test-postgres

test-sqlite: env
	@echo "== test suite on SQLite =="
	env -u SYNTHGATE_DATABASE_URL -u SYNTHGATE_DATA_DIR $(BIN)/pytest -p no:cacheprovider

test-postgres: env
	@echo "== test suite on PostgreSQL ($(PG_TEST_URL)) =="
	env -u SYNTHGATE_DATA_DIR SYNTHGATE_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -p no:cacheprovider

lint: env
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

env: $(VENV)/.installed

# The environment is built from the lock file (hashes checked); re-synced when it changes.
$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync -q --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

# Debian packages the tests use (no browser or tool downloads of their own): chromium for the
# console's browser tests, ExifTool and ffmpeg as third-party label readers, a CJK font so
# Chinese renders in browser screenshots.
SYSTEM_PACKAGES := chromium libimage-exiftool-perl ffmpeg fonts-wqy-microhei espeak-ng openssl
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages for the tests:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "the tests need Debian packages:$$missing (sudo apt-get install$$missing)" >&2; exit 1; \
	  fi; \
	fi

lock:
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 --generate-hashes \
	  --find-links /opt/wheels --emit-find-links -o requirements.lock

bench-env:
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install -q --require-hashes -r bench/requirements-litellm.txt

bench: env bench-env
	$(BIN)/python bench/gateway_overhead.py --database sqlite
	$(BIN)/python bench/gateway_overhead.py --database postgres

clean:
	rm -rf $(VENV) .venv-bench .pytest_cache .mypy_cache .ruff_cache

# Until the first release the schema is one migration, regenerated from the models; after the
# first release every change gets its own revision (alembic revision --autogenerate).
schema: env
	rm -f src/synthgate/migrations/versions/0001_initial_schema.py
	rm -rf /tmp/synthgate-schema && mkdir -p /tmp/synthgate-schema
	SYNTHGATE_DATA_DIR=/tmp/synthgate-schema SYNTHGATE_DATABASE_URL= $(BIN)/python -c "from alembic import command; \
	from synthgate.config import Settings; from synthgate.db import alembic_config; \
	command.revision(alembic_config(Settings()), message='initial schema', autogenerate=True, rev_id='0001')"
	$(BIN)/ruff format -q src/synthgate/migrations
	$(BIN)/ruff check -q --fix src/synthgate/migrations || true

# Invisible watermark vs. invisible-watermark (dwtDct, dwtDctSvd, rivaGan). The peer is installed without
# its declared torch dependency (several GB with CUDA; the bench gives it a numpy stand-in for the few
# array calls it makes around its shipped ONNX models).
bench-watermark: env
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps "invisible-watermark>=0.2"
	OMP_NUM_THREADS=1 $(BIN)/python bench/watermark_robustness.py --write-docs

# Audio watermark on espeak-ng speech, attacks through ffmpeg, PESQ from the `pesq` package.
.PHONY: bench-watermark-audio
bench-watermark-audio: env
	OMP_NUM_THREADS=1 $(BIN)/python bench/watermark_audio.py --write-docs
