#!/usr/bin/env bash
# Builds what Terraform deploys, for arm64, at the paths it reads:
#
#   target/lambda/ingest/bootstrap.zip   the ingestion API (ingest_package_path)
#   target/lambda/etl/bootstrap.zip      the job's Lambda, with the saved queries in sql/ (etl_package_path)
#   target/lambda/bus/bootstrap.zip      the bus fan-out and Kafka bridge (bus_package_path)
#   target/image/etl/                    the etl Fargate image, an OCI image layout, and
#   target/image/etl.tar                 the same as one archive (docker load / podman load)
#
#   terraform/artifacts/build.sh [ingest] [etl] [bus] [image]    # all four when none is named
#
# The binaries are static (aarch64-unknown-linux-musl, linked with zig), stripped, and checked
# (an aarch64 ELF named bootstrap in each zip; the image's digests, platform and entrypoint).
# Installs what it needs when it is missing: the Rust target through rustup, zig and
# cargo-zigbuild from PyPI. No container daemon is needed. The image's tag is ETL_IMAGE_TAG, else
# the commit (with -dirty for uncommitted changes); push it with the tag that `etl_image_tag` names,
# see terraform/envs/poc/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

target=aarch64-unknown-linux-musl
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(ingest etl bus image)
for p in "${parts[@]}"; do
  case "$p" in
  ingest | etl | bus | image) ;;
  *)
    echo "error: unknown artifact '$p' (ingest, etl, bus, image)" >&2
    exit 2
    ;;
  esac
done

if ! rustup target list --installed | grep -qx "$target"; then
  echo "installing the Rust standard library for $target" >&2
  rustup target add "$target" >&2
fi
python3 -c 'import ziglang' 2>/dev/null || python3 -m pip install --quiet 'ziglang==0.13.0' >&2
command -v cargo-zigbuild >/dev/null || python3 -m pip install --quiet 'cargo-zigbuild==0.24.1' >&2

# librdkafka (the bus) is built by its own configure and make, which read CC, CXX and AR rather than
# the per-target variables: point them at zig for the target, and keep the host's compiler for
# build scripts.
tools=target/zig-cross
mkdir -p "$tools"
# (zig's linker refuses librdkafka's version script, which names a symbol only test builds
# define, unless told to let it pass.)
for lang in cc c++; do
  cat >"$tools/$lang" <<SH
#!/bin/sh
for a in "\$@"; do
  [ "\$a" = -shared ] && exec python3 -m ziglang $lang -target aarch64-linux-musl "\$@" -Wl,--undefined-version
done
exec python3 -m ziglang $lang -target aarch64-linux-musl "\$@"
SH
done
printf '#!/bin/sh\nexec python3 -m ziglang ar "$@"\n' >"$tools/ar"
chmod +x "$tools/cc" "$tools/c++" "$tools/ar"

# libdeflate (the job's gzip decoder) picks its arm64 CRC code by what the compiler says it
# supports; zig's clang accepts the sha3 variant's eor3 intrinsic and then fails to compile it.
# Without it, libdeflate uses its pmull and crc variants, which run on every Graviton.
export CFLAGS_aarch64_unknown_linux_musl="-DLIBDEFLATE_ASSEMBLER_DOES_NOT_SUPPORT_SHA3"
build() { # package binary [VAR=value ...]
  local package=$1 binary=$2
  shift 2
  echo "building $binary for $target" >&2
  env "$@" cargo zigbuild --release --locked --target "$target" -p "$package" --bin "$binary" >&2
}

bin=${CARGO_TARGET_DIR:-target}/$target/release
outputs=()
for p in "${parts[@]}"; do
  case "$p" in
  ingest)
    build eventlake-ingest ingest
    python3 terraform/artifacts/package.py lambda --bin "$bin/ingest" --out target/lambda/ingest/bootstrap.zip
    outputs+=(target/lambda/ingest/bootstrap.zip)
    ;;
  etl)
    build eventlake-etl etl
    python3 terraform/artifacts/package.py lambda --bin "$bin/etl" --dir sql=sql --out target/lambda/etl/bootstrap.zip
    outputs+=(target/lambda/etl/bootstrap.zip)
    ;;
  bus)
    host=$(rustc -vV | sed -n 's/^host: //p')
    build eventlake-bus bus-lambda CC="$PWD/$tools/cc" CXX="$PWD/$tools/c++" AR="$PWD/$tools/ar" \
      HOST_CC=cc HOST_CXX=c++ "CC_${host//-/_}=cc" "CXX_${host//-/_}=c++"
    python3 terraform/artifacts/package.py lambda --bin "$bin/bus-lambda" --out target/lambda/bus/bootstrap.zip
    outputs+=(target/lambda/bus/bootstrap.zip)
    ;;
  image)
    build eventlake-etl etl
    tag=${ETL_IMAGE_TAG:-$(git describe --always --dirty --abbrev=12 2>/dev/null || echo dev)}
    ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
    [ -f "$ca" ] || ca=/etc/ssl/cert.pem
    python3 terraform/artifacts/package.py image --bin "$bin/etl" --sql sql --ca "$ca" --tag "$tag" --out target/image/etl
    echo "image tag: $tag" >&2
    outputs+=(target/image/etl)
    ;;
  esac
done
python3 terraform/artifacts/package.py check "${outputs[@]}"
