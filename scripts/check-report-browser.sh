#!/usr/bin/env bash
# Check a `vqsgd report` page in a real headless browser (Chromium from the distribution).
#
#   scripts/check-report-browser.sh REPORT_DIR
#
# Installs the Debian package `chromium` when no Chromium is on PATH (needs root and apt),
# loads REPORT_DIR/index.html from disk with networking disabled, and checks that
#   - the page loads and its DOM holds as many <svg> elements as the page announces in
#     <body data-plots="N"> (every plot rendered), N > 0;
#   - the browser logged no console error and no failed resource load;
#   - every SVG file of the report parses as an image of non-zero size (via a second page).
# Leaves REPORT_DIR/browser-dom.html and REPORT_DIR/browser-screenshot.png for a human to look at.
# Exit status 0 when every check passes.
set -euo pipefail

dir=${1:?usage: $0 REPORT_DIR}
dir=$(cd "$dir" && pwd)
page="$dir/index.html"
[ -f "$page" ] || { echo "FAIL: $page does not exist" >&2; exit 1; }

browser=""
for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then browser=$(command -v "$b"); break; fi
done
if [ -z "$browser" ]; then
    echo "installing chromium (apt-get) ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    sudo_=""
    [ "$(id -u)" -eq 0 ] || sudo_="sudo"
    $sudo_ apt-get update -qq >&2
    $sudo_ apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
    browser=$(command -v chromium)
fi
echo "browser: $browser ($("$browser" --version 2>/dev/null || echo unknown version))"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
    --disable-background-networking --disable-component-update --disable-sync
    --disable-extensions --disable-default-apps --no-proxy-server
    --host-resolver-rules="MAP * ~NOTFOUND" --enable-logging=stderr --v=0)
chrome() { # chrome LOGFILE ARGS...: run with a fresh profile, killed after 60 s
    local log=$1; shift
    timeout --kill-after=10 60 "$browser" "${flags[@]}" --user-data-dir="$(mktemp -d -p "$work")" \
        "$@" 2>"$log"
}

fail=0
# 1. DOM after load (scripts run, layout done).
chrome "$work/dom.log" --virtual-time-budget=3000 --dump-dom "file://$page" >"$dir/browser-dom.html"
expected=$(grep -o 'data-plots="[0-9]*"' "$dir/browser-dom.html" | head -1 | grep -o '[0-9]*' || true)
found=$(grep -o '<svg[ >]' "$dir/browser-dom.html" | wc -l)
if [ -z "$expected" ]; then
    echo "FAIL: the loaded DOM has no data-plots attribute (page did not load?)"; fail=1
elif [ "$expected" -eq 0 ]; then
    echo "FAIL: the page announces no plots"; fail=1
elif [ "$found" -ne "$expected" ]; then
    echo "FAIL: DOM has $found <svg> elements, the page announces $expected"; fail=1
else
    echo "ok: DOM has all $found plots"
fi

# 2. Screenshot, tall enough for the whole page (about 650 px per plot plus the table).
height=$(( 1000 + 650 * ${expected:-1} ))
chrome "$work/shot.log" --window-size=1400,$height --hide-scrollbars \
    --screenshot="$dir/browser-screenshot.png" "file://$page" >/dev/null || true
if [ -s "$dir/browser-screenshot.png" ]; then
    echo "ok: screenshot $dir/browser-screenshot.png"
else
    echo "FAIL: no screenshot"; fail=1
fi

# 3. Every SVG file loads as an image with a size (a broken SVG has naturalWidth 0).
imgs=""
n_svg=0
for f in "$dir"/*.svg; do
    [ -e "$f" ] || continue
    n_svg=$((n_svg + 1))
    b=$(basename "$f")
    imgs+="<img src=\"$b\" onload=\"ok(this)\" onerror=\"bad(this)\">"
done
cat >"$dir/.browser-svg-check.html" <<EOF
<!DOCTYPE html><html><body><div id="r"></div>$imgs
<script>
var good = 0, broken = [];
function ok(i) { if (i.naturalWidth > 0) good++; else broken.push(i.getAttribute('src')); show(); }
function bad(i) { broken.push(i.getAttribute('src')); show(); }
function show() { document.getElementById('r').textContent = 'loaded=' + good + ' broken=' + broken.join(' ') + ';'; }
</script></body></html>
EOF
chrome "$work/svg.log" --virtual-time-budget=5000 --dump-dom "file://$dir/.browser-svg-check.html" >"$work/svg-dom.html" || true
rm -f "$dir/.browser-svg-check.html"
loaded=$(grep -o 'loaded=[0-9]*' "$work/svg-dom.html" | grep -o '[0-9]*' || echo 0)
if [ "$loaded" -eq "$n_svg" ] && [ "$n_svg" -gt 0 ]; then
    echo "ok: all $n_svg SVG files render as images"
else
    echo "FAIL: $loaded of $n_svg SVG files render as images: $(grep -o 'broken=[^;]*' "$work/svg-dom.html" || true)"
    fail=1
fi

# 4. Console errors and failed loads in any of the runs.
errs=$(cat "$work"/dom.log "$work"/shot.log | grep -E 'Uncaught|ERROR:CONSOLE|CONSOLE\(|net::ERR_|Failed to load|Refused to' || true)
if [ -n "$errs" ]; then
    echo "FAIL: browser reported errors:"; echo "$errs" | head -20; fail=1
else
    echo "ok: no console errors or failed loads"
fi

if [ "$fail" -ne 0 ]; then
    echo "browser check FAILED for $page"; exit 1
fi
echo "browser check passed for $page"
