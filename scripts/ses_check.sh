#!/usr/bin/env bash
# Before `make deploy`: which SES identities the role must be granted, and will SES deliver to the recipients?
# SES authorizes a send against the sender's identity (the address identity when that address is verified, else its
# domain) and, besides it, against each recipient that is a verified identity of the account, which in the SES
# sandbox every recipient must be: a role granted only the sender's identity gets "AccessDenied ... on resource
# ...:identity/<recipient>". Prints on stdout, one a line:
#   1. the sender's identity to grant;
#   2. the recipients' verified identities to grant besides it (comma-separated; empty when there are none).
# Advice and errors go to stderr. Stops (exit 1), printing the commands that fix it, when the sender has no verified
# identity, or when the account is in the sandbox and a recipient is not verified (SES would drop their email).
# Needs SENDER and RECIPIENTS. ALERT_RECIPIENTS (the budgets' recipients) must be deliverable too; ALLOWED_RECIPIENTS
# (who a manual run may name: addresses and @domain entries) contribute their verified identities. SES_REGION: the
# region SES sends from, when it is not the stack's (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's).
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

identity_of() {  # the identity SES authorizes an address against: the address when verified, else its domain
  if verified "$1"; then
    echo "$1"
  elif verified "${1#*@}"; then
    echo "${1#*@}"
  fi
}

identity=$(identity_of "$address")
if [[ -z "$identity" ]]; then
  cat >&2 <<MSG
SES in $region has neither $address nor $domain verified for sending. Verify one, then deploy again:
  aws sesv2 create-email-identity --email-identity $address --region $region   (then click the link SES mails)
  aws sesv2 create-email-identity --email-identity $domain --region $region    (then publish its DKIM records)
MSG
  exit 1
fi
echo "SES in $region sends as $address through the verified identity $identity" >&2

granted=()  # recipient identities to grant, once each, the sender's own left out (it is granted already)
grant() {
  local id
  [[ "$1" == "$identity" ]] && return 0
  for id in ${granted[@]+"${granted[@]}"}; do [[ "$id" == "$1" ]] && return 0; done
  granted+=("$1")
}

unverified=()
IFS=', ' read -r -a recipients <<<"$RECIPIENTS,${ALERT_RECIPIENTS:-}"
for recipient in ${recipients[@]+"${recipients[@]}"}; do
  [[ -n "$recipient" ]] || continue
  id=$(identity_of "$recipient")
  if [[ -n "$id" ]]; then grant "$id"; else unverified+=("$recipient"); fi
done
IFS=', ' read -r -a allowed <<<"${ALLOWED_RECIPIENTS:-}"
for entry in ${allowed[@]+"${allowed[@]}"}; do
  if [[ "$entry" == @* ]]; then
    verified "${entry#@}" && grant "${entry#@}"
  elif [[ -n "$entry" ]]; then
    id=$(identity_of "$entry")
    [[ -z "$id" ]] || grant "$id"
  fi
done

production=$(aws sesv2 get-account --region "$region" --query ProductionAccessEnabled --output text 2>/dev/null || true)
if [[ "$production" != "True" && "$production" != "true" ]]; then
  echo "SES in $region is in the sandbox: it delivers to verified addresses and domains only." >&2
  if ((${#unverified[@]})); then
    {
      echo "Not verified, so they would get nothing: ${unverified[*]}"
      echo "Verify each (SES mails it a link to click), then deploy again:"
      for recipient in "${unverified[@]}"; do
        echo "  aws sesv2 create-email-identity --email-identity $recipient --region $region"
      done
      echo "or leave the sandbox (AWS reviews the request, usually within a day), then deploy again:"
      echo "  aws sesv2 put-account-details --production-access-enabled --mail-type TRANSACTIONAL" \
        "--website-url <https://your-site> --use-case-description '<who gets the reports>' --region $region"
    } >&2
    exit 1
  fi
fi
if ((${#granted[@]})); then
  echo "the role is also granted the recipients' verified identities: ${granted[*]}" >&2
fi
echo "$identity"
(IFS=,; echo "${granted[*]:-}")
