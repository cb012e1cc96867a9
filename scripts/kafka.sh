#!/usr/bin/env bash
# Real Apache Kafka for tests: a single-node KRaft broker on 127.0.0.1, built from the
# release jars on Maven Central (resolved by Maven into .cache/, once).
#
#   scripts/kafka.sh start   # idempotent; prints the bootstrap address when ready
#   scripts/kafka.sh stop    # idempotent
#   scripts/kafka.sh restart # stop and start again on the same data
#   scripts/kafka.sh status
#
# KAFKA_PORT (default 19092) and KAFKA_VERSION (default in scripts/kafka/pom.xml) can be set;
# KAFKA_AUTO_CREATE_TOPICS=false starts a broker that does not create topics on first use
# (as many production clusters), for tests of a start before the topics exist.
# Besides PLAINTEXT on KAFKA_PORT, a SASL_PLAINTEXT listener on KAFKA_PORT+2 accepts user
# driftd / driftd-secret over PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 (for the SASL tests),
# and an SSL listener on KAFKA_PORT+3 whose certificate is signed by a throw-away CA in
# .cache/kafka-run-$KAFKA_PORT/tls/ca.pem (for the TLS tests).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version=${KAFKA_VERSION:-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$root/scripts/kafka/pom.xml")}
port=${KAFKA_PORT:-19092}
cport=$((port + 1))
sport=$((port + 2))
tport=$((port + 3))
home="$root/.cache/kafka-$version"
run="$root/.cache/kafka-run-$port"
pidfile="$run/kafka.pid"

fetch() {
  [ -f "$home/libs/.complete" ] && return 0
  echo "kafka: resolving Apache Kafka $version jars from Maven Central into $home/libs" >&2
  mkdir -p "$home/libs"
  (cd "$root/scripts/kafka" && mvn -q -B -Dkafka.version="$version" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$home/libs") >&2
  touch "$home/libs/.complete"
}

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

ready() {
  # A broker is ready when it answers a metadata request; bash's /dev/tcp only proves the
  # port is open, so ask the admin tool, which fails until the broker has joined its quorum.
  java -cp "$home/libs/*" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "127.0.0.1:$port" --list >/dev/null 2>&1
}

start() {
  command -v java >/dev/null || { echo "kafka: java not found (Java 17+ is needed)" >&2; exit 1; }
  command -v mvn >/dev/null || { echo "kafka: mvn not found (Maven fetches the Kafka jars)" >&2; exit 1; }
  command -v keytool >/dev/null || { echo "kafka: keytool not found (it comes with the JDK)" >&2; exit 1; }
  if running; then echo "127.0.0.1:$port"; return 0; fi
  fetch
  rm -rf "$run"; mkdir -p "$run/data"
  certs
  cat > "$run/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,SASL_PLAINTEXT://127.0.0.1:$sport,SSL://127.0.0.1:$tport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SASL_PLAINTEXT://127.0.0.1:$sport,SSL://127.0.0.1:$tport
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL
ssl.keystore.type=PKCS12
ssl.keystore.location=$run/tls/broker.p12
ssl.keystore.password=driftd-test
ssl.key.password=driftd-test
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_driftd="driftd-secret";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
inter.broker.listener.name=PLAINTEXT
log.dirs=$run/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=${KAFKA_AUTO_CREATE_TOPICS:-true}
message.max.bytes=16777216
PROPS
  cat > "$run/log4j2.properties" <<PROPS
rootLogger.level=WARN
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=$run/server.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
PROPS
  local cluster
  cluster=$(java -cp "$home/libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
  java -cp "$home/libs/*" -Dlog4j2.configurationFile="$run/log4j2.properties" \
    kafka.tools.StorageTool format -t "$cluster" -c "$run/server.properties" \
    --add-scram 'SCRAM-SHA-256=[name=driftd,password=driftd-secret]' \
    --add-scram 'SCRAM-SHA-512=[name=driftd,password=driftd-secret]' >"$run/format.log" 2>&1 \
    || { cat "$run/format.log" >&2; exit 1; }
  launch
}

# certs makes a throw-away CA and a broker certificate for 127.0.0.1 with keytool (part
# of the JDK the broker needs anyway); clients trust $run/tls/ca.pem.
certs() {
  local d="$run/tls" pw=driftd-test
  mkdir -p "$d"
  keytool -genkeypair -alias ca -keyalg RSA -keysize 2048 -dname CN=driftd-test-ca -ext bc:c -validity 3650 \
    -keystore "$d/ca.p12" -storetype PKCS12 -storepass $pw >/dev/null 2>&1
  keytool -exportcert -alias ca -keystore "$d/ca.p12" -storepass $pw -rfc >"$d/ca.pem" 2>/dev/null
  keytool -genkeypair -alias broker -keyalg RSA -keysize 2048 -dname CN=127.0.0.1 -validity 3650 \
    -keystore "$d/broker.p12" -storetype PKCS12 -storepass $pw >/dev/null 2>&1
  keytool -certreq -alias broker -keystore "$d/broker.p12" -storepass $pw 2>/dev/null |
    keytool -gencert -alias ca -keystore "$d/ca.p12" -storepass $pw -ext SAN=IP:127.0.0.1 -validity 3650 -rfc \
      >"$d/broker.crt" 2>/dev/null
  keytool -importcert -alias ca -file "$d/ca.pem" -keystore "$d/broker.p12" -storepass $pw -noprompt >/dev/null 2>&1
  keytool -importcert -alias broker -file "$d/broker.crt" -keystore "$d/broker.p12" -storepass $pw -noprompt >/dev/null 2>&1
  [ -s "$d/ca.pem" ] && [ -s "$d/broker.crt" ] || { echo "kafka: making test certificates with keytool failed" >&2; exit 1; }
}

# launch runs the formatted broker in $run and waits until it answers.
launch() {
  nohup java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$run/log4j2.properties" \
    -cp "$home/libs/*" kafka.Kafka "$run/server.properties" >>"$run/stdout.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 120); do
    if ! running; then echo "kafka: broker exited; see $run/stdout.log and $run/server.log" >&2; tail -20 "$run/stdout.log" >&2; exit 1; fi
    if ready; then echo "127.0.0.1:$port"; return 0; fi
    sleep 0.5
  done
  echo "kafka: broker not ready after 60s; see $run/server.log" >&2
  exit 1
}

stop() {
  if running; then
    local pid; pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# restart stops the broker and starts it again on the same data (a broker restart as
# clients see it: connections drop, the log and committed offsets survive).
restart() {
  [ -f "$run/server.properties" ] || { echo "kafka: no broker was started on port $port" >&2; exit 1; }
  stop
  launch
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) restart ;;
  status) if running; then echo "running 127.0.0.1:$port"; else echo "stopped"; exit 1; fi ;;
  fetch) fetch ;;
  *) echo "usage: $0 start|stop|restart|status|fetch" >&2; exit 2 ;;
esac
