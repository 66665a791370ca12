#!/usr/bin/env bash
# Benchmarks `brief send` against Postfix's smtp-source, both into one smtp-sink on 127.0.0.1.
#
# The issue is content/2021-07 with its entries twice (a message of about 28 KB, the size of a
# real monthly issue). Interleaved, BENCH_RUNS times each: smtp-source (-d -s 16, brief's own
# message for that issue as its message, so the sizes match) then `brief send --yes` (16
# connections, a fresh data folder and ledger each run). Then brief on one connection, and brief with the large list for peak memory. Prints
# messages/s, the ratio, CPU microseconds per message (user + sys of the sender, from
# /usr/bin/time) and peak RSS, as medians. Everything stays on loopback; the sink is stopped on
# exit. Knobs: BENCH_RECIPIENTS (20000), BENCH_RECIPIENTS_BIG (100000), BENCH_CONCURRENCY (16),
# BENCH_RUNS (3), BENCH_PORT (2530), BENCH_SKIP_BUILD (unset). With --write, the dated figures
# also replace those between the bench markers of docs/performance.md.
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

# world DIR LIST CONCURRENCY [KEY]: a config sending LIST to the sink, with its own data
# folder; with KEY (a PEM file), every message is DKIM-signed with it.
world() {
  mkdir -p "$1/data"
  local dkim=""
  [ -n "${4:-}" ] && dkim="[dkim]
domain = \"example.org\"
selector = \"bench\"
private_key_file = \"$4\""
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
dir = "$WORK/content"

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

# The bench issue: the example issue's entries twice (numbered on), which makes a message of about
# 30 KB, the size of a real monthly issue.
mkdir -p "$WORK/content/2021-07"
cp "$ROOT"/content/2021-07/* "$WORK/content/2021-07/"
for f in "$ROOT"/content/2021-07/0*.md; do
  n=$(sed -n 's/^number = //p' "$f")
  sed -e "s/^number = .*/number = $((n + 4))/" -e 's/^title = "\(.*\)"$/title = "\1 (continued)"/' \
    "$f" >"$WORK/content/2021-07/1${n}-$(basename "$f" | cut -d- -f2-)"
done

subscribers "$WORK/list.csv" "$N"
world "$WORK/preview" "$WORK/list.csv" 1
"$BRIEF" --config "$WORK/preview/brief.toml" preview --issue 2021-07 --out "$WORK/preview/out" >/dev/null
EML=$(ls "$WORK"/preview/out/*.eml)
SIZE=$(wc -c <"$EML")
# smtp-source -F appends CRLF to every line itself, so its file has bare LF line ends.
sed 's/\r$//' "$EML" >"$WORK/message.txt"

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

# brief_run TAG LIST COUNT CONCURRENCY [KEY]: one fresh send (signed with KEY if given), result
# in $WORK/r.TAG.
brief_run() {
  local dir="$WORK/run.$1"
  rm -rf "$dir"
  world "$dir" "$2" "$4" "${5:-}"
  timed "$1" "$3" "$WORK/r.$1" -- "$BRIEF" --config "$dir/brief.toml" send --yes --issue 2021-07
  grep -q "$3 sent now" "$WORK/stdout.$1" || {
    echo "error: brief did not send all $3 messages:" >&2
    cat "$WORK/stdout.$1" >&2
    exit 1
  }
  rm -rf "$dir"
}

show() { awk -v l="$1" '{ printf "  %-28s %7d msg/s  %6.1f us CPU/msg  %6.1f MB peak RSS\n", l, $1, $2, $3 / 1024 }' "$2"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/^Mem:/ { print $2 }') GB RAM"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before: $load_before"
echo "message: $SIZE bytes (brief's own for the bench issue, 2021-07 with its entries twice; smtp-source sends the same file)"
echo "list: $N recipients, $CONC connections, $RUNS interleaved runs each"

# Keys as OpenSSL 3 writes them (PKCS#8 PEM), as staff would make them.
openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out "$WORK/rsa.pem" 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$WORK/ed25519.pem" 2>/dev/null
for i in $(seq "$RUNS"); do
  timed "source$i" "$N" "$WORK/r.source$i" -- smtp-source -d -s "$CONC" -m "$N" -F "$WORK/message.txt" \
    -f brief@example.org -t reader@example.net "127.0.0.1:$PORT"
  show "smtp-source run $i" "$WORK/r.source$i"
  brief_run "brief$i" "$WORK/list.csv" "$N" "$CONC"
  show "brief send run $i" "$WORK/r.brief$i"
  brief_run "rsa$i" "$WORK/list.csv" "$N" "$CONC" "$WORK/rsa.pem"
  show "brief RSA-2048-signed run $i" "$WORK/r.rsa$i"
  brief_run "ed$i" "$WORK/list.csv" "$N" "$CONC" "$WORK/ed25519.pem"
  show "brief Ed25519-signed run $i" "$WORK/r.ed$i"
done
for i in $(seq "$RUNS"); do
  brief_run "one$i" "$WORK/list.csv" "$N" 1
  show "brief 1 connection run $i" "$WORK/r.one$i"
done
subscribers "$WORK/big.csv" "$BIG"
for i in $(seq "$RUNS"); do
  brief_run "big$i" "$WORK/big.csv" "$BIG" "$CONC"
  show "brief $BIG run $i" "$WORK/r.big$i"
done

col() { for f in "$WORK"/r."$1"[0-9]*; do cut -d' ' -f"$2" "$f"; done | median; }
src_rate=$(col source 1) src_cpu=$(col source 2)
b_rate=$(col brief 1) b_cpu=$(col brief 2) b_rss=$(col brief 3)
one_rate=$(col one 1) one_cpu=$(col one 2)
big_rate=$(col big 1) big_cpu=$(col big 2) big_rss=$(col big 3)
rsa_rate=$(col rsa 1) rsa_cpu=$(col rsa 2)
ed_rate=$(col ed 1) ed_cpu=$(col ed 2)
ratio=$(awk -v a="$b_rate" -v b="$src_rate" 'BEGIN { printf "%.2f", a / b }')
rsa_ratio=$(awk -v a="$rsa_rate" -v b="$src_rate" 'BEGIN { printf "%.2f", a / b }')
ed_ratio=$(awk -v a="$ed_rate" -v b="$src_rate" 'BEGIN { printf "%.2f", a / b }')
growth=$(awk -v a="$big_rss" -v b="$b_rss" 'BEGIN { printf "%.0f", (a / b - 1) * 100 }')
verdict() { if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "NOT met"; fi; }

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average after: $load_after"
echo
# The figures as one dated block: printed, and with --write spliced into docs/performance.md
# between its bench markers, so the page always shows one run, whole.
rss_mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
{
  echo "Measured $(date -u +%Y-%m-%d) on commit \`$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\`, machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/^Mem:/ { print $2 }') GB RAM; load average $load_before before the run and $load_after after. Medians of $RUNS interleaved runs, a $SIZE-byte message, loopback \`smtp-sink\`."
  echo
  printf '| %s | %s | %s | %s |\n' "sender" "msg/s" "CPU µs/msg" "peak RSS MB"
  printf '| %s | %s | %s | %s |\n' "---" "---:" "---:" "---:"
  printf '| %s | %d | %.1f | %s |\n' "smtp-source -d -s $CONC, $N messages" "$src_rate" "$src_cpu" "-"
  printf '| %s | %d | %.1f | %s |\n' "brief send, $CONC connections, $N" "$b_rate" "$b_cpu" "$(rss_mb "$b_rss")"
  printf '| %s | %d | %.1f | %s |\n' "brief send, RSA-2048-signed, $N" "$rsa_rate" "$rsa_cpu" "-"
  printf '| %s | %d | %.1f | %s |\n' "brief send, Ed25519-signed, $N" "$ed_rate" "$ed_cpu" "-"
  printf '| %s | %d | %.1f | %s |\n' "brief send, 1 connection, $N" "$one_rate" "$one_cpu" "-"
  printf '| %s | %d | %.1f | %s |\n' "brief send, $CONC connections, $BIG" "$big_rate" "$big_cpu" "$(rss_mb "$big_rss")"
  echo
  echo "| target | figure | verdict |"
  echo "| --- | ---: | --- |"
  echo "| brief / smtp-source ≥ 0.7 (stretch 0.9) | $ratio | $(verdict "$ratio >= 0.7") (stretch: $(verdict "$ratio >= 0.9")) |"
  echo "| RSA-2048-signed / smtp-source ≥ 0.3 | $rsa_ratio | $(verdict "$rsa_ratio >= 0.3") |"
  echo "| Ed25519-signed / smtp-source ≥ 0.8 | $ed_ratio | $(verdict "$ed_ratio >= 0.8") |"
  echo "| one connection ≥ 1,000 msg/s | $one_rate | $(verdict "$one_rate >= 1000") |"
  echo "| peak RSS at $BIG readers ≤ 64 MB | $(rss_mb "$big_rss") MB | $(verdict "$big_rss <= 65536") |"
  echo "| RSS growth from $N to $BIG readers ≤ 25% | ${growth}% | $(verdict "$growth <= 25") |"
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
