# Included at the end of llama.cpp's project() call when llama-cpp-python builds it
# (the Makefile passes CMAKE_ARGS=-DCMAKE_PROJECT_llama.cpp_INCLUDE=<this file>).
# llama-cpp-python forces LLAMA_BUILD_COMMON on, but ragmini loads only libllama
# and libggml: this plain variable hides that cache entry, so llama.cpp's common/
# library and the HTTP library only it uses are neither built nor installed.
# Measured on 2 cores: about half of the build (docs/answers-llm.md).
set(LLAMA_BUILD_COMMON OFF)
