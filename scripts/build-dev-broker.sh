#!/usr/bin/env bash
# Builds and caches meterline-dev-broker: librdkafka's in-memory mock Kafka cluster wrapped
# by native/dev-broker/mock_cluster.c. NOT FOR PRODUCTION (no durability, no auth).
#
# Output contract: stdout carries exactly one line, the absolute path of the binary;
# all progress and errors go to stderr. Exit status is non-zero on any failure.
#
# Idempotent: the binary lives at .cache/dev-broker/<tag>/meterline-dev-broker, where <tag>
# hashes mock_cluster.c and this script (which holds the librdkafka version and the patch),
# so changing either yields a new path and a rebuild; an existing binary is reused as is.
# Concurrent callers serialize on a flock; the loser of the race finds the binary built.
#
# Usage: scripts/build-dev-broker.sh [--print-path] [--force]
#   --print-path  print where the binary belongs (built or not) and exit
#   --force       rebuild even if the binary exists
set -euo pipefail

readonly NPM_SPEC='@confluentinc/kafka-javascript@1.10.1'
readonly LIBRDKAFKA_VERSION='2.15.1'
readonly LIBRDKAFKA_VERSION_HEX='0x020f01ff' # RD_KAFKA_VERSION of 2.15.1 in src/rdkafka.h
# Per-partition retention of the mock (stock: 5 MiB and 100,000 message sets). Past these the
# mock drops the oldest data silently, which would corrupt replays and benchmarks.
readonly RETENTION_MAX_BYTES='(size_t)1024 * 1024 * 1024' # 1 GiB
readonly RETENTION_MAX_MSGSETS='20000000'

log() { printf 'build-dev-broker: %s\n' "$*" >&2; }
fail() { log "ERROR: $*"; exit 1; }

print_path_only=0
force=0
for arg in "$@"; do
  case "$arg" in
    --print-path) print_path_only=1 ;;
    --force) force=1 ;;
    -h|--help) sed -n '2,15p' "$0" >&2; exit 0 ;;
    *) fail "unknown argument: $arg" ;;
  esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src_c="$root/native/dev-broker/mock_cluster.c"
[[ -f "$src_c" ]] || fail "missing $src_c"

hash="$(cat "$src_c" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)"
tag="librdkafka-${LIBRDKAFKA_VERSION}-${hash}"
cache_dir="$root/.cache/dev-broker"
dest_dir="$cache_dir/$tag"
dest="$dest_dir/meterline-dev-broker"

if (( print_path_only )); then echo "$dest"; exit 0; fi
if (( !force )) && [[ -x "$dest" ]]; then echo "$dest"; exit 0; fi

# --- prerequisites -------------------------------------------------------------------------
missing=()
for tool in gcc make tar npm sha256sum flock; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if (( ${#missing[@]} )); then
  fail "missing tools: ${missing[*]}. On Debian/Ubuntu: apt-get install gcc make zlib1g-dev tar util-linux coreutils (npm comes with Node.js)"
fi
if ! printf '#include <zlib.h>\n' | gcc -E -x c - >/dev/null 2>&1; then
  fail "zlib headers not found. On Debian/Ubuntu: apt-get install zlib1g-dev"
fi

# --- lock ----------------------------------------------------------------------------------
mkdir -p "$cache_dir"
exec 9>"$cache_dir/.build.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it (up to 15 min)"
  flock -w 900 9 || fail "timed out waiting for $cache_dir/.build.lock"
fi
if (( !force )) && [[ -x "$dest" ]]; then echo "$dest"; exit 0; fi

start_s=$SECONDS
# Builds only happen under the lock, so any build dir left now is from a killed build.
rm -rf "$cache_dir"/build.*
work="$(mktemp -d "$cache_dir/build.XXXXXX")"
tmp_bin="$dest_dir/.meterline-dev-broker.$$"
trap 'rm -rf "$work" "$tmp_bin"' EXIT
trap 'exit 130' INT TERM HUP # run the EXIT trap when interrupted too

# --- fetch librdkafka source (npm tarball; no install scripts run) -------------------------
log "fetching librdkafka $LIBRDKAFKA_VERSION source from npm package $NPM_SPEC"
tgz_name="$(cd "$work" && npm pack "$NPM_SPEC" --silent --pack-destination "$work" | tail -n 1)"
[[ -f "$work/$tgz_name" ]] || fail "npm pack $NPM_SPEC produced no tarball"
tar -xzf "$work/$tgz_name" -C "$work" package/deps/librdkafka \
  || fail "tarball has no package/deps/librdkafka"
rdk="$work/package/deps/librdkafka"
grep -q "#define RD_KAFKA_VERSION ${LIBRDKAFKA_VERSION_HEX}" "$rdk/src/rdkafka.h" \
  || fail "librdkafka in $NPM_SPEC is not $LIBRDKAFKA_VERSION"

# --- patch the mock --------------------------------------------------------------------------
# apply_patch FILE WHAT MATCH_ERE SED_SCRIPT MARKER: MATCH_ERE must match exactly one line of
# FILE before, and the fixed string MARKER (absent from stock sources) must appear after;
# anything else fails the build, so a librdkafka upgrade that moves the code cannot silently
# ship an unpatched broker.
apply_patch() {
  local file="$1" what="$2" match="$3" script="$4" marker="$5" n
  n="$(grep -cE -- "$match" "$file" || true)"
  [[ "$n" == 1 ]] || fail "patch '$what': expected 1 line matching /$match/ in ${file##*/}, found $n"
  sed -E -i -e "$script" "$file"
  grep -qF -- "$marker" "$file" || fail "patch '$what' did not apply to ${file##*/}"
  log "patched: $what"
}
mock_c="$rdk/src/rdkafka_mock.c"
apply_patch "$mock_c" "retention bytes = ${RETENTION_MAX_BYTES}" \
  'mpart->max_size[[:space:]]*=[[:space:]]*1024 \* 1024 \* 5;' \
  "s/(mpart->max_size[[:space:]]*=[[:space:]]*)1024 \\* 1024 \\* 5;/\\1${RETENTION_MAX_BYTES};/" \
  "mpart->max_size = ${RETENTION_MAX_BYTES};"
apply_patch "$mock_c" "retention message sets = ${RETENTION_MAX_MSGSETS}" \
  'mpart->max_cnt[[:space:]]*=[[:space:]]*100000;' \
  "s/(mpart->max_cnt[[:space:]]*=[[:space:]]*)100000;/\\1${RETENTION_MAX_MSGSETS};/" \
  "${RETENTION_MAX_MSGSETS};"
# Stock mock: when a group's last member leaves (or times out) the group enters Joining with a
# (session.timeout.ms - 1000) timer, and a member joining meanwhile waits it out, so every
# consumer restart costs ~5 s. With the patch the emptied group is Empty at once and the next
# join is a first join (group.initial.rebalance.delay.ms, set to 0 by mock_cluster.c).
apply_patch "$rdk/src/rdkafka_mock_cgrp.c" "emptied consumer group becomes Empty at once" \
  '^        if \(mcgrp->state == RD_KAFKA_MOCK_CGRP_STATE_JOINING\)$' \
  '/^        if \(mcgrp->state == RD_KAFKA_MOCK_CGRP_STATE_JOINING\)$/i\
        /* meterline patch: emptied group is Empty at once. */\
        if (mcgrp->member_cnt == 0) {\
                rd_kafka_mock_cgrp_classic_set_state(\
                    mcgrp, RD_KAFKA_MOCK_CGRP_STATE_EMPTY, reason);\
                return;\
        }' \
  '/* meterline patch: emptied group is Empty at once. */'
# Stock mock: a SyncGroup round completes as soon as the leader's SyncGroup has set every
# member's assignment; a follower whose SyncGroup arrives after that (a busy process, a slow
# follower) finds the group Up and gets INVALID_REQUEST, which crashes kafkajs' consumer for
# good (real Kafka answers it with the assignment). With the patch the round completes when every
# member has sent its SyncGroup, as on a real broker.
apply_patch "$rdk/src/rdkafka_mock_cgrp.c" "SyncGroup completes once every member has sent it" \
  '^        if \(mcgrp->assignment_cnt < mcgrp->member_cnt\)$' \
  '/^        if \(mcgrp->assignment_cnt < mcgrp->member_cnt\)$/i\
        /* meterline patch: wait for every member SyncGroup. */\
        {\
                rd_kafka_mock_cgrp_classic_member_t *m;\
                TAILQ_FOREACH(m, \&mcgrp->members, link) {\
                        if (!m->resp)\
                                return;\
                }\
        }' \
  '/* meterline patch: wait for every member SyncGroup. */'

# Stock mock: a fetch returns one message set (one producer batch) per partition, whatever
# the fetch's per-partition byte limit ("FIXME: Multiple messageSets ?"). Real Kafka returns the
# record batches that fit in it, so a consumer that fell behind catches up in big fetches; on the
# stock mock it catches up one producer batch at a time. With the patch a fetch returns the
# consecutive message sets that fit in PartMaxBytes and in the request's MaxBytes (the first one
# always, as Kafka does), concatenated in one Records field.
apply_patch "$rdk/src/rdkafka_mock_handlers.c" "a fetch returns every whole message set that fits" \
  '^                        if \(mset && partsize < \(size_t\)PartMaxBytes &&$' \
  '/^                        if \(mset \&\& partsize < \(size_t\)PartMaxBytes \&\&$/i\
                        /* meterline patch: every whole message set that fits. */\
                        if (mset \&\& partsize < (size_t)PartMaxBytes \&\&\
                            totsize < (size_t)MaxBytes) {\
                                const rd_kafka_mock_msgset_t *m = mset, *last = mset;\
                                size_t len = (size_t)mset->bytes.len, written;\
                                while ((m = TAILQ_NEXT(m, link)) \&\&\
                                       len + (size_t)m->bytes.len <= (size_t)PartMaxBytes \&\&\
                                       totsize + len + (size_t)m->bytes.len <= (size_t)MaxBytes) {\
                                        len += (size_t)m->bytes.len;\
                                        last = m;\
                                }\
                                if (resp->rkbuf_flags \& RD_KAFKA_OP_F_FLEXVER)\
                                        written = rd_kafka_buf_write_uvarint(resp, (uint64_t)len + 1);\
                                else {\
                                        rd_kafka_buf_write_i32(resp, (int32_t)len);\
                                        written = 4;\
                                }\
                                for (m = mset;; m = TAILQ_NEXT(m, link)) {\
                                        rd_kafka_buf_write(resp, m->bytes.data, (size_t)m->bytes.len);\
                                        if (m == last)\
                                                break;\
                                }\
                                written += len;\
                                partsize += written;\
                                totsize += written;\
                        } else' \
  '/* meterline patch: every whole message set that fits. */'

# --- build librdkafka.a --------------------------------------------------------------------
jobs="$(nproc 2>/dev/null || echo 2)"
# Logs live outside the source dir: mklove's configure breaks ("Module log not found") when
# its output goes to a file named configure.* inside the source directory.
log "configuring librdkafka"
(cd "$rdk" && ./configure --disable-ssl --disable-gssapi --disable-curl --disable-zstd \
  --disable-lz4-ext >"$work/rdk-configure.log" 2>&1) \
  || { tail -n 40 "$work/rdk-configure.log" >&2; fail "librdkafka configure failed"; }
log "compiling librdkafka.a with -j$jobs"
make -C "$rdk/src" librdkafka.a -j"$jobs" >"$work/rdk-make.log" 2>&1 \
  || { tail -n 40 "$work/rdk-make.log" >&2; fail "librdkafka make failed"; }

# --- build the broker ----------------------------------------------------------------------
log "linking meterline-dev-broker"
mkdir -p "$dest_dir"
gcc -O2 -Wall -Wextra -std=gnu11 -isystem "$rdk/src" "$src_c" "$rdk/src/librdkafka.a" \
  -lz -lpthread -lm -ldl -lrt -o "$tmp_bin" \
  || fail "compiling $src_c failed"
"$tmp_bin" --help >/dev/null || fail "built binary does not run"
# Atomic publish: other workers test -x "$dest" without the lock.
mv -f "$tmp_bin" "$dest"
cat >"$dest_dir/BUILD-INFO" <<EOF
meterline-dev-broker (NOT FOR PRODUCTION)
librdkafka: $LIBRDKAFKA_VERSION from $NPM_SPEC
patches: retention max_size=$RETENTION_MAX_BYTES max_cnt=$RETENTION_MAX_MSGSETS; emptied group -> Empty; SyncGroup waits for every member; fetch returns every message set that fits
source hash: $hash
built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - start_s)) s on $(uname -sm)
EOF
log "built in $((SECONDS - start_s)) s: $dest"
echo "$dest"
