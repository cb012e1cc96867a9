package main

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/driftd/driftd/internal/testenv"
)

// driftd bench on the real broker with the embedded engine, 5,000 events: the first run
// fills the topic, the second reuses it with two members; both read every record with the
// bare consumer and with driftd, and print every field. Short windows keep the last
// window's wait (window end, lateness, idle close) to seconds.
func TestBenchCommand(t *testing.T) {
	if os.Getenv("CHDB_LIB_PATH") == "" {
		t.Fatal("CHDB_LIB_PATH is not set: make test sets it")
	}
	brokers := testenv.KafkaBrokers(t)
	ctx := testenv.Context(t, 4*time.Minute)
	// A seed of this run's own, so the first run fills a topic nobody filled before.
	seed := strconv.FormatInt(time.Now().UnixNano()%1_000_000_000, 10)
	env := []string{"DRIFTD_KAFKA_BROKERS=" + brokers, "DRIFTD_WINDOWS_SIZE=10s", "DRIFTD_WINDOWS_LATENESS=1s", "DRIFTD_WINDOWS_IDLE_CLOSE=1s"}
	for _, c := range []struct {
		args, fill, members string
	}{
		{"--format avro --features 20 --keyed-by request", "filled in", "1 (active/standby"},
		{"--format avro --features 20 --keyed-by request --members 2", "reused", "2 (active/standby"},
	} {
		cmd := driftdProcess(t, ctx, "bench --events 5000 --models 4 --rate 25 --seed "+seed+" "+c.args, env...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		t.Logf("%s", out)
		if err != nil {
			t.Fatalf("bench %s: %v\n%s\n%s", c.args, err, out, stderr.String())
		}
		fields := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			k, v, _ := strings.Cut(l, ": ")
			fields[k] = v
		}
		topic := fmt.Sprintf("driftd-bench.avro.f20.p3.m4.request.n5000.r25.s%s.", seed)
		for _, want := range []struct{ field, pattern string }{
			{"records", `^5000 \(avro, 20 features, 3 partitions, 4 models, keyed by request\)$`},
			{"topic", `^` + regexp.QuoteMeta(topic) + `\d{8} \(` + c.fill},
			{"bare consumer", `^[1-9]\d* records/s \(\d+\.\d\d s\), cpu \d+\.\d s \(\d+\.\d µs/record\), \d+ allocs and \d+ B allocated per record$`},
			{"driftd", `^[1-9]\d* records/s \(\d+\.\d\d s to the flush after the last record\), cpu \d+\.\d s \(\d+\.\d µs/record\), [1-9]\d* allocs and \d+ B allocated per record$`},
			{"ratio", `^\d+\.\d%$`},
			{"driftd last record read", `^\d+\.\d\d s$`},
			{"driftd last window written", `^\d+\.\d\d s \(the last windows close on the wall clock: at their end plus lateness, after windows.idle_close 1s without events\)$`},
			{"driftd memory", `^peak live heap [1-9][\d.]* MiB, peak heap [1-9][\d.]* MiB \(garbage included\), peak RSS [1-9][\d.]* MiB`},
			// 4 models over ~50 s of event time in 10 s windows: at least 5 each.
			{"driftd windows", `^([2-9]\d|\d{3,}) written, 0 records dead-lettered, 0 rebalances$`},
			{"members", `^` + regexp.QuoteMeta(c.members)},
		} {
			if !regexp.MustCompile(want.pattern).MatchString(fields[want.field]) {
				t.Errorf("bench %s: %q: %q does not match %s\n%s", c.args, want.field, fields[want.field], want.pattern, out)
			}
		}
	}
}
