#!/usr/bin/env bash
# Apache Kafka 4.x, KRaft, single node on 127.0.0.1, from the official Maven Central artifacts.
#   kafka.sh fetch   resolve the broker jars once (cached in ~/.m2 and $MEWS_CACHE_DIR)
#   kafka.sh start   format storage if new, start the broker, wait until it answers
#   kafka.sh stop    stop the broker cleanly
#   kafka.sh status
# Environment: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (port+1), KAFKA_DIR (var/kafka), KAFKA_HEAP (512m).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")
cache=${MEWS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mews}/kafka-$version
port=${KAFKA_PORT:-9092}
controller_port=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
dir=${KAFKA_DIR:-$root/var/kafka}
pidfile=$dir/kafka.pid

fetch() {
  [ -f "$cache/.complete" ] && return 0
  command -v mvn >/dev/null || { echo "kafka.sh: Maven (mvn) is needed to fetch Kafka" >&2; exit 1; }
  command -v java >/dev/null || { echo "kafka.sh: Java 17+ is needed to run Kafka" >&2; exit 1; }
  echo "kafka.sh: resolving org.apache.kafka:kafka_2.13:$version from Maven Central" >&2
  mkdir -p "$cache"
  mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$cache/libs" -DincludeScope=runtime >&2
  touch "$cache/.complete"
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

start() {
  fetch
  if running; then echo "kafka.sh: already running (pid $(cat "$pidfile")) on 127.0.0.1:$port" >&2; return 0; fi
  if answers; then echo "kafka.sh: port $port is taken by another process" >&2; exit 1; fi
  mkdir -p "$dir/data" "$dir/logs"
  sed -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$controller_port|g" -e "s|@DATA_DIR@|$dir/data|g" \
      "$here/kafka/server.properties" > "$dir/server.properties"
  local jvm=(java "-Xmx${KAFKA_HEAP:-512m}" "-Xms128m" -XX:+UseG1GC -Djava.awt.headless=true
             "-Dlog4j2.configurationFile=$here/kafka/log4j2.yaml" "-Dkafka.logs.dir=$dir/logs"
             -cp "$cache/libs/*")
  if [ ! -f "$dir/data/meta.properties" ]; then
    "${jvm[@]}" kafka.tools.StorageTool format --ignore-formatted -c "$dir/server.properties" \
      -t "$("${jvm[@]}" kafka.tools.StorageTool random-uuid)" >"$dir/logs/format.log" 2>&1 \
      || { cat "$dir/logs/format.log" >&2; exit 1; }
  fi
  nohup "${jvm[@]}" kafka.Kafka "$dir/server.properties" >"$dir/logs/stdout.log" 2>&1 &
  echo $! > "$pidfile"
  for _ in $(seq 1 120); do
    if answers; then echo "kafka.sh: Apache Kafka $version answers on 127.0.0.1:$port (pid $(cat "$pidfile"))" >&2; return 0; fi
    running || { echo "kafka.sh: broker exited during start-up; see $dir/logs" >&2; tail -20 "$dir/logs/stdout.log" >&2; exit 1; }
    sleep 0.5
  done
  echo "kafka.sh: broker did not answer within 60 s; see $dir/logs" >&2; exit 1
}

stop() {
  running || { rm -f "$pidfile"; return 0; }
  local pid; pid=$(cat "$pidfile")
  kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; echo "kafka.sh: stopped" >&2; return 0; }; sleep 0.5; done
  echo "kafka.sh: broker did not stop in 30 s; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true; rm -f "$pidfile"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running (pid $(cat "$pidfile")) on 127.0.0.1:$port"; else echo "stopped"; exit 3; fi ;;
  *) echo "usage: $0 fetch|start|stop|status" >&2; exit 2 ;;
esac
