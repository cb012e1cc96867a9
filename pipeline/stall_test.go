package pipeline_test

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/internal/testenv"
	"github.com/driftd/driftd/pipeline"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
)

// A partition whose leader cannot be read for longer than windows.idle_close holds the
// windows it feeds, live: model b, on partition 1 alone, receives nothing while the
// broker refuses its fetches, and its window is not closed under it by the idle close
// (the stream clock ran on with partition 0, whose model a kept sending). When the
// partition is readable again, the records written meanwhile are counted in their
// windows, as a backlog read of the same stream counts them, not set aside as late.
// Before, the partition's last record said it was read to its end, so nothing waited
// for it: b's window closed 2 s after its last event and every record of the outage
// came back late. The broker is kfake (a real Kafka protocol server, in process) so that
// one partition's fetches can be refused while the group stays healthy.
func TestAPartitionThatCannotBeReadHoldsWhatItFeeds(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	h := newHarnessOn(t, cluster.ListenAddrs()[0], 2)
	h.tweak = func(s *pipeline.Settings) {
		s.WindowSpec = func(string) processors.WindowSpec {
			return processors.WindowSpec{Size: 10 * time.Second, Lateness: time.Second}
		}
		s.IdleClose, s.StartupGrace = 2*time.Second, time.Second
		s.Thresholds = func(string, string) detectors.Thresholds { return detectors.DefaultThresholds }
	}
	w := &kafka.Writer{Addr: kafka.TCP(h.brokers), Topic: h.predictions, BatchSize: 1,
		Balancer: kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return int(m.Key[0] - '0') })}
	t.Cleanup(func() { w.Close() })
	ctx := testenv.Context(t, 2*time.Minute)
	n := 0
	send := func(model string, partition int) {
		t.Helper()
		n++
		e := &schemas.PredictionEvent{EventID: fmt.Sprintf("%s-%d", model, n), RequestID: strconv.Itoa(n), Model: model, ModelVersion: "1",
			Deployment: "primary", Timestamp: time.Now(), Status: "ok", LatencyMs: 10,
			Features:   []schemas.Feature{{Name: "x", Value: schemas.Value{Kind: schemas.Number, Num: float64(n % 7)}}},
			Prediction: schemas.Value{Kind: schemas.Number, Num: 0.5}}
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(strconv.Itoa(partition)), Value: jsonOf(t, e)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor, stop := h.start(t)
	send("a", 0)
	send("b", 1)
	waitFor("both partitions read", func(s pipeline.Stats) bool { return s.Added == 2 && s.Started })

	var refusing atomic.Bool
	refusing.Store(true)
	cluster.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		fr := req.(*kmsg.FetchRequest)
		if !refusing.Load() || len(fr.Topics) != 1 || fr.Topics[0].Topic != h.predictions || len(fr.Topics[0].Partitions) != 1 || fr.Topics[0].Partitions[0].Partition != 1 {
			return nil, nil, false
		}
		resp := fr.ResponseKind().(*kmsg.FetchResponse)
		resp.Version = fr.Version
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = fr.Topics[0].Topic, fr.Topics[0].TopicID
		sp := kmsg.NewFetchResponseTopicPartition()
		sp.Partition, sp.ErrorCode = 1, int16(kafka.TopicAuthorizationFailed)
		st.Partitions = append(st.Partitions, sp)
		resp.Topics = append(resp.Topics, st)
		return resp, nil, true
	})
	// 15 s of outage: past b's window's end, its lateness and the idle close. Model a
	// sends all along, and b's records wait on the broker.
	bSent := 1
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); {
		send("a", 0)
		send("b", 1)
		bSent++
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	refusing.Store(false)
	waitFor("the outage's records read", func(s pipeline.Stats) bool { return s.Records == uint64(n) })
	s := stop()
	if s.Late != 0 {
		t.Errorf("%d records late after the partition came back (of %d of model b written during the outage)", s.Late, bSent-1)
	}
	if s.Added != uint64(n) {
		t.Errorf("%d of %d records added to windows", s.Added, n)
	}
}
