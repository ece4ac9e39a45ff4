#!/usr/bin/env bash
# `make invoke` / `make download`: run a manual window, or fetch a day's CSV, of the deployed stack.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${STACK_NAME:=bedrock-usage-report}"
source scripts/region.sh
resolve_region  # the stack's region: AWS_REGION, AWS_DEFAULT_REGION or the profile's; every call below passes it
output() {
  aws cloudformation describe-stacks --region "$region" --stack-name "$STACK_NAME" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
mkdir -p out
case "${1:-}" in
  invoke)
    # EVENT='{"date": "2026-11-20"}' or '{"start": "...", "end": "..."}'; default: yesterday
    # A synchronous invoke waits for the whole run: the CLI's default 60 s read timeout would cut it short and the
    # CLI would invoke again. The function's timeout is 15 minutes; the read timeout is a little longer.
    meta=$(aws lambda invoke --region "$region" --function-name "$(output FunctionName)" --cli-binary-format raw-in-base64-out \
      --cli-read-timeout 960 --cli-connect-timeout 30 \
      --payload "${EVENT:-{\}}" out/invoke-response.json)
    cat out/invoke-response.json; echo
    # FunctionError: the run raised (a setting, an AWS error, an unproven result); status error: a refused event
    if grep -q '"FunctionError"' <<<"$meta" || grep -q '"status": *"error"' out/invoke-response.json; then
      echo "the report failed (see above and the function's logs)" >&2
      exit 1
    fi
    ;;
  download)
    # DATE=YYYY-MM-DD for one day, or FROM=... TO=... (both included) for a range
    : "${FROM:=${DATE:-}}" "${TO:=${DATE:-}}"
    [[ -n "$FROM" && -n "$TO" ]] || { echo "set DATE=YYYY-MM-DD, or FROM= and TO= (the report days in REPORT_TIMEZONE)" >&2; exit 2; }
    bucket=$(output ReportBucket); prefix=$(output ReportPrefix)
    day="$FROM"
    while [[ ! "$day" > "$TO" ]]; do
      aws s3 cp --region "$region" "s3://$bucket/$prefix/reports/${day//-//}/" out/ --recursive --exclude '*' --include '*.csv'
      day=$(date -u -d "$day + 1 day" +%F)
    done
    ;;
  *) echo "usage: $0 invoke|download" >&2; exit 2 ;;
esac
