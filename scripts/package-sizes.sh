#!/usr/bin/env bash
# Zipped size of each function's arm64 `bootstrap` (the Lambda deployment package).
set -euo pipefail
cd "$(dirname "$0")/.."
budget=$((5 * 1024 * 1024))
status=0
printf '%-16s %12s %12s\n' function bootstrap zipped
for f in connect callback actions refresh meeting-events webhooks; do
  bin=target/lambda/$f/bootstrap
  if [ ! -f "$bin" ]; then
    echo "$f: $bin missing (run make build)" >&2
    status=1
    continue
  fi
  zip=$(mktemp --suffix=.zip)
  rm -f "$zip"
  (cd "$(dirname "$bin")" && python3 -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED,compresslevel=9); z.write('bootstrap'); z.close()" "$zip")
  size=$(stat -c %s "$zip")
  printf '%-16s %12s %12s\n' "$f" "$(stat -c %s "$bin")" "$size"
  [ "$size" -le "$budget" ] || { echo "  over the 5 MB budget" >&2; status=1; }
  rm -f "$zip"
done
exit $status
