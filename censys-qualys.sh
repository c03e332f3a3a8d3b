#!/usr/bin/env bash
# censys-qualys.sh build|run|once|stop — the seed's commands, with Docker or without it.
#   build   build the toolkit's image (tag: $CQ_IMAGE, default qualys-connector)
#   run     run it detached: a cycle every `interval` minutes
#   once    run a single cycle in the foreground
#   stop    stop the detached container
# settings.yaml is mounted read-only (never baked into the image); the saved position lives in
# $CQ_STATE_DIR (default ~/censys/qualys), mounted as a volume. Secrets given as files
# (CENSYS_ASM_API_KEY_FILE, QC_QUALYS_PASSWORD_FILE, QC_PROXY_PASSWORD_FILE) are mounted read-only.
# CQ_NO_DOCKER=1 runs the installed `censys-qualys` command directly instead of a container;
# CQ_DRY_RUN=1 prints the docker (or, with CQ_NO_DOCKER=1, censys-qualys) commands instead of
# running them, even when the settings file does not exist yet.
set -euo pipefail
cd "$(dirname "$0")"
IMAGE=${CQ_IMAGE:-qualys-connector}
NAME=${CQ_CONTAINER:-censys-qualys}
SETTINGS=${CQ_SETTINGS:-$PWD/settings.yaml}
STATE_DIR=${CQ_STATE_DIR:-$HOME/censys/qualys}
STATE_IN_IMAGE=/var/lib/qualys-connector
ENV_ARGS=()
for var in CENSYS_ASM_API_KEY CENSYS_API_URL QC_QUALYS_PASSWORD QC_PROXY_PASSWORD; do
    if [ -n "${!var:-}" ]; then ENV_ARGS+=(-e "$var"); fi
    file_var="${var}_FILE"       # the secret file, mounted read-only at the same path inside
    if [ -n "${!file_var:-}" ]; then ENV_ARGS+=(-e "$file_var" -v "${!file_var}:${!file_var}:ro"); fi
done

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0" >&2; exit 1; }
[ $# -eq 1 ] || usage

docker_cmd() {
    if [ -n "${CQ_DRY_RUN:-}" ]; then echo "docker $*"; else docker "$@"; fi
}

need_settings() {
    if [ ! -f "$SETTINGS" ]; then
        if [ -n "${CQ_DRY_RUN:-}" ]; then
            echo "censys-qualys.sh: note: $SETTINGS does not exist yet; without CQ_DRY_RUN this stops here" >&2
            return 0
        fi
        echo "censys-qualys.sh: $SETTINGS does not exist: copy settings_example.yaml to settings.yaml and fill it in" >&2
        exit 1
    fi
}

if [ -n "${CQ_NO_DOCKER:-}" ]; then
    case "$1" in
        build) echo "censys-qualys.sh: CQ_NO_DOCKER=1: nothing to build (pip install . provides censys-qualys)"; exit 0 ;;
        run|once) need_settings; mkdir -p "$STATE_DIR"
                  if [ -n "${CQ_DRY_RUN:-}" ]; then
                      echo "censys-qualys $1 --settings $SETTINGS --state-dir $STATE_DIR"; exit 0
                  fi
                  exec censys-qualys "$1" --settings "$SETTINGS" --state-dir "$STATE_DIR" ;;
        stop) echo "censys-qualys.sh: CQ_NO_DOCKER=1: stop the process with SIGTERM" >&2; exit 1 ;;
        *) usage ;;
    esac
fi

# The container runs as the invoking user, so it can read a settings.yaml kept at
# mode 600 and write the state directory this script created: the image's own user (uid 10001)
# could do neither.
USER_ARGS=(--user "$(id -u):$(id -g)")

case "$1" in
    build) docker_cmd build -t "$IMAGE" . ;;
    run)   need_settings; mkdir -p "$STATE_DIR"
           docker_cmd run -d --name "$NAME" --restart unless-stopped "${USER_ARGS[@]}" ${ENV_ARGS[@]+"${ENV_ARGS[@]}"} \
               -v "$SETTINGS:/config/settings.yaml:ro" -v "$STATE_DIR:$STATE_IN_IMAGE" "$IMAGE" censys-qualys run ;;
    once)  need_settings; mkdir -p "$STATE_DIR"
           docker_cmd run --rm "${USER_ARGS[@]}" ${ENV_ARGS[@]+"${ENV_ARGS[@]}"} \
               -v "$SETTINGS:/config/settings.yaml:ro" -v "$STATE_DIR:$STATE_IN_IMAGE" "$IMAGE" censys-qualys once ;;
    stop)  docker_cmd stop "$NAME" && docker_cmd rm "$NAME" ;;
    *)     usage ;;
esac
