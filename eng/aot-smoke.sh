#!/usr/bin/env bash
# Publishes samples/AotSmoke and runs the published binary: NativeAOT by default, or self-contained and trimmed
# (JIT) with --trimmed. Not part of `dotnet test`: a publish takes one to three minutes. See samples/AotSmoke/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=aot
if [[ "${1:-}" == "--trimmed" ]]; then
  mode=trimmed
fi

out="artifacts/aot-smoke/$mode"
properties=()
if [[ "$mode" == trimmed ]]; then
  properties+=(-p:AotSmokeTrimmedOnly=true)
fi

rid="$(dotnet --info | sed -n 's/^ *RID: *//p' | head -n 1)"
dotnet publish samples/AotSmoke/AotSmoke.csproj -c Release -r "$rid" -o "$out" "${properties[@]}"
"$out/AotSmoke"
