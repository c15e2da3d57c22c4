#!/usr/bin/env bash
# fetch_squad.sh: prints the directory holding SQuAD v1.1 (train-v1.1.json[.gz], dev-v1.1.json[.gz]).
# Uses ../shared/data/squad when present; otherwise downloads the official files into .cache/squad/ (checked against
# their published sha256). Idempotent. SQuAD v1.1: CC BY-SA 4.0, Rajpurkar et al., EMNLP 2016.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -s ../shared/data/squad/dev-v1.1.json.gz ] && [ -s ../shared/data/squad/train-v1.1.json.gz ]; then
  echo "../shared/data/squad"
  exit 0
fi
DEST=.cache/squad
URL=https://rajpurkar.github.io/SQuAD-explorer/dataset
mkdir -p "$DEST"
fetch() {  # fetch NAME SHA256
  local f="$DEST/$1"
  if [ -s "$f" ] && echo "$2  $f" | sha256sum -c --quiet - 2>/dev/null; then return 0; fi
  curl -fsSL --retry 3 -o "$f.tmp" "$URL/$1" || { echo "fetch_squad: cannot download $URL/$1" >&2; rm -f "$f.tmp"; exit 1; }
  echo "$2  $f.tmp" | sha256sum -c --quiet - || { echo "fetch_squad: $1: sha256 mismatch" >&2; rm -f "$f.tmp"; exit 1; }
  mv "$f.tmp" "$f"
}
fetch dev-v1.1.json 95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9 >&2
fetch train-v1.1.json 3527663986b8295af4f7fcdff1ba1ff3f72d07d61a20f487cb238a6ef92fd955 >&2
echo "$DEST"
