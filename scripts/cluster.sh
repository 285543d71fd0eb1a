#!/usr/bin/env bash
# A two-node chat cluster on loopback: redis-server, two chat nodes sharing
# it (REDIS_URL, NODE_NAME=node-a / node-b) and nginx in front with the
# sticky-session config of deploy/nginx/. Ctrl-C stops everything.
#
#   scripts/cluster.sh            # then open http://127.0.0.1:3001/
#
# Environment: PORT (nginx, default 3001), NODE_A_PORT / NODE_B_PORT (chat
# nodes, default 3101 / 3102), REDIS_PORT (default 6380, else the next free
# one), CHAT_BIN (default target/release/chat, built when missing), NGINX_BIN
# (default /usr/sbin/nginx), REDIS_BIN (default redis-server).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
port=${PORT:-3001}
node_a_port=${NODE_A_PORT:-3101}
node_b_port=${NODE_B_PORT:-3102}
nginx_bin=${NGINX_BIN:-/usr/sbin/nginx}
redis_bin=${REDIS_BIN:-redis-server}
chat_bin=${CHAT_BIN:-$root/target/release/chat}

say() { printf 'cluster: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# True when something accepts connections on 127.0.0.1:$1.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

command -v "$nginx_bin" >/dev/null || die "nginx not found ($nginx_bin); apt-get install nginx"
command -v "$redis_bin" >/dev/null || die "redis-server not found; apt-get install redis-server"
command -v curl >/dev/null || die "curl not found; apt-get install curl"
command -v envsubst >/dev/null || die "envsubst not found; apt-get install gettext-base"
for p in "$port" "$node_a_port" "$node_b_port"; do
  if listening "$p"; then die "port $p is taken (see PORT, NODE_A_PORT, NODE_B_PORT)"; fi
done
if [[ -n ${REDIS_PORT:-} ]]; then
  redis_port=$REDIS_PORT
  if listening "$redis_port"; then die "port $redis_port is taken (REDIS_PORT)"; fi
else
  redis_port=6380
  while listening "$redis_port"; do redis_port=$((redis_port + 1)); done
fi

if [[ ! -d $root/examples/chat/node_modules/browserchannel ]]; then
  say "warning: the page's client libraries are missing; run npm ci --prefix examples/chat"
fi
if [[ ! -x $chat_bin ]]; then
  [[ -z ${CHAT_BIN:-} ]] || die "CHAT_BIN=$chat_bin is not executable"
  say "building the chat example (cargo build --release -p chat)"
  (cd "$root" && cargo build --release -p chat)
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/axum-channel-cluster.XXXXXX")
# Started as root, nginx runs its worker as `nobody`, which must reach its
# temp paths in here.
chmod 755 "$dir"
pids=()
names=()

stop_all() {
  trap - INT TERM EXIT
  say "stopping"
  # nginx first, so no new requests reach the nodes; redis last.
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  if [[ ${KEEP_LOGS:-} == 1 ]]; then say "logs kept in $dir"; else rm -rf "$dir"; fi
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

# start NAME LOG COMMAND...: runs COMMAND in the background, output in LOG.
start() {
  local name=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 &
  pids+=("$!")
  names+=("$name")
}

# wait_for NAME LOG PATTERN: until PATTERN shows up in LOG (10 s at most).
wait_for() {
  local name=$1 log=$2 pattern=$3 pid=${pids[-1]} tries=0
  until grep -q -- "$pattern" "$log" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "$name exited while starting:"; tail -n 20 "$log" >&2; exit 1
    fi
    if ((++tries > 100)); then
      say "$name did not start within 10 s:"; tail -n 20 "$log" >&2; exit 1
    fi
    sleep 0.1
  done
}

mkdir "$dir/redis"
start redis "$dir/redis.log" "$redis_bin" --bind 127.0.0.1 --port "$redis_port" \
  --dir "$dir/redis" --save '' --appendonly no --daemonize no
wait_for redis "$dir/redis.log" "Ready to accept connections"
redis_url="redis://127.0.0.1:$redis_port/"
say "redis-server on $redis_url"

for node in a b; do
  node_port=$([[ $node == a ]] && echo "$node_a_port" || echo "$node_b_port")
  # nginx reaches the nodes from 127.0.0.1: they believe its X-Forwarded-For.
  start "node-$node" "$dir/node-$node.log" env PORT="$node_port" REDIS_URL="$redis_url" \
    NODE_NAME="node-$node" TRUSTED_PROXIES=127.0.0.1 "$chat_bin"
  wait_for "node-$node" "$dir/node-$node.log" "listening on http://127.0.0.1:$node_port"
  say "node-$node on http://127.0.0.1:$node_port"
done

cp "$root/deploy/nginx/standalone.conf" "$dir/nginx.conf"
NODE_A=127.0.0.1:$node_a_port NODE_B=127.0.0.1:$node_b_port LISTEN=127.0.0.1:$port \
  envsubst '${NODE_A} ${NODE_B} ${LISTEN}' \
  <"$root/deploy/nginx/sticky.conf.template" >"$dir/sticky.conf"
start nginx "$dir/nginx.log" "$nginx_bin" -p "$dir" -e stderr -c "$dir/nginx.conf" -g 'daemon off;'
wait_for nginx "$dir/nginx.log" "start worker process"

# /healthz through nginx until both nodes answered (X-Upstream names the node).
seen=""
for ((i = 0; i < 50; i++)); do
  upstream=$(curl -fsS -o /dev/null -D - "http://127.0.0.1:$port/healthz" |
    tr -d '\r' | sed -n 's/^X-Upstream: //Ip')
  [[ $seen == *"$upstream"* ]] || seen="$seen $upstream"
  [[ $seen == *":$node_a_port"* && $seen == *":$node_b_port"* ]] && break
done
[[ $seen == *":$node_a_port"* && $seen == *":$node_b_port"* ]] ||
  die "/healthz through nginx did not reach both nodes (saw:$seen)"
say "nginx on http://127.0.0.1:$port (/healthz reached both nodes:$seen)"
say "logs: $dir/{redis,node-a,node-b,nginx}.log, $dir/access.log"

printf '\n  open http://127.0.0.1:%s/   (Ctrl-C stops the cluster)\n\n' "$port"

# Until Ctrl-C or until one of them dies.
set +e
wait -n "${pids[@]}"
status=$?
for i in "${!pids[@]}"; do
  if ! kill -0 "${pids[i]}" 2>/dev/null; then
    say "${names[i]} exited ($status):"; tail -n 20 "$dir/${names[i]}.log" >&2
  fi
done
exit 1
