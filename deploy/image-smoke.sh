#!/usr/bin/env bash
# Build the container image from ./Dockerfile with Debian's own tools (buildah, podman, runc,
# debootstrap: no Docker daemon, no Docker Hub) and smoke-test it, as CI does on every run:
#   --help; init twice (idempotent); serve: /healthz, /readyz, the HEALTHCHECK; an issuance and a
#   revocation through the containerised API, the revocation on the CRL published by the
#   containerised worker from the containerised scheduler's and the outbox's jobs; the worker's
#   and scheduler's HEALTHCHECK (a stopped worker goes unhealthy); a scheduler killed with SIGKILL
#   is replaced; SIGTERM -> exit 0 within 30 s for serve, worker and scheduler; serve with an
#   unreachable database is one line.
# Against the PostgreSQL and Redis of the settings (--network host), CI's by default:
#   CA_SMOKE_PG_ADMIN, else DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test): the
#     admin connection; the smoke creates a database of its own there and drops only that one.
#   REDIS_URL (default redis://127.0.0.1:6379/0; a password in it is used): a database number of
#     its own, claimed in db 0 as the test suite claims theirs (so neither empties the other's)
#     and used only if it is empty; emptied at the end, because only this run wrote to it. No
#     free empty number: a private redis-server. CA_SMOKE_PRIVATE_REDIS=1: always a private one.
# It never FLUSHDBs a database it did not claim, and never drops a database it did not create.
#
# The base image python:3.11-slim-bookworm cannot be pulled here: a stand-in of the same name is
# debootstrapped once and kept (podman's image store; the rootfs tarball under $CACHE).
# Usage (as root): deploy/image-smoke.sh
#   CA_IMAGE_REBUILD_BASE=1  debootstrap the stand-in again    CA_SMOKE_KEEP_IMAGE=1  keep the image
#   CA_SMOKE_IMAGE=REF       smoke-test an image built before (no build)
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${CA_IMAGE_CACHE:-/var/cache/ca-service-ci}
BASE=localhost/python:3.11-slim-bookworm
BASE_PACKAGES=python3,python3-venv,python3-pip,python-is-python3,ca-certificates,netbase,tzdata
BASE_CONFIG=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]')
# a changed recipe changes these: the rootfs (tarball) is debootstrapped again, or only re-imported
ROOTFS_ID=$(printf 'bookworm minbase %s trim-apt-1' "$BASE_PACKAGES" | sha256sum | cut -c1-12)
RECIPE_ID=$(printf '%s ' "$ROOTFS_ID" "${BASE_CONFIG[@]}" | sha256sum | cut -c1-12)
PG_ADMIN=${CA_SMOKE_PG_ADMIN:-${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}}
PG_ADMIN=${PG_ADMIN/postgresql+psycopg:\/\//postgresql://} # psql's spelling of SQLAlchemy's URL
case $PG_ADMIN in postgresql://*) ;; *) echo "image-smoke: CA_SMOKE_PG_ADMIN/DATABASE_URL must be postgresql://, not ${PG_ADMIN%%:*}" >&2 && exit 2 ;; esac
REDIS_BASE=${REDIS_URL:-redis://127.0.0.1:6379/0}
case $REDIS_BASE in redis://*) ;; *) echo "image-smoke: REDIS_URL must be redis://HOST:PORT/N for the smoke" >&2 && exit 2 ;; esac
# host, port and password of REDIS_URL (redis-cli takes the password from REDISCLI_AUTH, not argv)
read -r REDIS_HOST REDIS_PORT REDIS_USERINFO < <(python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(p.hostname or "127.0.0.1", p.port or 6379, p.netloc.rpartition("@")[0] or "-")' "$REDIS_BASE")
[ "$REDIS_USERINFO" = - ] && REDIS_USERINFO=
REDIS_PASSWORD=$(python3 -c 'import sys, urllib.parse as u; print(u.unquote(u.urlsplit(sys.argv[1]).password or ""))' "$REDIS_BASE")
[ -n "$REDIS_PASSWORD" ] && export REDISCLI_AUTH=$REDIS_PASSWORD
pg_url_for() { # the admin URL with another database name: what the containers connect to
  python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(scheme="postgresql+psycopg", path="/" + sys.argv[2])))' "$PG_ADMIN" "$1"
}
RUN_ID=$(date +%s)-$$
IMAGE=localhost/ca-service:smoke-$RUN_ID
NAME=ca-smoke-$RUN_ID
WORK=$(mktemp -d /tmp/ca-image-smoke.XXXXXX)
DB=ca_image_smoke_${RUN_ID//-/_}
RDB= PRIVATE_REDIS= REDIS_TOKEN=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
CONTAINERS=()
t0=$(date +%s)
HARD_NOFILE=$(ulimit -Hn)

say() { echo "image-smoke: $* [$(($(date +%s) - t0))s]"; }
die() {
  echo "image-smoke: FAILED: $*" >&2
  exit 1
}
quiet_podman() { # podman without the healthcheck-timer complaints (no systemd here: checks run by hand)
  podman "$@" 2> >(grep -v 'systemd connection' >&2)
}

cleanup() {
  local status=$?
  set +e
  if [ "$status" -ne 0 ]; then
    for c in "${CONTAINERS[@]}"; do
      echo "----- podman logs $c (last 60 lines) -----" >&2
      podman logs --tail 60 "$c" >&2 2>&1
    done
  fi
  for c in "${CONTAINERS[@]}"; do quiet_podman rm -f -t 0 "$c" >/dev/null 2>&1; done
  [ "${CA_SMOKE_KEEP_IMAGE:-0}" = 1 ] || podman rmi -f "$IMAGE" >/dev/null 2>&1
  [ -n "${DB_CREATED:-}" ] && psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1
  if [ -n "${PRIVATE_REDIS:-}" ]; then
    kill "$(cat "$WORK/redis.pid")" 2>/dev/null
  elif [ -n "$RDB" ] && [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n 0 GET "ca-service-tests:db:$RDB")" = "$REDIS_TOKEN" ]; then
    # still ours (claimed, found empty, written only by this run's containers): empty it, release it
    redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n "$RDB" FLUSHDB >/dev/null
    redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n 0 DEL "ca-service-tests:db:$RDB" >/dev/null
  fi
  rm -rf "$WORK"
  [ "$status" -eq 0 ] || echo "image-smoke: failed after $(($(date +%s) - t0))s" >&2
  exit "$status"
}
trap cleanup EXIT

# --- tools ---------------------------------------------------------------------------------------
need=()
for tool in buildah podman runc debootstrap psql redis-cli openssl curl jq; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  say "installing Debian packages for: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah podman runc debootstrap postgresql-client redis-tools openssl curl jq >/dev/null
fi
RUN_OPTS=(--runtime runc --ulimit "nofile=$HARD_NOFILE:$HARD_NOFILE" --ulimit nproc=32768:32768 --network host)

# --- the stand-in base image (once; kept) ----------------------------------------------------------
mkdir -p "$CACHE"
exec 9>"$CACHE/base.lock"
flock 9 # two CI runs on one machine build it once
have_recipe=$(podman image inspect --format '{{index .Labels "ca-service.standin-recipe"}}' "$BASE" 2>/dev/null || true)
if [ "${CA_IMAGE_REBUILD_BASE:-0}" = 1 ] || [ "$have_recipe" != "$RECIPE_ID" ]; then
  tarball=$CACHE/python-3.11-slim-bookworm-standin-$ROOTFS_ID.tar
  if [ "${CA_IMAGE_REBUILD_BASE:-0}" = 1 ] || [ ! -s "$tarball" ]; then
    mirror=$(apt-get indextargets --format '$(REPO_URI)' 'Identifier: Packages' 2>/dev/null | grep -v -- -security | head -n1)
    mirror=${mirror:-http://deb.debian.org/debian/}
    say "debootstrapping the stand-in for $BASE from $mirror (minutes; once)"
    rootfs=$WORK/rootfs
    debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
      { tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap"; }
    # pip may install into the system Python (the official image's Python is not Debian's);
    # apt's caches and lists are not part of a slim image
    rm -rf "$rootfs/usr/lib/python3.11/EXTERNALLY-MANAGED" "$rootfs"/var/cache/apt/*.bin \
      "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  say "importing $tarball as $BASE"
  podman import --quiet "${BASE_CONFIG[@]}" \
    --change "LABEL ca-service.standin-recipe=$RECIPE_ID" "$tarball" "$BASE" >/dev/null
fi
flock -u 9

# --- build -----------------------------------------------------------------------------------------
# images of runs killed before their clean-up (a day old: never a concurrent run's)
podman images --noheading --filter 'reference=localhost/ca-service:smoke-*' --filter until=24h --format '{{.ID}}' |
  xargs -r podman rmi -f >/dev/null 2>&1 || true
# pip in the RUN steps must trust what the host trusts (a TLS-inspecting proxy's CA, if any)
printf '[global]\ncert = /run/ci-host/ca-certificates.crt\n' >"$WORK/pip.conf"
build_start=$(date +%s)
if [ -n "${CA_SMOKE_IMAGE:-}" ]; then # developing this script: test an image built before
  IMAGE=$CA_SMOKE_IMAGE CA_SMOKE_KEEP_IMAGE=1
else
  say "building $IMAGE"
  buildah bud --quiet --isolation chroot --pull=never --format docker --layers=false --force-rm \
    -v /etc/ssl/certs/ca-certificates.crt:/run/ci-host/ca-certificates.crt:ro \
    -v "$WORK/pip.conf:/etc/pip.conf:ro" -t "$IMAGE" . >"$WORK/build.log" 2>&1 ||
    { tail -40 "$WORK/build.log" >&2; die "buildah bud"; }
fi
build_seconds=$(($(date +%s) - build_start))
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
base_size=$(podman image inspect --format '{{.Size}}' "$BASE")
say "built in ${build_seconds}s: $((size / 1000000)) MB unpacked, $(((size - base_size) / 1000000)) MB above the base"
[ "$(podman image inspect --format '{{.Config.User}}' "$IMAGE")" = "10001:10001" ] || die "the image does not run as uid 10001"
podman image inspect "$IMAGE" | jq -e '.[0].Healthcheck.Test == ["CMD", "ca-service", "healthcheck"]' >/dev/null ||
  die "the image has no HEALTHCHECK (built in OCI format?)"

# --- the environment the containers share -----------------------------------------------------------
psql -q "$PG_ADMIN" -c "CREATE DATABASE \"$DB\"" >/dev/null || die "cannot create database $DB"
DB_CREATED=1
if [ "${CA_SMOKE_PRIVATE_REDIS:-0}" != 1 ]; then
  databases=$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" CONFIG GET databases 2>/dev/null | tail -n1)
  for n in $(seq 1 $((${databases:-1} - 1))); do
    if [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n 0 SET "ca-service-tests:db:$n" "$REDIS_TOKEN" NX EX 3600)" = OK ]; then
      if [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n "$n" DBSIZE)" = 0 ]; then
        RDB=$n && break
      fi # someone's data without a claim: not ours to use or to empty; give the number back
      redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n 0 DEL "ca-service-tests:db:$n" >/dev/null
    fi
  done
fi
if [ -z "$RDB" ]; then # every number held or in use, or asked for: a private Redis
  REDIS_HOST=127.0.0.1 REDIS_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  unset REDISCLI_AUTH
  say "no free, empty Redis database number at $REDIS_BASE (or CA_SMOKE_PRIVATE_REDIS=1): a redis-server of its own on port $REDIS_PORT"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log" || die "cannot start redis-server"
  wait_redis() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping >/dev/null 2>&1; }
  for _ in $(seq 50); do wait_redis && break; sleep 0.2; done
  RDB=0 PRIVATE_REDIS=1 REDIS_USERINFO=
fi
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
mkdir -p "$WORK/data" "$WORK/secrets"
openssl rand -base64 32 >"$WORK/secrets/ca_key_passphrase"
openssl rand -base64 32 >"$WORK/secrets/ca_root_key_passphrase" # the root key's own (ceremonies only)
chown 10001:10001 "$WORK/data" "$WORK/secrets/ca_key_passphrase" "$WORK/secrets/ca_root_key_passphrase" # as compose.yaml asks
chmod 700 "$WORK/data" && chmod 400 "$WORK/secrets/ca_key_passphrase" "$WORK/secrets/ca_root_key_passphrase"
CA_OPTS=(
  "${RUN_OPTS[@]}"
  -e "DATABASE_URL=$(pg_url_for "$DB")"
  -e "REDIS_URL=redis://${REDIS_USERINFO:+$REDIS_USERINFO@}$REDIS_HOST:$REDIS_PORT/$RDB"
  -e CA_KEY_PASSPHRASE_FILE=/run/secrets/ca_key_passphrase
  -e "CA_PUBLIC_BASE_URL=$URL"
  -e CA_GUNICORN_WORKERS=2
  -e CA_WORKER_HEARTBEAT_SECONDS=2 # the worker's HEALTHCHECK notices a hung worker within 19 s
  -e PROMETHEUS_MULTIPROC_DIR=/run/ca-metrics --tmpfs /run/ca-metrics
  -v "$WORK/data:/var/lib/ca-service"
  -v "$WORK/secrets/ca_key_passphrase:/run/secrets/ca_key_passphrase:ro"
)
ca() { quiet_podman run --rm "${CA_OPTS[@]}" "$IMAGE" "$@"; }
# A ceremony command (init): only it gets the root key's passphrase, as in compose.yaml's `init`.
ca_ceremony() {
  quiet_podman run --rm "${CA_OPTS[@]}" -e CA_ROOT_KEY_PASSPHRASE_FILE=/run/secrets/ca_root_key_passphrase \
    -v "$WORK/secrets/ca_root_key_passphrase:/run/secrets/ca_root_key_passphrase:ro" "$IMAGE" "$@"
}
start() { # start NAME ARGS...: a detached container of the image
  local name=$NAME-$1
  shift
  CONTAINERS+=("$name")
  quiet_podman run -d --name "$name" "${CA_OPTS[@]}" "$IMAGE" "$@" >/dev/null
}
healthy() { quiet_podman healthcheck run "$NAME-$1" >/dev/null 2>&1; }
wait_for() { # wait_for SECONDS WHAT COMMAND...
  local deadline=$(($(date +%s) + $1)) what=$2
  shift 2
  until "$@"; do [ "$(date +%s)" -lt "$deadline" ] || die "$what (waited)"; sleep 1; done
}
stop_cleanly() { # SIGTERM; exit 0 within 30 s
  local name=$NAME-$1 started status
  started=$(date +%s)
  quiet_podman kill --signal TERM "$name" >/dev/null
  status=$(timeout 40 podman wait "$name" || echo timeout)
  local took=$(($(date +%s) - started))
  [ "$status" = 0 ] && [ "$took" -le 30 ] || die "$1: SIGTERM gave exit status $status after ${took}s (want 0 within 30 s)"
  say "$1: SIGTERM -> exit 0 in ${took}s"
}

# --- as the image ------------------------------------------------------------------------------------
ca --help | grep -q 'healthcheck' || die "--help"
say "--help ok"
out=$(ca_ceremony init) || die "init: $out"
grep -q '^created: ' <<<"$out" || die "first init created nothing: $out"
out=$(ca_ceremony init) || die "second init: $out"
! grep -q '^created: ' <<<"$out" || die "second init was not idempotent: $out"
say "init twice ok (the second created nothing)"

out=$(quiet_podman run --rm "${CA_OPTS[@]}" -e DATABASE_URL=postgresql+psycopg://ca@127.0.0.1:9/ca "$IMAGE" serve 2>&1) &&
  die "serve started without a database"
[ "$(wc -l <<<"$out")" -eq 1 ] && grep -q '^ca-service: error: database unavailable: ' <<<"$out" ||
  die "serve with an unreachable database did not say so in one line: $out"
say "serve with an unreachable database: one line"

start api serve --bind "127.0.0.1:$PORT"
wait_for 90 "serve never answered /healthz" curl -fs -o /dev/null "$URL/healthz"
ready=$(curl -sS "$URL/readyz")
[ "$(jq -r .status <<<"$ready" 2>/dev/null)" = ok ] || curl -fsS -o /dev/null "$URL/readyz" || die "/readyz: $ready"
healthy api || die "serve's HEALTHCHECK: $(podman healthcheck run "$NAME-api" 2>&1)"
say "serve: /healthz, /readyz and the HEALTHCHECK ok"

operator=$(podman exec "$NAME-api" ca-service clients create --name smoke-operator --role operator --json | jq -r .token)
frontend=$(podman exec "$NAME-api" ca-service clients create --name smoke-frontend --role frontend --json | jq -r .token)
api() { # api TOKEN METHOD PATH [JSON]
  curl -fsS -X "$2" -H "Authorization: Bearer $1" -H 'Content-Type: application/json' ${4:+--data "$4"} "$URL$3"
}
api "$operator" PUT /v1/organizations/smoke '{"name": "Smoke", "login_method": "certificate"}' >/dev/null || die "create organisation"
api "$operator" PUT /v1/users/smoke-user '{"org_id": "smoke", "role": "general", "email": "smoke@example.com"}' >/dev/null ||
  die "create user"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=smoke -keyout "$WORK/key.pem" -out "$WORK/csr.pem" 2>/dev/null
issued=$(api "$frontend" POST /v1/users/smoke-user/certificates "$(jq -n --rawfile csr "$WORK/csr.pem" '{csr: $csr}')") || die "issuance"
serial=$(jq -r .serial <<<"$issued")
jq -r .certificate_pem <<<"$issued" >"$WORK/cert.pem"
jq -r .chain_pem <<<"$issued" >"$WORK/chain.pem"
curl -fsS "$URL/ca/root.crt" | openssl x509 -inform DER -out "$WORK/root.pem" || die "GET /ca/root.crt"
openssl verify -CAfile "$WORK/root.pem" -untrusted "$WORK/chain.pem" "$WORK/cert.pem" >/dev/null ||
  die "the issued certificate does not verify against the CA's chain"
say "issuance through the containerised API ok (serial $serial, verified by openssl)"

crl_number() { # of the issuing CRL the API serves; "none" before the first publication
  curl -fs -o "$WORK/crl.der" "$URL/crl/issuing.crl" || { echo none && return; }
  openssl crl -inform DER -in "$WORK/crl.der" -noout -crlnumber | cut -d= -f2
}
before=$(crl_number)
start worker worker
start scheduler scheduler
crl_moved() { [ "$(crl_number)" != "$before" ]; }
wait_for 90 "the worker never ran the CRL job the scheduler queued at start (CRL number still $before)" crl_moved
say "worker + scheduler: the scheduler's CRL job ran (CRL number $before -> $(crl_number))"
api "$operator" POST "/v1/certificates/$serial/revocation" '{"reason": "key_compromise"}' >/dev/null || die "revocation"
hex() { tr 'A-F' 'a-f' | sed 's/^0*//'; }
on_crl() {
  curl -fsS "$URL/crl/issuing.crl" | openssl crl -inform DER -noout -text |
    sed -n 's/^ *Serial Number: *//p' | hex | grep -qx "$(hex <<<"$serial")"
}
wait_for 60 "the revoked certificate $serial never appeared on the CRL" on_crl
say "revocation through the API -> outbox -> worker -> on the CRL within seconds"

healthy worker || die "worker's HEALTHCHECK: $(podman healthcheck run "$NAME-worker" 2>&1)"
healthy scheduler || die "scheduler's HEALTHCHECK: $(podman healthcheck run "$NAME-scheduler" 2>&1)"
pid=$(podman inspect --format '{{.State.Pid}}' "$NAME-worker")
kill -STOP "$pid" # hung: alive, Redis answering, but no heartbeat
unhealthy_worker() { ! healthy worker; }
wait_for 60 "a stopped (hung) worker stayed healthy" unhealthy_worker
kill -CONT "$pid"
wait_for 60 "the worker did not recover after SIGCONT" healthy worker
say "worker and scheduler HEALTHCHECKs ok; a hung worker went unhealthy and recovered"

quiet_podman kill --signal KILL "$NAME-scheduler" >/dev/null
podman wait "$NAME-scheduler" >/dev/null || true
quiet_podman rm "$NAME-scheduler" >/dev/null
start scheduler scheduler # pid 1 again; the killed one never unregistered
wait_for 60 "a scheduler started after another was SIGKILLed never became healthy" healthy scheduler
say "a scheduler started after another was SIGKILLed is healthy"

for role in api worker scheduler; do stop_cleanly "$role"; done
say "finished: image $((size / 1000000)) MB, built in ${build_seconds}s"
