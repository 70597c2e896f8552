#!/bin/sh
# Builds the Java example client with Debian's toolchain only (no Maven or Gradle): protoc and the grpc-java plugin
# generate the stubs from protos/ into a temporary directory, javac compiles them with the client against the jars
# in /usr/share/java. See docs/clients.md for the packages.
#
#   examples/clients/java/build.sh [OUT_DIR]        # default OUT_DIR: examples/clients/java/build
#   java -cp "$(cat OUT_DIR/classpath)" VerdictExample dns:///127.0.0.1:50051 ~/.local/share/verdict/admin.token
#
# Environment: PYTHON (default python3) finds google/rpc/*.proto in the googleapis-common-protos package when the
# installed proto-google-common-protos jar predates google.rpc.ErrorInfo; JARS (default /usr/share/java);
# GRPC_JAVA_PLUGIN (default: grpc_java_plugin on PATH, or protoc-gen-grpc-java).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
OUT=${1:-$HERE/build}
JARS=${JARS:-/usr/share/java}
PYTHON=${PYTHON:-python3}
PLUGIN=${GRPC_JAVA_PLUGIN:-$(command -v grpc_java_plugin || command -v protoc-gen-grpc-java || true)}

if [ -z "$PLUGIN" ]; then
  echo "build.sh: the grpc-java protoc plugin is missing (apt-get install protobuf-compiler-grpc-java-plugin)" >&2
  exit 1
fi

# What a grpc-java client needs at compile and run time (Debian's libgrpc-java and the libraries it is built on).
CLASSPATH_JARS="grpc-api grpc-core grpc-context grpc-stub grpc-protobuf grpc-protobuf-lite grpc-netty protobuf
guava failureaccess perfmark-api gson animal-sniffer-annotations error_prone_annotations jsr305
geronimo-annotation-1.3-spec netty-buffer netty-codec netty-codec-http netty-codec-http2 netty-common netty-handler
netty-resolver netty-transport netty-transport-native-unix-common"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/java" "$TMP/proto/google/rpc"

classpath=""
for jar in $CLASSPATH_JARS; do
  if [ -f "$JARS/$jar.jar" ]; then
    classpath="$classpath:$JARS/$jar.jar"
  elif [ "$jar" != failureaccess ]; then # Debian's guava includes failureaccess; Maven's does not
    echo "build.sh: $JARS/$jar.jar is missing (see docs/clients.md for the Debian packages)" >&2
    exit 1
  fi
done

# google.rpc.Status and its details (ErrorInfo, BadRequest, RetryInfo): from the jar when it has ErrorInfo (added in
# common-protos 1.18; Debian 12 ships 1.16), else generated from the .proto files of googleapis-common-protos.
COMMON="$JARS/proto-google-common-protos.jar"
if [ -f "$COMMON" ] && unzip -l "$COMMON" 2>/dev/null | grep -q 'com/google/rpc/ErrorInfo.class'; then
  classpath="$classpath:$COMMON"
  rpc_protos=""
else
  rpc_dir=$("$PYTHON" -c 'import os, google.rpc.status_pb2 as s; print(os.path.dirname(s.__file__))') || {
    echo "build.sh: need google/rpc/status.proto: pip install googleapis-common-protos (or set PYTHON)" >&2
    exit 1
  }
  cp "$rpc_dir/status.proto" "$rpc_dir/error_details.proto" "$TMP/proto/google/rpc/"
  rpc_protos="$TMP/proto/google/rpc/status.proto $TMP/proto/google/rpc/error_details.proto"
fi
classpath=${classpath#:}

# shellcheck disable=SC2086  # rpc_protos is a list of paths without spaces (mktemp)
protoc -I "$ROOT/protos" -I "$TMP/proto" \
  --plugin=protoc-gen-grpc-java="$PLUGIN" \
  --java_out="$TMP/java" --grpc-java_out="$TMP/java" \
  "$ROOT"/protos/verdict/v1/*.proto $rpc_protos

mkdir -p "$OUT/classes"
find "$TMP/java" "$HERE/src" -name '*.java' > "$TMP/sources"
javac -nowarn -encoding UTF-8 -d "$OUT/classes" -cp "$classpath" @"$TMP/sources"
echo "$OUT/classes:$classpath" > "$OUT/classpath"
echo "built $OUT/classes; run: java -cp \"\$(cat $OUT/classpath)\" VerdictExample TARGET TOKEN_FILE"
