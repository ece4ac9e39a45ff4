#!/usr/bin/env bash
# `make invoke` / `make download`: run a manual window, or fetch a day's CSV, of the deployed stack.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${STACK_NAME:=bedrock-usage-report}"
output() { aws cloudformation describe-stacks --stack-name "$STACK_NAME" --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text; }
mkdir -p out
case "${1:-}" in
  invoke)
    # EVENT='{"date": "2026-11-20"}' or '{"start": "...", "end": "..."}'; default: yesterday
    aws lambda invoke --function-name "$(output FunctionName)" --cli-binary-format raw-in-base64-out \
      --payload "${EVENT:-{\}}" out/invoke-response.json >/dev/null
    cat out/invoke-response.json; echo
    ;;
  download)
    : "${DATE:?set DATE=YYYY-MM-DD (the report day in REPORT_TIMEZONE)}"
    aws s3 cp "s3://$(output ReportBucket)/$(output ReportPrefix)/reports/${DATE//-//}/" out/ --recursive --exclude '*' --include '*.csv'
    ;;
  *) echo "usage: $0 invoke|download" >&2; exit 2 ;;
esac
