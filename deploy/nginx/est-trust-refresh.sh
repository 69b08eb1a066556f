#!/bin/sh
# Writes what nginx verifies EST client certificates against (deploy/nginx/templates,
# ssl_client_certificate and ssl_crl): the CA certificates and the CRLs, PEM, fetched from the
# service's public endpoints (/ca/{name}.crt, /crl/{name}.crl: DER). POSIX sh + curl + base64
# (coreutils): runs in the official nginx image and on any host. docs/operations.md, "EST: client
# certificates at the proxy".
#
#   est-trust-refresh.sh once          write the files (fails if a CA certificate or the root CRL
#                                      cannot be fetched; a missing issuing CRL is left out: nginx
#                                      then refuses every client certificate until one is published)
#   est-trust-refresh.sh loop          once, then every CA_NGINX_TRUST_REFRESH_SECONDS: rewrite and
#                                      `nginx -s reload` when a file changed (nginx reads ssl_crl
#                                      only at start and reload)
#   est-trust-refresh.sh entrypoint    for /docker-entrypoint.d/ of the nginx image: once, then the
#                                      loop in the background
#
# Settings (environment):
#   CA_NGINX_TRUST_SOURCE   base URL of the service, default http://api:8000 (plain HTTP on the
#                           private network: the files are public and the CRLs are signed)
#   CA_NGINX_TRUST_CAS      CA names, default "issuing root"; after a rollover name every issuing
#                           CA whose certificates are still valid, e.g. "issuing-2 issuing-1 root"
#   CA_NGINX_CLIENT_CA      output: the CA certificates (default /etc/nginx/est/client-ca.pem)
#   CA_NGINX_CLIENT_CRL     output: the CRLs (default /etc/nginx/est/client-crl.pem)
#   CA_NGINX_TRUST_REFRESH_SECONDS  default 300
#   CA_NGINX_CONF           nginx's main configuration file, if not nginx's default (for -t and -s reload)
set -eu

SOURCE=${CA_NGINX_TRUST_SOURCE:-http://api:8000}
CAS=${CA_NGINX_TRUST_CAS:-issuing root}
CA_OUT=${CA_NGINX_CLIENT_CA:-/etc/nginx/est/client-ca.pem}
CRL_OUT=${CA_NGINX_CLIENT_CRL:-/etc/nginx/est/client-crl.pem}
INTERVAL=${CA_NGINX_TRUST_REFRESH_SECONDS:-300}

log() { echo "est-trust-refresh: $*" >&2; }

# pem LABEL < DER > PEM
pem() {
    echo "-----BEGIN $1-----"
    base64 -w 64
    echo "-----END $1-----"
}

# fetch URL FILE: 0 on a 200 with a body, 1 otherwise
fetch() {
    code=$(curl -sS -o "$2" -w '%{http_code}' --max-time 10 "$1" 2>/dev/null) || code=000
    [ "$code" = 200 ] && [ -s "$2" ]
}

refresh() {
    dir=$(dirname "$CA_OUT")
    mkdir -p "$dir" "$(dirname "$CRL_OUT")"
    tmp=$(mktemp -d "$dir/.refresh.XXXXXX")
    : >"$tmp/ca.pem"
    : >"$tmp/crl.pem"
    for name in $CAS; do
        if ! fetch "$SOURCE/ca/$name.crt" "$tmp/der"; then
            log "cannot fetch $SOURCE/ca/$name.crt"
            rm -rf "$tmp"
            return 1
        fi
        pem CERTIFICATE <"$tmp/der" >>"$tmp/ca.pem"
        if fetch "$SOURCE/crl/$name.crl" "$tmp/der"; then
            pem "X509 CRL" <"$tmp/der" >>"$tmp/crl.pem"
        elif [ "$name" = root ]; then
            log "cannot fetch $SOURCE/crl/root.crl (signed at init: is this the service?)"
            rm -rf "$tmp"
            return 1
        else
            log "no CRL for $name yet: nginx refuses every client certificate of it until one is published"
        fi
    done
    rm -f "$tmp/der"
    changed=1
    if cmp -s "$tmp/ca.pem" "$CA_OUT" && cmp -s "$tmp/crl.pem" "$CRL_OUT"; then
        changed=0
    fi
    if [ "$changed" = 1 ]; then
        mv -f "$tmp/ca.pem" "$CA_OUT"  # same directory: an atomic rename, nginx never reads half a file
        mv -f "$tmp/crl.pem" "$CRL_OUT"
    fi
    rm -rf "$tmp"
    [ "$changed" = 1 ] && return 0
    return 2
}

loop() {
    while sleep "$INTERVAL"; do
        rc=0
        refresh || rc=$?
        if [ "$rc" = 0 ]; then
            if nginx ${CA_NGINX_CONF:+-c "$CA_NGINX_CONF"} -t -q; then
                nginx ${CA_NGINX_CONF:+-c "$CA_NGINX_CONF"} -s reload && log "CA certificates or CRLs changed: nginx reloaded"
            else
                log "nginx -t failed with the new files: not reloaded (the running nginx keeps the old ones)"
            fi
        elif [ "$rc" = 1 ]; then
            log "refresh failed: nginx keeps the files it has (a CRL past its nextUpdate fails every client certificate)"
        fi
    done
}

mode=${1:-once}
case "$0" in /docker-entrypoint.d/*) mode=${1:-entrypoint} ;; esac  # the nginx image runs it with no argument
case "$mode" in
    once)
        rc=0
        refresh || rc=$?
        [ "$rc" != 1 ]
        ;;
    loop)
        loop
        ;;
    entrypoint)
        rc=0
        refresh || rc=$?
        if [ "$rc" = 1 ]; then
            log "could not write the trust files: nginx cannot start without them"
            exit 1
        fi
        loop </dev/null &  # its messages go to the container's log
        ;;
    *)
        echo "usage: $0 once|loop|entrypoint" >&2
        exit 2
        ;;
esac
