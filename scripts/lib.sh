# shellcheck shell=bash
# Helpers sourced by scripts/dev and scripts/test. They bring up what the backend needs locally
# (Postgres, an SQS/S3 emulator, Python tools) with no configuration, reusing whatever is already
# running so that a second run is fast. Everything started in the background is remembered and
# stopped when the calling script exits.
#
# Source it, don't run it:  source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -n "${_BACKEND_LIB_LOADED:-}" ]] && return 0
_BACKEND_LIB_LOADED=1

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# .local/ is git-ignored: venv, throwaway database cluster and logs live there.
LOCAL_DIR="$REPO_ROOT/.local"
# BACKEND_LOG_DIR: a second stack (the stack test) keeps its logs apart.
LOG_DIR="${BACKEND_LOG_DIR:-$LOCAL_DIR/log}"
VENV_DIR="$LOCAL_DIR/venv"

# Colour only for a person at a terminal; CI logs stay plain.
if [[ -t 2 ]]; then
  _C_BLUE=$'\033[1;34m' _C_YELLOW=$'\033[1;33m' _C_RED=$'\033[1;31m' _C_BOLD=$'\033[1m' _C_OFF=$'\033[0m'
else
  _C_BLUE='' _C_YELLOW='' _C_RED='' _C_BOLD='' _C_OFF=''
fi
log() { printf '%s==>%s %s\n' "$_C_BLUE" "$_C_OFF" "$*" >&2; }
warn() { printf '%swarning:%s %s\n' "$_C_YELLOW" "$_C_OFF" "$*" >&2; }
die() {
  printf '%serror:%s %s\n' "$_C_RED" "$_C_OFF" "$*" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------------
# Cleanup: background processes and stop hooks, run once on EXIT, INT or TERM.
# ---------------------------------------------------------------------------------------------

_BG_PIDS=()
_BG_NAMES=()
_EXIT_HOOKS=()
_CLEANED_UP=

# Registers a command (a function name, usually) to run when the script exits.
on_exit() { _EXIT_HOOKS+=("$1"); }

# start_bg NAME LOGFILE CMD... runs CMD in the background in a session of its own, so that all
# it spawns (cargo and the functions it runs, say) can be stopped together, and so that a Ctrl-C
# in the terminal reaches only this script, which then stops everything in order. Sets BG_PID.
start_bg() {
  local name=$1 logfile=$2
  shift 2
  mkdir -p "$(dirname "$logfile")"
  # Non-interactive bash has job control off, so the child is no group leader and setsid execs
  # in place: $! is then the pid, the process group id and the session id. Each run starts a
  # fresh log.
  setsid "$@" >"$logfile" 2>&1 </dev/null &
  BG_PID=$!
  track_pid "$name" "$BG_PID"
}

# Remembers a background process started some other way, to be stopped on exit.
track_pid() {
  _BG_NAMES+=("$1")
  _BG_PIDS+=("$2")
}

# Sends a signal to everything start_bg started under PID: its session (cargo-lambda puts the
# functions it runs in process groups of their own, but they stay in the session), else its
# process group, else the process alone (track_pid'd ones).
_signal_tree() {
  local sig=$1 pid=$2
  if command -v pkill >/dev/null; then
    pkill "-$sig" -s "$pid" 2>/dev/null || true
  fi
  kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null || true
}

# Stops one background tree: TERM first, KILL for whatever is left after a grace period.
_stop_tree() {
  local pid=$1 name=$2 i
  kill -0 "$pid" 2>/dev/null || return 0
  _signal_tree TERM "$pid"
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && warn "$name (pid $pid) ignored SIGTERM; killing it"
  _signal_tree KILL "$pid"
  wait "$pid" 2>/dev/null || true
}

_cleanup() {
  [[ -n "$_CLEANED_UP" ]] && return 0
  _CLEANED_UP=1
  local i
  # Newest first: the things started last depend on the ones started before them.
  for ((i = ${#_BG_PIDS[@]} - 1; i >= 0; i--)); do
    _stop_tree "${_BG_PIDS[i]}" "${_BG_NAMES[i]}"
  done
  for ((i = ${#_EXIT_HOOKS[@]} - 1; i >= 0; i--)); do
    "${_EXIT_HOOKS[i]}" || true
  done
}

trap _cleanup EXIT
# Exit with the conventional 128+signal status; the EXIT trap then does the stopping.
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Small probes
# ---------------------------------------------------------------------------------------------

# True when something accepts TCP connections on HOST:PORT (bash's /dev/tcp: no curl needed).
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# wait_for_port HOST PORT SECONDS PID NAME LOGFILE: waits until the port answers, failing early
# (with the end of the log) if the process that should open it has died.
wait_for_port() {
  local host=$1 port=$2 seconds=$3 pid=$4 name=$5 logfile=$6 i
  for ((i = 0; i < seconds * 10; i++)); do
    port_open "$host" "$port" && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$logfile" >&2 || true
      die "$name exited before answering on $host:$port (log: $logfile)"
    fi
    sleep 0.1
  done
  tail -n 20 "$logfile" >&2 || true
  die "$name did not answer on $host:$port within ${seconds}s (log: $logfile)"
}

# ---------------------------------------------------------------------------------------------
# Postgres
# ---------------------------------------------------------------------------------------------

LOCAL_PG_PORT=${LOCAL_PG_PORT:-54329}

# Prints the directory holding the server binaries (initdb, pg_ctl), newest version first.
_pg_bindir() {
  local initdb dir
  if initdb=$(command -v initdb 2>/dev/null); then
    dirname "$(readlink -f "$initdb")"
    return 0
  fi
  # An unmatched glob stays literal and fails the -x test below.
  for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k4 -V -r); do
    [[ -x "$dir/initdb" ]] && { echo "$dir"; return 0; }
  done
  return 1
}

# Runs a client tool (psql, createdb, pg_isready) from PATH, else from the server's bin dir.
_pg_client() {
  local tool=$1 dir
  shift
  if command -v "$tool" >/dev/null 2>&1; then
    "$tool" "$@"
  elif dir=$(_pg_bindir) && [[ -x "$dir/$tool" ]]; then
    "$dir/$tool" "$@"
  else
    return 127
  fi
}

# initdb and postgres refuse to run as root, so root runs them as an unprivileged user.
_PG_OS_USER=
_pg_os_user() {
  if [[ $EUID -ne 0 ]]; then
    _PG_OS_USER=$(id -un)
  elif getent passwd postgres >/dev/null; then
    _PG_OS_USER=postgres
  else
    log "creating system user backend-pg to run the throwaway Postgres cluster"
    getent passwd backend-pg >/dev/null ||
      useradd --system --no-create-home --shell /usr/sbin/nologin backend-pg
    _PG_OS_USER=backend-pg
  fi
}

_as_pg_user() {
  if [[ $EUID -ne 0 ]]; then
    "$@"
  elif command -v runuser >/dev/null 2>&1; then
    runuser -u "$_PG_OS_USER" -- "$@"
  else
    su -s /bin/sh "$_PG_OS_USER" -c "$(printf '%q ' "$@")"
  fi
}

# Installs Postgres from Debian's packages, but only where nobody is asked anything: as root,
# without a terminal or under CI. A developer's machine gets a message instead.
_install_postgres() {
  if [[ $EUID -eq 0 ]] && { [[ -n "${CI:-}" ]] || [[ ! -t 0 ]]; } && command -v apt-get >/dev/null; then
    log "Postgres is not installed; installing it with apt-get (root, non-interactive)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    return 0
  fi
  die "Postgres is not installed (no initdb in PATH or /usr/lib/postgresql/*/bin), and no
server on 127.0.0.1:5432 lets the postgres role in without a password.
Install it (Debian/Ubuntu: sudo apt-get install postgresql), or set DATABASE_URL to a server
where this user may create databases."
}

# The cluster directory must be reachable by the user that runs it. A repository under a
# private home (/root is 0700) isn't, for the postgres user: fall back to a per-repo temp dir.
_pg_cluster_dir() {
  local dir="$LOCAL_DIR/pg"
  if [[ $EUID -eq 0 ]]; then
    mkdir -p "$dir"
    chown "$_PG_OS_USER" "$dir"
    if ! _as_pg_user test -w "$dir"; then
      dir="${TMPDIR:-/tmp}/backend-pg-$(printf '%s' "$REPO_ROOT" | cksum | cut -d' ' -f1)"
      mkdir -p "$dir"
      chown "$_PG_OS_USER" "$dir"
      chmod 700 "$dir"
    fi
  else
    mkdir -p "$dir"
  fi
  echo "$dir"
}

_PG_STARTED_DIR=
_stop_throwaway_postgres() {
  [[ -n "$_PG_STARTED_DIR" ]] || return 0
  log "stopping the throwaway Postgres cluster"
  _as_pg_user "$(_pg_bindir)/pg_ctl" -D "$_PG_STARTED_DIR/data" -m fast -w stop >/dev/null || true
}

# Starts (creating it on first use) a throwaway cluster on 127.0.0.1:$LOCAL_PG_PORT. Speed over
# durability: it holds nothing worth a fsync.
_start_throwaway_postgres() {
  local bindir dir
  if ! bindir=$(_pg_bindir); then
    _install_postgres
    # Debian's package may have started its own cluster on 5432, but with password auth over
    # TCP; ours (trust auth, known port) is the one to rely on.
    bindir=$(_pg_bindir) || die "Postgres was installed but initdb is still missing"
  fi
  _pg_os_user
  dir=$(_pg_cluster_dir)

  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    log "creating a throwaway Postgres cluster in $dir/data (user $_PG_OS_USER)"
    _as_pg_user "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C \
      >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    cat >>"$dir/data/postgresql.conf" <<CONF

# Written by scripts/lib.sh: a local, throwaway cluster.
listen_addresses = '127.0.0.1'
port = $LOCAL_PG_PORT
unix_socket_directories = ''
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  fi

  if _pg_client pg_isready -q -h 127.0.0.1 -p "$LOCAL_PG_PORT"; then
    log "reusing the Postgres already running on 127.0.0.1:$LOCAL_PG_PORT"
    return 0
  fi
  log "starting the throwaway Postgres cluster on 127.0.0.1:$LOCAL_PG_PORT"
  _as_pg_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null ||
    { tail -n 20 "$dir/postgres.log" >&2; die "pg_ctl could not start Postgres (log: $dir/postgres.log)"; }
  _PG_STARTED_DIR=$dir
  on_exit _stop_throwaway_postgres
}

# True when the server at 127.0.0.1:PORT lets the postgres role in without a password.
_pg_trusts_us() {
  PGCONNECT_TIMEOUT=5 _pg_client psql -w -h 127.0.0.1 -p "$1" -U postgres -d postgres \
    -Atqc 'SELECT 1' >/dev/null 2>&1
}

# Creates database $2 on 127.0.0.1:$1 unless it exists.
_pg_create_db() {
  local port=$1 db=$2 exists
  exists=$(_pg_client psql -w -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atqc \
    "SELECT 1 FROM pg_database WHERE datname = '$db'")
  if [[ "$exists" != 1 ]]; then
    log "creating database $db"
    _pg_client createdb -w -h 127.0.0.1 -p "$port" -U postgres "$db"
  fi
}

# ensure_postgres DBNAME: exports DATABASE_URL, for a role that may CREATE DATABASE (the tests'
# sqlx::test makes one per test). Order: the caller's DATABASE_URL; a trusting server on 5432;
# a throwaway cluster of our own. The cluster is stopped on exit only if this run started it;
# set KEEP_POSTGRES=1 to leave it running for the next run.
ensure_postgres() {
  local db=${1:?ensure_postgres needs a database name} port
  if [[ -n "${DATABASE_URL:-}" ]]; then
    log "using DATABASE_URL from the environment"
    return 0
  fi
  if _pg_client pg_isready -q -h 127.0.0.1 -p 5432 && _pg_trusts_us 5432; then
    port=5432
    log "using the Postgres server on 127.0.0.1:5432"
  else
    _pg_client pg_isready -q -h 127.0.0.1 -p 5432 &&
      log "the server on 127.0.0.1:5432 wants a password; using a throwaway cluster instead"
    _start_throwaway_postgres
    [[ "${KEEP_POSTGRES:-}" == 1 ]] && _PG_STARTED_DIR=
    port=$LOCAL_PG_PORT
  fi
  _pg_create_db "$port" "$db"
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/$db"
}

# Prints a URL with any password replaced, for banners and logs.
redact_url() {
  sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#' <<<"$1"
}

# ---------------------------------------------------------------------------------------------
# Python tools in .local/venv
# ---------------------------------------------------------------------------------------------

# Maps a tool name to "pip requirement|glob of a file whose presence means it is installed".
# Checking a file costs nothing, where asking pip costs a second per package.
_venv_tool() {
  case $1 in
    moto) echo 'moto[server]|bin/moto_server' ;;
    boto3) echo 'boto3|lib/python3*/site-packages/boto3/__init__.py' ;;
    cargo-lambda) echo 'cargo-lambda|bin/cargo-lambda' ;;
    cfn-lint) echo 'cfn-lint|bin/cfn-lint' ;;
    localstripe) echo 'localstripe==1.15.10|bin/localstripe' ;;
    aws-sam-cli) echo 'aws-sam-cli|bin/sam' ;;
    # scripts/ws-gateway.py's one dependency (localstripe brings it too).
    aiohttp) echo 'aiohttp|lib/python3*/site-packages/aiohttp/__init__.py' ;;
    *) return 1 ;;
  esac
}

# ensure_venv TOOL...: installs (once) only the tools asked for into .local/venv and puts its
# bin/ first on PATH. Tools: moto boto3 cargo-lambda cfn-lint localstripe aws-sam-cli aiohttp.
ensure_venv() {
  local tool entry spec marker missing=()
  if [[ ! -x "$VENV_DIR/bin/python" ]]; then
    command -v python3 >/dev/null || die "python3 is needed for the local tools; install Python 3"
    log "creating the Python venv in $VENV_DIR"
    python3 -m venv "$VENV_DIR" ||
      die "python3 -m venv failed (Debian/Ubuntu: apt-get install python3-venv)"
  fi
  for tool in "$@"; do
    entry=$(_venv_tool "$tool") || die "ensure_venv: unknown tool '$tool'"
    spec=${entry%%|*}
    marker=${entry#*|}
    compgen -G "$VENV_DIR/$marker" >/dev/null || missing+=("$spec")
  done
  if ((${#missing[@]})); then
    log "installing into the venv: ${missing[*]}"
    "$VENV_DIR/bin/python" -m pip install -q --disable-pip-version-check "${missing[@]}" ||
      die "pip could not install: ${missing[*]}"
  fi
  case ":$PATH:" in
    *":$VENV_DIR/bin:"*) ;;
    *) export PATH="$VENV_DIR/bin:$PATH" ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# AWS emulator (moto) and the notifications queues
# ---------------------------------------------------------------------------------------------

# Exports the AWS_* variables the SDKs need to talk to the emulator, keeping any already set.
_export_aws_env() {
  : "${AWS_ENDPOINT_URL:=http://127.0.0.1:$MOTO_PORT}"
  : "${AWS_ACCESS_KEY_ID:=test}"
  : "${AWS_SECRET_ACCESS_KEY:=test}"
  : "${AWS_REGION:=us-east-1}"
  : "${AWS_DEFAULT_REGION:=$AWS_REGION}"
  export AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION AWS_DEFAULT_REGION
}

# ensure_moto: an S3 + SQS emulator on 127.0.0.1:$MOTO_PORT (default 5000), reused if something
# already answers there. Needs `ensure_venv moto` first.
ensure_moto() {
  MOTO_PORT=${MOTO_PORT:-5000}
  if port_open 127.0.0.1 "$MOTO_PORT"; then
    log "reusing the AWS emulator already answering on 127.0.0.1:$MOTO_PORT"
  else
    command -v moto_server >/dev/null || die "moto_server not found: call 'ensure_venv moto' first"
    log "starting the AWS emulator (moto) on 127.0.0.1:$MOTO_PORT"
    start_bg moto "$LOG_DIR/moto.log" moto_server -H 127.0.0.1 -p "$MOTO_PORT"
    wait_for_port 127.0.0.1 "$MOTO_PORT" 60 "$BG_PID" moto_server "$LOG_DIR/moto.log"
  fi
  _export_aws_env
}

# ensure_localstripe: the stateful Stripe fake on 127.0.0.1:$STRIPE_PORT (default 8420), reused
# if something already answers there, else started with an empty store. Exports
# STRIPE_API_BASE. Needs `ensure_venv localstripe` first.
ensure_localstripe() {
  STRIPE_PORT=${STRIPE_PORT:-8420}
  if port_open 127.0.0.1 "$STRIPE_PORT"; then
    log "reusing the Stripe fake already answering on 127.0.0.1:$STRIPE_PORT"
  else
    command -v localstripe >/dev/null || die "localstripe not found: call 'ensure_venv localstripe' first"
    log "starting the Stripe fake (localstripe) on 127.0.0.1:$STRIPE_PORT"
    # Through our wrapper: it fixes the fake's lost deliveries (scripts/stripe-fake.py).
    start_bg localstripe "$LOG_DIR/localstripe.log" \
      "$VENV_DIR/bin/python" "$REPO_ROOT/scripts/stripe-fake.py" --port "$STRIPE_PORT" --from-scratch
    wait_for_port 127.0.0.1 "$STRIPE_PORT" 60 "$BG_PID" localstripe "$LOG_DIR/localstripe.log"
  fi
  : "${STRIPE_API_BASE:=http://127.0.0.1:$STRIPE_PORT}"
  export STRIPE_API_BASE
}

# ensure_queues: the emulator's side of template.yaml. The notifications queue and the upload
# events queue, each with a dead-letter queue redriving after 5 receives (30 s visibility
# locally, 180 s deployed, so a failed message comes back quickly); the uploads bucket with
# browser CORS for the frontend's origins, notifying the upload events queue on ObjectCreated
# as the deployed bucket does. Exports NOTIFICATIONS_QUEUE_URL, NOTIFICATIONS_DLQ_URL,
# UPLOAD_EVENTS_QUEUE_URL, UPLOADS_BUCKET and S3_FORCE_PATH_STYLE. Idempotent.
ensure_queues() {
  local urls
  ensure_venv boto3
  : "${UPLOADS_BUCKET:=uploads}"
  urls=$("$VENV_DIR/bin/python" - "${NOTIFICATIONS_QUEUE_NAME:-notifications}" "$UPLOADS_BUCKET" \
    "${CORS_ALLOWED_ORIGINS:-http://localhost:3000}" <<'PY'
import json, os, sys
import boto3

name, bucket, origins = sys.argv[1], sys.argv[2], sys.argv[3]
endpoint = os.environ["AWS_ENDPOINT_URL"]
sqs = boto3.client("sqs", endpoint_url=endpoint)
s3 = boto3.client("s3", endpoint_url=endpoint)

def queue(name, attributes):
    try:
        return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    except sqs.exceptions.QueueNameExists:
        # Exists with other attributes (an older run): bring them up to date.
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        return url

def arn(url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

def with_dlq(name):
    dlq = queue(f"{name}-dlq", {"MessageRetentionPeriod": "1209600"})
    main = queue(name, {
        "VisibilityTimeout": "30",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn(dlq), "maxReceiveCount": "5"}),
    })
    return main, dlq

notifications, notifications_dlq = with_dlq(name)
upload_events, _ = with_dlq("upload-events")

try:
    s3.create_bucket(Bucket=bucket)
except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
    pass
s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
    "AllowedOrigins": [o.strip() for o in origins.split(",") if o.strip()],
    "AllowedMethods": ["PUT", "GET"],
    "AllowedHeaders": ["content-type", "if-none-match"],
    "ExposeHeaders": ["etag"],
    "MaxAgeSeconds": 600,
}]})
s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
    "QueueConfigurations": [{"QueueArn": arn(upload_events), "Events": ["s3:ObjectCreated:*"]}],
})
print(notifications)
print(notifications_dlq)
print(upload_events)
PY
  ) || die "could not create the queues and the bucket on $AWS_ENDPOINT_URL"
  NOTIFICATIONS_QUEUE_URL=$(sed -n 1p <<<"$urls")
  NOTIFICATIONS_DLQ_URL=$(sed -n 2p <<<"$urls")
  UPLOAD_EVENTS_QUEUE_URL=$(sed -n 3p <<<"$urls")
  # The emulator serves buckets at http://host/bucket, not at bucket.host.
  S3_FORCE_PATH_STYLE=true
  export NOTIFICATIONS_QUEUE_URL NOTIFICATIONS_DLQ_URL UPLOAD_EVENTS_QUEUE_URL UPLOADS_BUCKET S3_FORCE_PATH_STYLE
}

# ---------------------------------------------------------------------------------------------
# Node.js tools and Chromium (the browser test and the typed-client check)
# ---------------------------------------------------------------------------------------------

# ensure_node_modules: the packages of tests/js (exact versions from its package-lock.json),
# installed once and again whenever the lock changes.
ensure_node_modules() {
  local dir="$REPO_ROOT/tests/js" stamp
  command -v npm >/dev/null || die "npm is needed for the JavaScript checks; install Node.js 20+"
  stamp="$dir/node_modules/.lock-installed"
  if [[ ! -f "$stamp" || "$dir/package-lock.json" -nt "$stamp" ]]; then
    log "installing tests/js packages (npm ci)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in tests/js"
    touch "$stamp"
  fi
}

# ensure_chromium: Debian's Chromium for the headless browser test; installed with apt-get
# when missing and this runs as root (CI), else a clear instruction. Exports CHROMIUM.
ensure_chromium() {
  CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
  if [[ -z "$CHROMIUM" ]]; then
    [[ $(id -u) == 0 ]] || die "Chromium is needed for the browser test: apt-get install chromium (or set CHROMIUM)"
    mkdir -p "$LOG_DIR"
    log "installing Chromium (apt-get install chromium)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends chromium >"$LOG_DIR/apt-chromium.log" 2>&1 ||
      { apt-get update >>"$LOG_DIR/apt-chromium.log" 2>&1 &&
        apt-get install -y --no-install-recommends chromium >>"$LOG_DIR/apt-chromium.log" 2>&1; } ||
      die "could not install Chromium; see $LOG_DIR/apt-chromium.log"
    CHROMIUM=$(command -v chromium)
  fi
  export CHROMIUM
}
