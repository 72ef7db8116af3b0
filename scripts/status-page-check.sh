#!/usr/bin/env bash
# The coordinator's status page in a real headless browser (Debian's Chromium).
#
# A coordinator with --serve and three participants (synthetic data, all on loopback) run
# a five-round job submitted with `cairn job submit`; Chromium then loads the status page
# with the admin token, writes a screenshot (status-page.png in $STATUS_PAGE_OUT, default
# target/status-page) and dumps the rendered DOM, which is checked: the job, its state,
# its table of rounds, its holders with their state, its privacy and proof settings, the
# metrics chart with its labelled round axis and the links to the model, metrics and plots
# are on the page; every link the page gives answers (python3 follows them: the model is
# safetensors, the plots SVG); and without the token the page is refused. Installs Chromium
# from Debian when it is missing and this runs as root.
#
#   scripts/status-page-check.sh            (after a build: uses target/debug/cairn)
#   CAIRN=target/release/cairn scripts/status-page-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CAIRN=${CAIRN:-target/debug/cairn}
SHOTS=${STATUS_PAGE_OUT:-target/status-page}
[ -x "$CAIRN" ] || { echo "status page check: build cairn first ($CAIRN is missing)" >&2; exit 1; }

if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "status page check: installing Debian's chromium"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "status page check: chromium is not installed (as root: apt-get install chromium)" >&2
        exit 1
    fi
fi

work=$(mktemp -d)
cleanup() {
    # shellcheck disable=SC2046
    kill $(jobs -p) 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "status page check FAILED: $*" >&2
    echo "--- coordinator log ---" >&2
    tail -n 30 "$work/coordinator.log" >&2 || true
    exit 1
}

# Chromium as the machine allows it: as root, no sandbox; no background traffic.
browse() {
    timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$work/chrome" "$@" 2>>"$work/chromium.log"
}

out=$work/out
"$CAIRN" coordinator --serve --listen 127.0.0.1:0 --out "$out" >"$work/coordinator.log" 2>&1 &
for _ in $(seq 100); do
    grep -q '^waiting for jobs' "$work/coordinator.log" 2>/dev/null && break
    sleep 0.1
done
grep -q '^waiting for jobs' "$work/coordinator.log" || fail "the coordinator did not start"
addr=$(sed -n 's/^listening on //p' "$work/coordinator.log")
fp=$(sed -n 's/^fingerprint //p' "$work/coordinator.log")
admin=$(sed -n 's/.*"admin": "\(http[^"]*\)".*/\1/p' "$out/coordinator.json")
token=$(cat "$out/admin.token")

for i in 0 1 2; do
    "$CAIRN" participant --coordinator "$addr" --fingerprint "$fp" --device cpu --synthetic \
        --holder "$i" --of 3 --serve >"$work/holder-$i.log" 2>&1 &
done
cat >"$work/job.toml" <<'EOF'
name = "status-check"
rounds = 5
[data]
synthetic = true
[model]
hidden = [8]
[participants]
per_round = 3
min = 2
[train]
steps = 5
batch = 16
[server]
optimizer = "fedadam"
[deadlines]
round_timeout_secs = 60
join_timeout_secs = 120
EOF
"$CAIRN" job --dir "$out" submit "$work/job.toml" >/dev/null || fail "submit"
timeout 120 "$CAIRN" job --dir "$out" watch 1 --every 0.2 >"$work/watch.log" || fail "the job did not finish"

# GET PATH on the admin interface with the token: the body to stdout; exit 1 unless 200.
get() {
    python3 - "$admin" "$token" "$1" <<'PY'
import sys, urllib.request, urllib.error
base, token, path = sys.argv[1:4]
req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + token})
try:
    with urllib.request.urlopen(req, timeout=20) as r:
        sys.stdout.buffer.write(r.read())
except urllib.error.HTTPError as e:
    sys.stderr.write(f"{path}: HTTP {e.code}\n")
    sys.exit(1)
PY
}
# The report (the ROC plot's data) is stored just after the job ends.
for _ in $(seq 120); do
    get /api/jobs/1/report >/dev/null 2>&1 && break
    sleep 0.5
done
get /api/jobs/1/report >/dev/null || fail "no report after the job ended"

mkdir -p "$SHOTS"
rm -f "$SHOTS/status-page.png"
browse --window-size=1100,800 --screenshot="$SHOTS/status-page.png" "$admin/?token=$token" >/dev/null \
    || fail "chromium could not take the screenshot"
size=$(stat -c %s "$SHOTS/status-page.png" 2>/dev/null || echo 0)
[ "$size" -gt 10000 ] || fail "the screenshot is $size bytes"
[ "$(head -c 8 "$SHOTS/status-page.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] \
    || fail "the screenshot is not a PNG"

browse --dump-dom "$admin/?token=$token" >"$work/page.html" || fail "chromium could not load the page"
for want in '#1 status-check' '>finished<' '5 / 5 completed' '3 of 3 in round 5' '<svg' '<polyline' \
    '<table class="rounds">' '<tr class="round">' '<table class="holders">' 'holder-0' 'holder-2' \
    'answered (round 5)' '<table class="settings">' 'secure (SecAgg+): tolerates dropout' \
    '<th>proofs</th><td>off</td>' '>round</text>' 'class="xtick"' \
    "href=\"/api/jobs/1/model?token=$token\"" "href=\"/api/jobs/1/metrics.csv?token=$token\"" \
    "href=\"/api/jobs/1/plots/rounds.svg?token=$token\"" "href=\"/api/jobs/1/plots/roc.svg?token=$token\""; do
    grep -qF "$want" "$work/page.html" || fail "the page lacks: $want"
done
# One row per round, as Chromium parsed the table.
rows=$(grep -o '<tr class="round">' "$work/page.html" | wc -l)
[ "$rows" = 5 ] || fail "the table of rounds has $rows rows, not 5"
# Nothing on the page is fetched from elsewhere (it is served on loopback and read offline).
grep -qE '(src|href)="(https?:)?//' "$work/page.html" && fail "the page refers to another site"
# Every link the page gives answers; the model is safetensors, the plots are SVG.
links=$(grep -o 'href="/api/[^"]*"' "$work/page.html" | sed 's/^href="//; s/"$//; s/&amp;/\&/g' | sort -u)
[ -n "$links" ] || fail "the page has no links"
for link in $links; do
    get "$link" >"$work/link.out" || fail "the page's link $link does not answer"
    [ -s "$work/link.out" ] || fail "the page's link $link answers nothing"
    case "$link" in
        */plots/*.svg*) grep -qF '<svg xmlns="http://www.w3.org/2000/svg"' "$work/link.out" || fail "$link is not SVG" ;;
    esac
done
get /api/jobs/1/model >"$work/model.safetensors" || fail "the model"
# safetensors: an 8-byte little-endian header length, then the JSON header.
[ "$(head -c 9 "$work/model.safetensors" | tail -c 1)" = '{' ] || fail "the model is not safetensors"
browse --window-size=760,420 --screenshot="$SHOTS/rounds.png" "$admin/api/jobs/1/plots/rounds.svg?token=$token" >/dev/null \
    || fail "chromium could not draw the rounds plot"
browse --dump-dom "$admin/" >"$work/refused.html" || fail "chromium could not load the page"
grep -qF 'needs a token' "$work/refused.html" || fail "the page was shown without the token"
grep -qF 'status-check' "$work/refused.html" && fail "the page leaked the job without the token"

echo "status page check: passed (Chromium $(chromium --version 2>/dev/null | awk '{print $2}'); screenshot $SHOTS/status-page.png, $size bytes)"
