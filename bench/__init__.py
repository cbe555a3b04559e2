"""ragmini's benchmark suite: run each script as `python -m bench.NAME` from the repo root
(or `make bench-NAME`); bench/README.md lists them with their latest figures."""
