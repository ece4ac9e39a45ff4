#!/usr/bin/env bash
# Before `make deploy`: which SES identity may send as SENDER, and is the account still in the SES sandbox?
# SES authorizes a send against the address identity when that address is verified, else against its domain:
# granting the role the other one gives AccessDenied. Prints the identity to grant on stdout; advice on stderr.
# Needs SENDER and RECIPIENTS; SES_REGION (default: the stack's region, AWS_REGION, AWS_DEFAULT_REGION or the
# profile's); ALERT_RECIPIENTS (optional: the budgets' recipients, who get budget and spike alerts) are checked
# against the sandbox too.
set -euo pipefail
: "${SENDER:?set SENDER}" "${RECIPIENTS:?set RECIPIENTS}"
source "$(dirname "$0")/region.sh"
if [[ -n "${SES_REGION:-}" ]]; then
  region="$SES_REGION"
  echo "SES region: $region (from SES_REGION)" >&2
else
  resolve_region
fi

address="$SENDER"
[[ "$address" == *"<"*">"* ]] && address="${address##*<}" && address="${address%%>*}"
domain="${address#*@}"

verified() {  # is this identity verified for sending in $region?
  local status
  status=$(aws sesv2 get-email-identity --email-identity "$1" --region "$region" \
    --query VerifiedForSendingStatus --output text 2>/dev/null || true)
  [[ "$status" == "True" || "$status" == "true" ]]
}

if verified "$address"; then
  identity="$address"
elif verified "$domain"; then
  identity="$domain"
else
  cat >&2 <<MSG
SES in $region has neither $address nor $domain verified for sending. Verify one, then deploy again:
  aws sesv2 create-email-identity --email-identity $address --region $region   (then click the link SES mails)
  aws sesv2 create-email-identity --email-identity $domain --region $region    (then publish its DKIM records)
MSG
  exit 1
fi
echo "SES in $region sends as $address through the verified identity $identity" >&2

production=$(aws sesv2 get-account --region "$region" --query ProductionAccessEnabled --output text 2>/dev/null || true)
if [[ "$production" != "True" && "$production" != "true" ]]; then
  unverified=()
  IFS=', ' read -r -a recipients <<<"$RECIPIENTS,${ALERT_RECIPIENTS:-}"
  for recipient in "${recipients[@]}"; do
    [[ -n "$recipient" ]] && ! verified "$recipient" && ! verified "${recipient#*@}" && unverified+=("$recipient")
  done
  echo "SES in $region is in the sandbox: it mails verified addresses only." >&2
  if ((${#unverified[@]})); then
    echo "  not verified, so they would get nothing: ${unverified[*]}" >&2
    echo "  verify them (aws sesv2 create-email-identity --email-identity <address> --region $region)," >&2
    echo "  or request production access (SES console: Account dashboard > Request production access)." >&2
  fi
fi
echo "$identity"
