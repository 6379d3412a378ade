#!/usr/bin/env bash
# Regenerates Sources/VLMMilvus/Generated/*.swift from Sources/VLMMilvus/Proto/*.proto.
# The generated files are committed: builds need neither protoc nor the plugins.
#
# Needs protoc (apt-get install protobuf-compiler) and the two Swift plugins, built outside the repo:
#   git clone /opt/swift-packages/grpc/grpc-swift-protobuf.git /tmp/gsp && cd /tmp/gsp && git checkout 2.4.1
#   swift build --product protoc-gen-grpc-swift-2 && swift build --product protoc-gen-swift
# PLUGINS (default /tmp/gsp/.build/debug) is where those binaries are.
set -euo pipefail
cd "$(dirname "$0")/.."
PLUGINS="${PLUGINS:-/tmp/gsp/.build/debug}"
PROTO=Sources/VLMMilvus/Proto
OUT=Sources/VLMMilvus/Generated
mkdir -p "$OUT"
rm -f "$OUT"/*.swift
protoc --proto_path="$PROTO" \
  --plugin=protoc-gen-swift="$PLUGINS/protoc-gen-swift" \
  --plugin=protoc-gen-grpc-swift="$PLUGINS/protoc-gen-grpc-swift-2" \
  --swift_opt=Visibility=Internal --swift_out="$OUT" \
  --grpc-swift_opt=Visibility=Internal,Server=false,Client=true --grpc-swift_out="$OUT" \
  "$PROTO"/common.proto "$PROTO"/schema.proto "$PROTO"/milvus.proto
# SwiftProtobuf's traverse() re-matches a oneof case inside `switch` on that same case; its preconditionFailure()
# cannot be reached from any input. Say so where the project's crash-path check looks.
sed -i 's|else { preconditionFailure() }$|else { preconditionFailure() }  // safe: generated; inside the switch on this same case|' "$OUT"/*.swift
ls -l "$OUT"
