#!/usr/bin/env bash
# Builds a function as AWS runs it, `cargo lambda build --release` (zig
# cross-compiling for provided.al2023), and checks the binary it makes: an
# x86-64 ELF named bootstrap that links no libssl/libcrypto (OpenSSL is built
# into librdkafka, rdkafka's ssl-vendored) and needs no glibc newer than
# Amazon Linux 2023's 2.34. Run by CI for the consumer, the function with the
# most native code (librdkafka, OpenSSL).
#
# Usage: scripts/lambda-build.sh [FUNCTION]   (default: consumer)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
fn="${1:-consumer}"
die() { echo "lambda-build: ERROR: $*" >&2; exit 1; }

t0="$(now)"
cargo lambda build --release --locked --bin "$fn"
bin="${CARGO_TARGET_DIR:?}/lambda/$fn/bootstrap"
[[ -x $bin ]] || die "$bin was not built"

kind="$(file -b "$bin")"
[[ $kind == *"ELF 64-bit"*"x86-64"* ]] || die "$bin is not an x86-64 ELF: $kind"
needed="$(readelf -d "$bin" | awk '/NEEDED/ {print $NF}' | tr -d '[]' | tr '\n' ' ')"
[[ $needed != *libssl* && $needed != *libcrypto* ]] || die "$bin links a system OpenSSL: $needed"
glibc="$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)"
[[ "$(printf '%s\n2.34\n' "$glibc" | sort -V | tail -1)" == 2.34 ]] ||
  die "$bin needs glibc $glibc; provided.al2023 has 2.34"
echo "lambda-build: $fn -> $bin ($(du -h "$bin" | cut -f1), needs: $needed; glibc ≤ $glibc) in $(since "$t0")s"
