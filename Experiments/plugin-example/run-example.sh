#!/usr/bin/env bash
# Builds the plugin package against this checkout of KVKit, runs its tests (KVKit's conformance kits on
# the plugin's policy and probe), and runs both through KVKit's command line on the real model.
set -euo pipefail
cd "$(dirname "$0")"
swift build -c release --product plugin-kvkit
swift test -c release --disable-xctest
.build/release/plugin-kvkit policies | grep '^vatp ' > /dev/null || { echo "plugin policy not listed" >&2; exit 1; }
.build/release/plugin-kvkit policies | grep '^scissorhands ' > /dev/null || { echo "plugin policy scissorhands not listed" >&2; exit 1; }
.build/release/plugin-kvkit generate --prompt "The secret word is lighthouse. Repeat the secret word." \
    --policy vatp:window=16 --budget 0.5 --max-tokens 8
.build/release/plugin-kvkit probes | grep '^passkey ' > /dev/null || { echo "plugin probe not listed" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
.build/release/plugin-kvkit run --policy vatp,scissorhands,snapkv --budget 0.5 --probe passkey,niah --lengths 512 --depths 0.5 --samples 1 --out "$out/run" --no-progress
grep -q '^passkey,"vatp' "$out/run/summary.csv" || { echo "no passkey × vatp row in the plugin run's summary" >&2; exit 1; }
grep -q '^niah,"scissorhands' "$out/run/summary.csv" || { echo "no niah × scissorhands row in the plugin run's summary" >&2; exit 1; }
