package main

import (
	"context"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"

	"github.com/driftd/driftd/config"
)

// docker-compose.yml is valid for the Compose Specification's own loader (no Docker
// daemon runs here), and the environment it gives driftd makes a valid configuration
// that points at the compose services.
func TestComposeFileIsValidAndMatchesConfig(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{"../../docker-compose.yml"}, cli.WithWorkingDirectory("../.."), cli.WithName("driftd"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"kafka", "kafka-init", "clickhouse", "driftd"} {
		if _, err := p.GetService(name); err != nil {
			t.Errorf("service %s: %v", name, err)
		}
	}
	d, _ := p.GetService("driftd")
	if d.Deploy == nil || d.Deploy.Replicas == nil || *d.Deploy.Replicas != 2 {
		t.Errorf("driftd should run as an active member and a standby: deploy %+v", d.Deploy)
	}
	if d.Build == nil || d.Build.Dockerfile != "Dockerfile" {
		t.Errorf("driftd is not built from the repository's Dockerfile: %+v", d.Build)
	}
	env := map[string]string{}
	for k, v := range d.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	cfg, err := config.Load("", env)
	if err != nil {
		t.Fatalf("driftd's compose environment: %v", err)
	}
	if strings.Join(cfg.Kafka.Brokers, ",") != "kafka:19092" || cfg.ClickHouse.Addr != "clickhouse:9000" {
		t.Errorf("driftd in compose talks to %v and %s", cfg.Kafka.Brokers, cfg.ClickHouse.Addr)
	}
	// Outside compose, the defaults reach the ports compose publishes.
	def := config.Default()
	k, _ := p.GetService("kafka")
	ch, _ := p.GetService("clickhouse")
	published := map[string]bool{}
	for _, port := range append(k.Ports, ch.Ports...) {
		published[port.Published] = true
	}
	for _, addr := range []string{def.Kafka.Brokers[0], def.ClickHouse.Addr} {
		if port := addr[strings.LastIndex(addr, ":")+1:]; !published[port] {
			t.Errorf("default address %s is not published by compose (%v)", addr, published)
		}
	}
	kafkaEnv := k.Environment["KAFKA_ADVERTISED_LISTENERS"]
	if kafkaEnv == nil || !strings.Contains(*kafkaEnv, "kafka:19092") || !strings.Contains(*kafkaEnv, "localhost:9092") {
		t.Errorf("kafka advertises %v", kafkaEnv)
	}
}
