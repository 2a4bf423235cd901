#!/usr/bin/env bash
# Regenerates Sources/AssayOTLP/Generated/*.pb.swift from schemas/otlp/**/*.proto with protoc and
# swift-protobuf's protoc-gen-swift, at the swift-protobuf version pinned in Package.resolved
# (the generated code must match the SwiftProtobuf runtime it is compiled against).
#
# The generated files are committed: builds and CI never run this script or the SwiftPM build
# plugin (building the plugin takes minutes). Run it (`make proto`) after changing a .proto file.
#
#   scripts/generate-otlp-protos.sh           regenerate in place
#   scripts/generate-otlp-protos.sh --check   regenerate into a temporary directory and fail if
#                                              the committed files differ
#
# Environment:
#   PROTOC_GEN_SWIFT   path to an existing protoc-gen-swift (skips the build)
#   SWIFT_PROTOBUF_VERSION   overrides the version read from Package.resolved
#   ASSAY_TOOLS_CACHE  where the plugin is built (default: ${XDG_CACHE_HOME:-$HOME/.cache}/assay)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

check=false
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

proto_root=schemas/otlp
out=Sources/AssayOTLP/Generated

# protoc, from Debian's protobuf-compiler.
if ! command -v protoc >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
  echo "generate-otlp-protos: installing protobuf-compiler" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends protobuf-compiler
fi

# The swift-protobuf version the package resolves to.
version="${SWIFT_PROTOBUF_VERSION:-}"
if [ -z "$version" ] && [ -f Package.resolved ]; then
  version=$(python3 -c 'import json,sys
pins = json.load(open("Package.resolved")).get("pins", [])
print(next((p["state"].get("version", "") for p in pins if p.get("identity") == "swift-protobuf"), ""))')
fi
version="${version:-1.39.0}"

# protoc-gen-swift, built once per version.
plugin="${PROTOC_GEN_SWIFT:-}"
if [ -z "$plugin" ]; then
  cache="${ASSAY_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/assay}"
  src="$cache/swift-protobuf-$version"
  plugin="$src/.build/release/protoc-gen-swift"
  if [ ! -x "$plugin" ]; then
    mkdir -p "$cache"
    if [ ! -d "$src/.git" ]; then
      git clone --quiet https://github.com/apple/swift-protobuf.git "$src"
    fi
    git -C "$src" checkout --quiet "$version"
    echo "generate-otlp-protos: building protoc-gen-swift $version (takes a few minutes, once)" >&2
    (cd "$src" && swift build -c release --product protoc-gen-swift)
  fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
protos=$(cd "$proto_root" && find . -name '*.proto' | sed 's|^\./||' | sort)
# shellcheck disable=SC2086
(cd "$proto_root" && protoc \
  --plugin=protoc-gen-swift="$(cd - >/dev/null && realpath "$plugin")" \
  --swift_opt=Visibility=Internal \
  --swift_opt=FileNaming=DropPath \
  --swift_opt=UseAccessLevelOnImports=true \
  --swift_out="$tmp" \
  $protos)

if $check; then
  if diff -ru "$out" "$tmp" >/dev/null 2>&1; then
    echo "generate-otlp-protos: $out is up to date (swift-protobuf $version)"
    exit 0
  fi
  diff -ru "$out" "$tmp" | head -40 >&2 || true
  echo "generate-otlp-protos: $out is stale; run make proto" >&2
  exit 1
fi

mkdir -p "$out"
rm -f "$out"/*.pb.swift
cp "$tmp"/*.pb.swift "$out"/
echo "generate-otlp-protos: wrote $(ls "$out"/*.pb.swift | wc -l) files to $out (swift-protobuf $version)"
