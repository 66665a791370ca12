#!/usr/bin/env bash
# Benchmarks `brief send` against Postfix's smtp-source, both into one smtp-sink on 127.0.0.1.
#
# Two messages: the example issue content/2021-07 as it is (about 22 KB), and with its entries
# twice (about 33 KB, a long monthly issue). For each, interleaved, BENCH_RUNS times: smtp-source
# (brief's own message for that issue as its message, so the bytes match) and `brief send --yes`
# (a fresh data folder and ledger each run), both on BENCH_CONCURRENCY connections and on one;
# then brief RSA-2048-signed and Ed25519-signed on BENCH_CONCURRENCY connections. Then brief with
# the large list (the long message) for peak memory. Prints messages/s, CPU microseconds per
# message (user + sys of the sender, from /usr/bin/time) and peak RSS, each as the median of its
# runs, with brief's ratios to smtp-source at the same connection count. Everything stays on
# loopback; the sink is stopped on exit. Knobs: BENCH_RECIPIENTS (20000), BENCH_RECIPIENTS_BIG
# (100000), BENCH_CONCURRENCY (16), BENCH_RUNS (3), BENCH_PORT (2530), BENCH_SKIP_BUILD (unset).
# With --write, the dated figures also replace those between the bench markers of
# docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
ROOT=$(pwd)

N=${BENCH_RECIPIENTS:-20000}
BIG=${BENCH_RECIPIENTS_BIG:-100000}
CONC=${BENCH_CONCURRENCY:-16}
RUNS=${BENCH_RUNS:-3}
PORT=${BENCH_PORT:-2530}
WRITE=0
case "${1:-}" in
  --write) WRITE=1 ;;
  "") ;;
  *) echo "usage: scripts/bench.sh [--write]" >&2; exit 2 ;;
esac
export PATH="$PATH:/usr/sbin"

# --- tools -------------------------------------------------------------------------------------
need=()
command -v smtp-sink >/dev/null 2>&1 || need+=(postfix)
[ -x /usr/bin/time ] || need+=(time)
install_debs "${need[@]}"

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  echo "building brief (release)..."
  cargo build --release --quiet --bin brief
fi
BRIEF="${CARGO_TARGET_DIR:-$ROOT/target}/release/brief"
[ -x "$BRIEF" ] || { echo "error: no $BRIEF: build it with cargo build --release" >&2; exit 2; }

# --- the sink ----------------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/brief-bench.XXXXXX)
SINK_PID=""
cleanup() {
  if [ -n "$SINK_PID" ]; then
    kill "$SINK_PID" 2>/dev/null || true
    wait "$SINK_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "error: something already listens on 127.0.0.1:$PORT: set BENCH_PORT to a free port" >&2
  exit 2
fi
as_user=()
[ "$(id -u)" -eq 0 ] && as_user=(-u nobody)
smtp-sink "${as_user[@]}" -m 1000 "127.0.0.1:$PORT" 1000 &
SINK_PID=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.05
done
(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || { echo "error: smtp-sink did not start" >&2; exit 1; }

# --- worlds ------------------------------------------------------------------------------------
# subscribers FILE COUNT: an `email,name` list of COUNT readers.
subscribers() {
  awk -v n="$2" 'BEGIN { print "email,name"; for (i = 1; i <= n; i++) printf "reader%d@example.net,Reader %d\n", i, i }' >"$1"
}

# world DIR LIST CONCURRENCY CONTENT [KEY]: a config sending LIST's issue from the CONTENT
# folder to the sink, with its own data folder; with KEY (a PEM file), every message is
# DKIM-signed with it.
world() {
  mkdir -p "$1/data"
  local dkim=""
  [ -n "${5:-}" ] && dkim="[dkim]
domain = \"example.org\"
selector = \"bench\"
private_key_file = \"$5\""
  cat >"$1/brief.toml" <<EOF
[newsletter]
kicker = "BRIEF"
name = "U.S. – Mexico Binational Institutional Life"
organization = "Center for Binational Institutions"
intro = "The Center for Binational Institutions works for a better understanding of the institutions that Mexico and the United States share."
from = "Center for Binational Institutions <brief@example.org>"
reply_to = "Center for Binational Institutions <info@example.org>"
postal_address = "1 Example Plaza, Suite 100\nEl Paso, TX 79901, USA"
templates = "$ROOT/templates"

[content]
dir = "$4"

[subscribers]
file = "$2"

[delivery]
database = "$1/data/brief.db"
concurrency = $3
rate_per_second = 0

[smtp]
transport = "smtp"
host = "127.0.0.1"
port = $PORT
tls = "none"
timeout = "30s"

[server]
public_url = "https://brief.example.org/"
secret_env = "BRIEF_BENCH_SECRET"

[log]
format = "text"

$dkim
EOF
}
export BRIEF_BENCH_SECRET="bench-secret-bench-secret-bench-secret-0123456789"

# The two bench issues: the example issue as it is, and with its entries twice (numbered on).
# The bench world reads one language, so the translations beside the entries stay out.
mkdir -p "$WORK/content.example/2021-07" "$WORK/content.long/2021-07"
for f in "$ROOT"/content/2021-07/*; do
  case "$f" in *.??.md) continue ;; esac
  cp "$f" "$WORK/content.example/2021-07/"
  cp "$f" "$WORK/content.long/2021-07/"
done
for f in "$ROOT"/content/2021-07/0*.md; do
  case "$f" in *.??.md) continue ;; esac
  n=$(sed -n 's/^number = //p' "$f")
  sed -e "s/^number = .*/number = $((n + 4))/" -e 's/^title = "\(.*\)"$/title = "\1 (continued)"/' \
    "$f" >"$WORK/content.long/2021-07/1${n}-$(basename "$f" | cut -d- -f2-)"
done

subscribers "$WORK/list.csv" "$N"
# message NAME: brief's own message for issue NAME (its preview `.eml`), as smtp-source sends it
# (smtp-source -F appends CRLF to every line itself, so its file has bare LF line ends).
message() {
  world "$WORK/preview.$1" "$WORK/list.csv" 1 "$WORK/content.$1"
  "$BRIEF" --config "$WORK/preview.$1/brief.toml" preview --issue 2021-07 --out "$WORK/preview.$1/out" >/dev/null
  sed 's/\r$//' "$WORK/preview.$1/out/2021-07.eml" >"$WORK/message.$1.txt"
  wc -c <"$WORK/preview.$1/out/2021-07.eml"
}
SIZE_example=$(message example)
SIZE_long=$(message long)

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
now_ns() { date +%s%N; }

# timed LABEL COUNT OUT -- COMMAND...: runs COMMAND, prints "rate cpu_us_per_msg rss_kb" to OUT.
timed() {
  local label=$1 count=$2 out=$3
  shift 4
  local t0 t1
  t0=$(now_ns)
  /usr/bin/time -f "%U %S %M" -o "$WORK/time.$label" "$@" >"$WORK/stdout.$label" 2>"$WORK/stderr.$label" || {
    echo "error: $label failed:" >&2
    tail -5 "$WORK/stderr.$label" "$WORK/stdout.$label" >&2
    exit 1
  }
  t1=$(now_ns)
  read -r user sys rss <"$WORK/time.$label"
  awk -v n="$count" -v ns=$((t1 - t0)) -v u="$user" -v s="$sys" -v rss="$rss" \
    'BEGIN { printf "%.0f %.1f %d\n", n / (ns / 1e9), (u + s) * 1e6 / n, rss }' >"$out"
}

# source_run TAG MESSAGE CONCURRENCY: smtp-source sending MESSAGE N times, result in $WORK/r.TAG.
source_run() {
  timed "$1" "$N" "$WORK/r.$1" -- smtp-source -d -s "$3" -m "$N" -F "$WORK/message.$2.txt" \
    -f brief@example.org -t reader@example.net "127.0.0.1:$PORT"
}

# brief_run TAG LIST COUNT CONCURRENCY MESSAGE [KEY]: one fresh send of MESSAGE's issue (signed
# with KEY if given), result in $WORK/r.TAG.
brief_run() {
  local dir="$WORK/run.$1"
  rm -rf "$dir"
  world "$dir" "$2" "$4" "$WORK/content.$5" "${6:-}"
  timed "$1" "$3" "$WORK/r.$1" -- "$BRIEF" --config "$dir/brief.toml" send --yes --issue 2021-07
  grep -q "$3 sent now" "$WORK/stdout.$1" || {
    echo "error: brief did not send all $3 messages:" >&2
    cat "$WORK/stdout.$1" >&2
    exit 1
  }
  rm -rf "$dir"
}

show() { awk -v l="$1" '{ printf "  %-40s %7d msg/s  %6.1f us CPU/msg  %6.1f MB peak RSS\n", l, $1, $2, $3 / 1024 }' "$2"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/^Mem:/ { print $2 }') GB RAM"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before: $load_before"
echo "messages: $SIZE_example bytes (the example issue) and $SIZE_long bytes (its entries twice), brief's own; smtp-source sends the same files"
echo "list: $N recipients, $CONC connections and 1, $RUNS interleaved runs each"

# Keys as OpenSSL 3 writes them (PKCS#8 PEM), as staff would make them.
openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out "$WORK/rsa.pem" 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$WORK/ed25519.pem" 2>/dev/null
for m in example long; do
  for i in $(seq "$RUNS"); do
    source_run "$m.source.run$i" "$m" "$CONC"
    show "$m: smtp-source, $CONC conns, run $i" "$WORK/r.$m.source.run$i"
    brief_run "$m.brief.run$i" "$WORK/list.csv" "$N" "$CONC" "$m"
    show "$m: brief, $CONC conns, run $i" "$WORK/r.$m.brief.run$i"
    source_run "$m.source1c.run$i" "$m" 1
    show "$m: smtp-source, 1 conn, run $i" "$WORK/r.$m.source1c.run$i"
    brief_run "$m.brief1c.run$i" "$WORK/list.csv" "$N" 1 "$m"
    show "$m: brief, 1 conn, run $i" "$WORK/r.$m.brief1c.run$i"
    brief_run "$m.rsa.run$i" "$WORK/list.csv" "$N" "$CONC" "$m" "$WORK/rsa.pem"
    show "$m: brief RSA-2048, $CONC conns, run $i" "$WORK/r.$m.rsa.run$i"
    brief_run "$m.ed.run$i" "$WORK/list.csv" "$N" "$CONC" "$m" "$WORK/ed25519.pem"
    show "$m: brief Ed25519, $CONC conns, run $i" "$WORK/r.$m.ed.run$i"
  done
done
subscribers "$WORK/big.csv" "$BIG"
for i in $(seq "$RUNS"); do
  brief_run "big.run$i" "$WORK/big.csv" "$BIG" "$CONC" long
  show "long: brief, $BIG readers, run $i" "$WORK/r.big.run$i"
done

col() { for f in "$WORK"/r."$1".run*; do cut -d' ' -f"$2" "$f"; done | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "NOT met"; fi; }
rss_mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average after: $load_after"
echo
# row MESSAGE LABEL TAG REFERENCE: one table row, brief's ratios to the smtp-source run TAG of the
# same connection count (REFERENCE; none for smtp-source itself).
row() {
  local rate cpu rss ref_rate ref_cpu x_rate="-" x_cpu="-"
  rate=$(col "$1.$3" 1) cpu=$(col "$1.$3" 2) rss=$(col "$1.$3" 3)
  if [ -n "${4:-}" ]; then
    ref_rate=$(col "$1.$4" 1) ref_cpu=$(col "$1.$4" 2)
    x_rate="$(ratio "$rate" "$ref_rate")x" x_cpu="$(ratio "$cpu" "$ref_cpu")x"
  fi
  printf '| %s | %s | %d | %s | %.1f | %s | %s |\n' "$1" "$2" "$rate" "$x_rate" "$cpu" "$x_cpu" "$(rss_mb "$rss")"
}
# The figures as one dated block: printed, and with --write spliced into docs/performance.md
# between its bench markers, so the page always shows one run, whole.
{
  echo "Measured $(date -u +%Y-%m-%d) on commit \`$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\`, machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/^Mem:/ { print $2 }') GB RAM; load average $load_before before the run and $load_after after. Medians of $RUNS interleaved runs to $N readers, loopback \`smtp-sink\`; the example issue is a $SIZE_example-byte message, the long one $SIZE_long bytes. \"x\" columns: brief against smtp-source on as many connections."
  echo
  echo "| message | sender | msg/s | x | CPU µs/msg | x | peak RSS MB |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
  for m in example long; do
    row "$m" "smtp-source, $CONC connections" source
    row "$m" "brief, $CONC connections" brief source
    row "$m" "smtp-source, 1 connection" source1c
    row "$m" "brief, 1 connection" brief1c source1c
    row "$m" "brief RSA-2048-signed, $CONC connections" rsa source
    row "$m" "brief Ed25519-signed, $CONC connections" ed source
  done
  big_rate=$(col big 1) big_cpu=$(col big 2) big_rss=$(col big 3)
  printf '| %s | %s | %d | - | %.1f | - | %s |\n' long "brief, $CONC connections, $BIG readers" "$big_rate" "$big_cpu" "$(rss_mb "$big_rss")"
  e() { col "example.$1" "$2"; }
  x16=$(ratio "$(e brief 1)" "$(e source 1)") c16=$(ratio "$(e brief 2)" "$(e source 2)")
  x1=$(ratio "$(e brief1c 1)" "$(e source1c 1)") c1=$(ratio "$(e brief1c 2)" "$(e source1c 2)")
  xrsa=$(ratio "$(e rsa 1)" "$(e source 1)") xed=$(ratio "$(e ed 1)" "$(e source 1)")
  echo
  echo "| target (the example issue) | figure | verdict |"
  echo "| --- | ---: | --- |"
  echo "| brief, $CONC connections: CPU/msg ≤ 1.2x smtp-source's | ${c16}x | $(verdict "$c16 <= 1.2") |"
  echo "| brief, $CONC connections: msg/s ≥ 1.0x smtp-source's | ${x16}x | $(verdict "$x16 >= 1.0") |"
  echo "| brief, 1 connection: CPU/msg ≤ 1.5x smtp-source's | ${c1}x | $(verdict "$c1 <= 1.5") |"
  echo "| brief, 1 connection: msg/s ≥ 1.0x smtp-source's | ${x1}x | $(verdict "$x1 >= 1.0") |"
  echo "| RSA-2048-signed, $CONC connections: msg/s ≥ 0.6x smtp-source's | ${xrsa}x | $(verdict "$xrsa >= 0.6") |"
  echo "| Ed25519-signed, $CONC connections: msg/s ≥ 0.95x smtp-source's | ${xed}x | $(verdict "$xed >= 0.95") |"
  echo "| peak RSS at $BIG readers ≤ 40 MB | $(rss_mb "$big_rss") MB | $(verdict "$big_rss <= 40960") |"
} >"$WORK/figures.md"
cat "$WORK/figures.md"
if [ "$WRITE" = 1 ]; then
  page="$ROOT/docs/performance.md"
  awk -v figures="$WORK/figures.md" '
    /<!-- bench:end -->/ { skip = 0 }
    !skip { print }
    /<!-- bench:begin -->/ { while ((getline line < figures) > 0) print line; skip = 1 }
  ' "$page" >"$WORK/page.md"
  grep -q '<!-- bench:end -->' "$WORK/page.md" || { echo "error: $page lost its bench markers" >&2; exit 1; }
  cp "$WORK/page.md" "$page"
  echo "wrote the figures into $page"
fi
