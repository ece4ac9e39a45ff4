#!/usr/bin/env bash
# `make deploy`: upload the package and create or update the stack with the AWS CLI.
# Settings come from the environment; see docs/deploy.md.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${STACK_NAME:=bedrock-usage-report}"
: "${ARTIFACT_BUCKET:?set ARTIFACT_BUCKET to a bucket for the deployment package}"
# the invocation logs: log groups (Logs Insights), or the S3 destination Bedrock delivers them to (docs/deploy.md)
: "${LOG_SOURCE:=cloudwatch}" "${LOG_S3_LOCATION:=}" "${LOG_BUCKET_KMS_KEY_ARN:=}"
if [[ "$LOG_SOURCE" == "s3" ]]; then
  : "${LOG_S3_LOCATION:?set LOG_S3_LOCATION to the S3 destination of the logging configuration, s3://bucket[/prefix]}"
  : "${LOG_GROUP_ARNS:=}"
else
  : "${LOG_GROUP_ARNS:?set LOG_GROUP_ARNS to the invocation log groups ARNs, comma-separated}"
fi
: "${SENDER:?set SENDER to the verified SES sender, e.g. reports@example.com}"
: "${RECIPIENTS:?set RECIPIENTS, comma-separated}"
: "${PANDAS_LAYER_ARN:=}"  # empty: the template's mapping picks this region's AWS SDK for pandas layer
: "${PANDAS_LAYER_VERSION:=}"
: "${REPORT_TIMEZONE:=UTC}"
: "${SCHEDULE_EXPRESSION:=cron(0 6 * * ? *)}"
: "${REPORT_BUCKET_NAME:=}"
: "${ALARM_EMAIL:=}" "${ALARM_TOPIC_ARN:=}"
: "${BREAK_GLASS_ROLE_ARN:=}"  # a role that may also write under the report prefix (repairs); empty: none
: "${RESERVED_CONCURRENCY:=0}"  # 0: none reserved (a low account quota refuses any)
# report settings: stack parameters, so that a redeploy keeps them (defaults as in the README)
: "${QUERY_CONCURRENCY:=4}" "${LINK_EXPIRY_HOURS:=168}" "${ZIP_ATTACHMENT_ABOVE_MB:=2}" "${PRICE_DISCOUNT_PERCENT:=0}" "${PRICE_OVERRIDES:=}"
# the bill per identity: a CUR 2.0 export with IAM principal data (docs/deploy.md); its lines land up to 72 h late
: "${CUR_EXPORT:=}" "${CUR_TABLE:=}"
if [[ -n "$CUR_EXPORT" ]]; then : "${RECONCILE_LAG_DAYS:=3}"; fi
: "${LOG_LEVEL:=INFO}" "${RECONCILE_LAG_DAYS:=2}" "${RECONCILE_COST_METRIC:=UnblendedCost}" "${RECONCILE_ALERT_PERCENT:=5}"
: "${ATTRIBUTION_KEYS:=}" "${BUDGETS:=}" "${SPIKE_FACTOR:=3}" "${SPIKE_MIN_USD:=1.00}"

: "${SES_REGION:=}" "${ALERT_RECIPIENTS:=}" "${ALLOWED_RECIPIENTS:=}"
# Alarms must reach somebody: an address to subscribe, or an existing topic (the stack's Rules refuse neither/both).
if [[ -z "$ALARM_EMAIL" && -z "$ALARM_TOPIC_ARN" ]] || [[ -n "$ALARM_EMAIL" && -n "$ALARM_TOPIC_ARN" ]]; then
  echo "set ALARM_EMAIL (an address the stack subscribes to its alarm topic) or ALARM_TOPIC_ARN (an existing" \
    "topic the alarms publish to), one of the two: alarms nobody receives are no alarms" >&2
  exit 2
fi

# One region for every call: AWS_REGION, AWS_DEFAULT_REGION, else the profile's (scripts/region.sh).
source scripts/region.sh
resolve_region
# Addresses as the stack takes them: no spaces, lower case (IAM compares ses:Recipients case-sensitively).
lower() { tr -d '[:space:]' <<<"$1" | tr '[:upper:]' '[:lower:]'; }
RECIPIENTS=$(lower "$RECIPIENTS") ALERT_RECIPIENTS=$(lower "$ALERT_RECIPIENTS")
ALLOWED_RECIPIENTS=$(lower "$ALLOWED_RECIPIENTS")
# Who may receive reports and alerts: by default the domains of RECIPIENTS (the function's own default), given to
# the stack explicitly so that the role's SES grant carries them as its ses:Recipients condition.
if [[ -z "$ALLOWED_RECIPIENTS" ]]; then
  ALLOWED_RECIPIENTS=$(tr ',' '\n' <<<"$RECIPIENTS" | sed -n 's/^[^@]*@/@/p' | sort -u | paste -sd, -)
fi

# The identities the role may send through: the sender's (its verified address, else its domain) and the verified
# recipients' (every recipient, in the SES sandbox); ses_check.sh stops here when SES would not deliver.
ses=$(AWS_REGION="$region" SES_REGION="$SES_REGION" RECIPIENTS="$RECIPIENTS" ALERT_RECIPIENTS="$ALERT_RECIPIENTS" \
  ALLOWED_RECIPIENTS="$ALLOWED_RECIPIENTS" scripts/ses_check.sh)
SENDER_IDENTITY=$(sed -n 1p <<<"$ses")
recipient_identities=$(sed -n 2p <<<"$ses")
SES_RECIPIENT_IDENTITY_ARNS=
if [[ -n "$recipient_identities" ]]; then
  caller=$(aws sts get-caller-identity --region "$region" --query Arn --output text)  # arn:<partition>:...:<account>:...
  partition=$(cut -d: -f2 <<<"$caller") account=$(cut -d: -f5 <<<"$caller")
  SES_RECIPIENT_IDENTITY_ARNS=$(tr ',' '\n' <<<"$recipient_identities" |
    sed "s|^|arn:$partition:ses:${SES_REGION:-$region}:$account:identity/|" | paste -sd, -)
fi

# The package must sit in a bucket of the function's region: create it there, or check where it is.
if ! aws s3api head-bucket --bucket "$ARTIFACT_BUCKET" --region "$region" 2>/dev/null; then
  echo "creating the artifact bucket $ARTIFACT_BUCKET in $region" >&2
  if [[ "$region" == "us-east-1" ]]; then
    aws s3api create-bucket --bucket "$ARTIFACT_BUCKET" --region "$region" >/dev/null
  else
    aws s3api create-bucket --bucket "$ARTIFACT_BUCKET" --region "$region" \
      --create-bucket-configuration "LocationConstraint=$region" >/dev/null
  fi
  aws s3api put-public-access-block --bucket "$ARTIFACT_BUCKET" --region "$region" \
    --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
else
  where=$(aws s3api get-bucket-location --bucket "$ARTIFACT_BUCKET" --region "$region" \
    --query LocationConstraint --output text)
  [[ "$where" == "None" || "$where" == "null" || -z "$where" ]] && where=us-east-1
  if [[ "$where" != "$region" ]]; then
    echo "the artifact bucket $ARTIFACT_BUCKET is in $where; Lambda reads its package from $region: use a bucket there" >&2
    exit 1
  fi
fi

artifact=dist/bedrock-usage-report.zip
key="bedrock-usage-report/$(sha256sum "$artifact" | cut -c1-16).zip"  # a new key per build: the stack sees the change
aws s3 cp "$artifact" "s3://$ARTIFACT_BUCKET/$key" --region "$region"
# The template goes through the artifact bucket too: CloudFormation takes at most 51,200 bytes inline.
aws cloudformation deploy \
  --region "$region" \
  --template-file cloudformation/template.yaml \
  --s3-bucket "$ARTIFACT_BUCKET" --s3-prefix bedrock-usage-report/templates \
  --stack-name "$STACK_NAME" \
  --capabilities CAPABILITY_IAM \
  --no-fail-on-empty-changeset \
  --parameter-overrides \
    "LogGroupArns=$LOG_GROUP_ARNS" "Sender=$SENDER" "SenderIdentity=$SENDER_IDENTITY" "Recipients=$RECIPIENTS" \
    "AllowedRecipients=$ALLOWED_RECIPIENTS" "SesRecipientIdentityArns=$SES_RECIPIENT_IDENTITY_ARNS" \
    "ReportTimezone=$REPORT_TIMEZONE" "ScheduleExpression=$SCHEDULE_EXPRESSION" "ReportBucketName=$REPORT_BUCKET_NAME" \
    "AlarmEmail=$ALARM_EMAIL" "AlarmTopicArn=$ALARM_TOPIC_ARN" "BreakGlassRoleArn=$BREAK_GLASS_ROLE_ARN" \
    "ArtifactBucket=$ARTIFACT_BUCKET" "ArtifactKey=$key" "PandasLayerArn=$PANDAS_LAYER_ARN" "PandasLayerVersion=$PANDAS_LAYER_VERSION" \
    "ReservedConcurrency=$RESERVED_CONCURRENCY" "SesRegion=$SES_REGION" "QueryConcurrency=$QUERY_CONCURRENCY" \
    "LinkExpiryHours=$LINK_EXPIRY_HOURS" "ZipAttachmentAboveMB=$ZIP_ATTACHMENT_ABOVE_MB" "PriceDiscountPercent=$PRICE_DISCOUNT_PERCENT" \
    "PriceOverrides=$PRICE_OVERRIDES" "LogLevel=$LOG_LEVEL" "ReconcileLagDays=$RECONCILE_LAG_DAYS" \
    "ReconcileCostMetric=$RECONCILE_COST_METRIC" "ReconcileAlertPercent=$RECONCILE_ALERT_PERCENT" \
    "AttributionKeys=$ATTRIBUTION_KEYS" "Budgets=$BUDGETS" "SpikeFactor=$SPIKE_FACTOR" "SpikeMinUsd=$SPIKE_MIN_USD" \
    "CurExport=$CUR_EXPORT" "CurTable=$CUR_TABLE" \
    "LogSource=$LOG_SOURCE" "LogS3Location=$LOG_S3_LOCATION" "LogBucketKmsKeyArn=$LOG_BUCKET_KMS_KEY_ARN"
aws cloudformation describe-stacks --region "$region" --stack-name "$STACK_NAME" --query 'Stacks[0].Outputs' --output table
