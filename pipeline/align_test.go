package pipeline_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// A backlog whose partitions hold very different numbers of records per hour is read
// as it was written, window for window. Partition 0 carries a busy model (20 events/s)
// and a third of model split's events; partition 1 the rest of split's (2/s). Kafka
// hands both partitions over at about the same rate in records, so partition 1 is read
// through hours of event time while partition 0 is minutes in. Without alignment,
// split's windows could close on partition 1's records once it is ten skew bounds
// ahead, and partition 0's share of them come late or as supplements (7,449 and 8,563
// of 280,800 late in two runs; how many depends on when the start-up grace ends, so the
// comparison is pipeline/align_internal_test.go's). With it, partition 1 is paused
// while it is more than a skew bound ahead: no record is late and every one is counted
// in its window, as read live, with the records' Kafka timestamps the time they were
// written (a backfill) or their event time (a backlog written live).
func TestABacklogsPartitionsAreReadTogetherInEventTime(t *testing.T) {
	cases := []struct {
		name string
		// kafkaTime stamps each record's Kafka timestamp with its event time (a backlog
		// written live); otherwise the time it was written here (a backfill).
		kafkaTime bool
	}{{"written at once", false}, {"written live", true}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarnessN(t, 2)
			h.tweak = func(s *pipeline.Settings) {
				s.WindowSpec = func(string) processors.WindowSpec {
					// A skew bound of 2 min holds a partition read behind for 20 min.
					return processors.WindowSpec{Size: 10 * time.Second, Lateness: time.Second, MaxSkew: 2 * time.Minute}
				}
				s.IdleClose, s.StartupGrace = 3*time.Second, 10*time.Millisecond
				s.Thresholds = func(string, string) detectors.Thresholds { return detectors.DefaultThresholds }
			}
			const span = 6 * time.Hour
			start := time.Now().Add(-span - time.Hour).Truncate(time.Minute)
			var msgs []kafka.Message
			keyFor := keysToPartitions(2)
			splitOn := [2]int{}
			add := func(model string, partition int, at time.Time) {
				n := len(msgs)
				e := &schemas.PredictionEvent{EventID: fmt.Sprintf("%s-%d", model, n), RequestID: strconv.Itoa(n), Model: model, ModelVersion: "1",
					Deployment: "primary", Timestamp: at, Status: "ok", LatencyMs: 10,
					Features:   []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: float64(n % 7)}}},
					Prediction: schemas.Value{Kind: schemas.Number, Num: 0.5}}
				m := kafka.Message{Key: keyFor[partition], Value: jsonOf(t, e)}
				if tc.kafkaTime {
					m.Time = at
				}
				msgs = append(msgs, m)
				if model == "split" {
					splitOn[partition]++
				}
			}
			for ms := int64(0); ms < span.Milliseconds(); ms += 100 {
				at := start.Add(time.Duration(ms) * time.Millisecond)
				add("busy", 0, at)
				switch {
				case ms%1000 == 0:
					add("split", 0, at)
				case ms%500 == 0:
					add("split", 1, at)
					add("split", 1, at.Add(time.Millisecond))
				}
			}
			h.produce(t, msgs...)
			waitFor, stop := h.start(t)
			waitFor("the backlog read", func(s pipeline.Stats) bool { return s.Records == uint64(len(msgs)) })
			s := stop()
			t.Logf("%d records (split: %d on partition 0, %d on 1): %d late, %d added, %d supplement windows, %d pauses", len(msgs), splitOn[0], splitOn[1], s.Late, s.Added, s.Supplements, s.Paused)
			if s.Late != 0 || s.Supplements != 0 || s.Added != uint64(len(msgs)) {
				t.Errorf("%d records late, %d windows judged without some of theirs, %d of %d records added to windows", s.Late, s.Supplements, s.Added, len(msgs))
			}
			if s.Paused == 0 {
				t.Errorf("partition 1 was never paused")
			}
		})
	}
}

// keysToPartitions returns, for each of n partitions, a key the producers' hash
// (kafka.Hash, as consumers.NewWriter uses) puts on it.
func keysToPartitions(n int) [][]byte {
	keys := make([][]byte, n)
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	for i, found := 0, 0; found < n; i++ {
		k := []byte("k" + strconv.Itoa(i))
		if p := (&kafka.Hash{}).Balance(kafka.Message{Key: k}, parts...); keys[p] == nil {
			keys[p] = k
			found++
		}
	}
	return keys
}
