# Sourced by deploy.sh, stack.sh and ses_check.sh: the one AWS region a run of them uses, resolved once.
# AWS_REGION, else AWS_DEFAULT_REGION, else the profile's (`aws configure get region`, honouring AWS_PROFILE): the
# order of the AWS CLI v2 itself. Sets $region, says on stderr where it came from, and stops when there is none.
# Every aws call of the scripts then passes --region "$region": no call falls back to a region of its own.
resolve_region() {
  local source
  if [[ -n "${AWS_REGION:-}" ]]; then
    region="$AWS_REGION" source="AWS_REGION"
  elif [[ -n "${AWS_DEFAULT_REGION:-}" ]]; then
    region="$AWS_DEFAULT_REGION" source="AWS_DEFAULT_REGION"
  else
    region=$(aws configure get region 2>/dev/null || true)
    source="the profile ${AWS_PROFILE:-default} (aws configure get region)"
  fi
  if [[ -z "$region" ]]; then
    echo "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or give your profile one" \
      "(aws configure set region eu-west-1)" >&2
    exit 2
  fi
  if [[ ! "$region" =~ ^[a-z]+(-[a-z0-9]+)+$ ]]; then
    echo "the region '$region' (from $source) is not a region name like eu-west-1" >&2
    exit 2
  fi
  echo "region: $region (from $source)" >&2
}
