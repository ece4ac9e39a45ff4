#!/usr/bin/env bash
# `make deploy`: upload the package and create or update the stack with the AWS CLI.
# Settings come from the environment; see docs/deploy.md.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${STACK_NAME:=bedrock-usage-report}"
: "${ARTIFACT_BUCKET:?set ARTIFACT_BUCKET to a bucket for the deployment package}"
: "${LOG_GROUP_ARNS:?set LOG_GROUP_ARNS to the invocation log groups ARNs, comma-separated}"
: "${SENDER:?set SENDER to the verified SES sender, e.g. reports@example.com}"
: "${RECIPIENTS:?set RECIPIENTS, comma-separated}"
: "${PANDAS_LAYER_ARN:?set PANDAS_LAYER_ARN (AWSSDKPandas-Python312-Arm64 in your region)}"
: "${REPORT_TIMEZONE:=UTC}"
: "${SCHEDULE_EXPRESSION:=cron(0 6 * * ? *)}"
: "${REPORT_BUCKET_NAME:=}"
: "${ALARM_EMAIL:=}"
: "${RESERVED_CONCURRENCY:=0}"  # 0: none reserved (a low account quota refuses any)
# report settings: stack parameters, so that a redeploy keeps them (defaults as in the README)
: "${QUERY_CONCURRENCY:=4}" "${LINK_EXPIRY_HOURS:=168}" "${PRICE_DISCOUNT_PERCENT:=0}" "${PRICE_OVERRIDES:=}"
: "${LOG_LEVEL:=INFO}" "${RECONCILE_LAG_DAYS:=2}" "${RECONCILE_COST_METRIC:=UnblendedCost}" "${RECONCILE_ALERT_PERCENT:=5}"

: "${SES_REGION:=}"
# The identity the role may send as: the one SES will authorize (the verified address, else its domain).
SENDER_IDENTITY=$(SES_REGION="$SES_REGION" scripts/ses_check.sh)

artifact=dist/bedrock-usage-report.zip
key="bedrock-usage-report/$(sha256sum "$artifact" | cut -c1-16).zip"  # a new key per build: the stack sees the change
aws s3 cp "$artifact" "s3://$ARTIFACT_BUCKET/$key"
aws cloudformation deploy \
  --template-file cloudformation/template.yaml \
  --stack-name "$STACK_NAME" \
  --capabilities CAPABILITY_IAM \
  --no-fail-on-empty-changeset \
  --parameter-overrides \
    "LogGroupArns=$LOG_GROUP_ARNS" "Sender=$SENDER" "SenderIdentity=$SENDER_IDENTITY" "Recipients=$RECIPIENTS" \
    "ReportTimezone=$REPORT_TIMEZONE" "ScheduleExpression=$SCHEDULE_EXPRESSION" "ReportBucketName=$REPORT_BUCKET_NAME" \
    "AlarmEmail=$ALARM_EMAIL" "ArtifactBucket=$ARTIFACT_BUCKET" "ArtifactKey=$key" "PandasLayerArn=$PANDAS_LAYER_ARN" \
    "ReservedConcurrency=$RESERVED_CONCURRENCY" "SesRegion=$SES_REGION" "QueryConcurrency=$QUERY_CONCURRENCY" \
    "LinkExpiryHours=$LINK_EXPIRY_HOURS" "PriceDiscountPercent=$PRICE_DISCOUNT_PERCENT" \
    "PriceOverrides=$PRICE_OVERRIDES" "LogLevel=$LOG_LEVEL" "ReconcileLagDays=$RECONCILE_LAG_DAYS" \
    "ReconcileCostMetric=$RECONCILE_COST_METRIC" "ReconcileAlertPercent=$RECONCILE_ALERT_PERCENT"
aws cloudformation describe-stacks --stack-name "$STACK_NAME" --query 'Stacks[0].Outputs' --output table
