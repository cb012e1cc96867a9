package consumers_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/internal/retry"
	"github.com/driftd/driftd/internal/testenv"
)

// fetchUntilError calls Fetch as the pipeline does, a second's tick at a time, until it
// returns something other than a tick's end or a rebalance, or until ctx ends.
func fetchUntilError(ctx context.Context, t *testing.T, c *consumers.Consumer) (consumers.Record, error) {
	t.Helper()
	for ctx.Err() == nil {
		tick, cancel := context.WithTimeout(ctx, time.Second)
		rec, err := c.Fetch(tick)
		cancel()
		switch {
		case errors.Is(err, consumers.ErrRebalanced):
		case err == context.DeadlineExceeded && ctx.Err() == nil: // the tick's own, as Runner.Run tells it
		default:
			return rec, err
		}
	}
	return consumers.Record{}, ctx.Err()
}

// closedAddr is a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// A member that cannot reach the group's coordinator retries for limits.max_outage,
// then Fetch gives up (the run ends, so a restart or another member reads); without a
// bound it retries until its context ends.
func TestFetchGivesUpJoiningAfterTheOutageBound(t *testing.T) {
	for _, c := range []struct {
		name      string
		maxOutage time.Duration
		wantErr   error
	}{
		{"bounded", 2 * time.Second, consumers.ErrGaveUp},
		{"unbounded", 0, context.DeadlineExceeded},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := consumers.Options{Brokers: []string{closedAddr(t)}, GroupID: "g", Topics: []string{"t"}, MaxOutage: c.maxOutage}
			cons, err := consumers.NewConsumer(o, testenv.Logger(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cons.Close() })
			ctx := testenv.Context(t, 8*time.Second)
			began := time.Now()
			_, err = fetchUntilError(ctx, t, cons)
			took := time.Since(began)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("Fetch = %v after %v, want %v", err, took, c.wantErr)
			}
			if errors.Is(err, consumers.ErrGaveUp) && (took < c.maxOutage || consumers.Classify(err) != retry.Fatal) {
				t.Errorf("gave up after %v (bound %v), class %v", took, c.maxOutage, consumers.Classify(err))
			}
		})
	}
}

// A partition whose fetches keep failing while the group stays healthy (here the broker
// refuses every fetch: an ACL taken away) is retried for limits.max_outage, then Fetch
// gives up instead of leaving the partition unread for ever; before that the records of
// a healthy fetch are delivered.
func TestFetchGivesUpOnAPartitionThatCannotBeRead(t *testing.T) {
	cons, cluster, write, ctx := kfakeConsumer(t, 2*time.Second)
	write("first")
	rec, err := fetchUntilError(ctx, t, cons)
	if err != nil || string(rec.Value) != "first" {
		t.Fatalf("first fetch: %q, %v", rec.Value, err)
	}
	refuseFetches(cluster, func() bool { return true })
	began := time.Now()
	_, err = fetchUntilError(ctx, t, cons)
	if took := time.Since(began); !errors.Is(err, consumers.ErrGaveUp) || took < 2*time.Second {
		t.Fatalf("Fetch = %v after %v, want it to give up after the 2s bound", err, took)
	}
	var kerr kafka.Error
	if !errors.As(err, &kerr) || kerr != kafka.TopicAuthorizationFailed {
		t.Errorf("the error %v does not say why", err)
	}
	// Given up, it stays so: the run ends on it.
	if _, again := cons.Fetch(ctx); !errors.Is(again, consumers.ErrGaveUp) {
		t.Errorf("the next Fetch = %v, want the same give-up", again)
	}
}

// refuseFetches has the broker refuse every fetch (topic authorization failed) while
// refusing says so.
func refuseFetches(cluster *kfake.Cluster, refusing func() bool) {
	cluster.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if !refusing() {
			return nil, nil, false
		}
		fr := req.(*kmsg.FetchRequest)
		resp := fr.ResponseKind().(*kmsg.FetchResponse)
		resp.Version = fr.Version
		for _, rt := range fr.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = int16(kafka.TopicAuthorizationFailed)
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

// A partition refused for a while and readable again is read on: the failures kafka-go
// queued while it was refused are taken as they come, not read late (one every few
// seconds) until they outlast the bound after the partition recovered.
func TestFetchGoesOnAfterAPartitionRecovers(t *testing.T) {
	const bound, down = 5 * time.Second, 2 * time.Second
	cons, cluster, write, ctx := kfakeConsumer(t, bound)
	write("first")
	if rec, err := fetchUntilError(ctx, t, cons); err != nil || string(rec.Value) != "first" {
		t.Fatalf("first fetch: %q, %v", rec.Value, err)
	}
	began := time.Now()
	refuseFetches(cluster, func() bool { return time.Since(began) < down })
	time.AfterFunc(down+time.Second, func() { write("second") })
	// Failing says so while the partition cannot be read (the pipeline then waits for it).
	failing := func(at time.Time) []consumers.TopicPartition {
		got, known := cons.Failing(at)
		if !known {
			t.Fatal("Failing does not know the partitions read, in a generation")
		}
		return got
	}
	for len(failing(time.Now())) == 0 && time.Since(began) < down {
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if got := failing(time.Now()); len(got) != 1 || got[0] != (consumers.TopicPartition{Topic: "t", Partition: 0}) {
		t.Errorf("Failing during the outage = %v, want t/0", got)
	}
	rec, err := fetchUntilError(ctx, t, cons)
	if err != nil || string(rec.Value) != "second" {
		t.Fatalf("after %v: %q, %v; want the record written once the partition recovered", time.Since(began), rec.Value, err)
	}
	// It stays listed until a gap passes without a failure (records fetched after one
	// may still wait in buffers), then no longer.
	if got := failing(time.Now()); len(got) != 1 {
		t.Errorf("Failing right after the partition delivered again = %v, want t/0 still", got)
	}
	if got := failing(time.Now().Add(2 * time.Minute)); len(got) != 0 {
		t.Errorf("Failing a gap after the last failure = %v, want none", got)
	}
}

// kfakeConsumer is a consumer of topic t of an in-process kfake broker, with
// limits.max_outage bound, and a writer to the topic.
func kfakeConsumer(t *testing.T, bound time.Duration) (*consumers.Consumer, *kfake.Cluster, func(string), context.Context) {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	o := consumers.Options{Brokers: cluster.ListenAddrs(), GroupID: "g", Topics: []string{"t"}, MaxOutage: bound}
	ctx := testenv.Context(t, 60*time.Second)
	w := consumers.NewWriter(o, "t")
	t.Cleanup(func() { w.Close() })
	cons, err := consumers.NewConsumer(o, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cons.Close() })
	return cons, cluster, func(v string) {
		if err := w.Write(ctx, kafka.Message{Value: []byte(v)}); err != nil {
			t.Error(err)
		}
	}, ctx
}

// A partition failing when its generation ends stays listed by Failing for a whole gap
// after the next generation starts: the time between generations, when no reader could
// fail, does not let it go (the pipeline would otherwise stop waiting for it at the
// first ask after a rejoin, and its stream clock, once moved, never goes back).
func TestFailingOutlastsARejoin(t *testing.T) {
	cons, cluster, write, ctx := kfakeConsumer(t, 0)
	write("first")
	if rec, err := fetchUntilError(ctx, t, cons); err != nil || string(rec.Value) != "first" {
		t.Fatalf("first fetch: %q, %v", rec.Value, err)
	}
	var refusing atomic.Bool
	refusing.Store(true)
	refuseFetches(cluster, refusing.Load)
	listed := func(at time.Time) bool {
		got, known := cons.Failing(at)
		return known && len(got) == 1
	}
	tick := func() {
		t.Helper()
		tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		if _, err := cons.Fetch(tctx); err != nil && err != context.DeadlineExceeded {
			t.Fatal(err)
		}
	}
	for !listed(time.Now()) {
		tick()
	}
	refusing.Store(false)
	// Let the reader take what kafka-go queued; its last failure is before now.
	lastFailure := time.Now()
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(2 * time.Second):
	}
	// A second member joins: the group rebalances, and this member rejoins some time
	// after the partition's last failure (a standby: it keeps the partition).
	o := consumers.Options{Brokers: cluster.ListenAddrs(), GroupID: "g", Topics: []string{"t"}}
	other, err := consumers.NewConsumer(o, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	gen := cons.Generation()
	go func() {
		for ctx.Err() == nil {
			tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			other.Fetch(tctx)
			cancel()
		}
	}()
	for g := cons.Generation(); g == gen || g == 0; g = cons.Generation() { // 0: between generations
		tick()
	}
	joined := time.Now()
	// One broker: the gap is a minute. Still listed a moment before a gap after the
	// join, although more than a gap after the last failure.
	if at := joined.Add(time.Minute - 500*time.Millisecond); !listed(at) {
		t.Errorf("not listed %v after the last failure, %v after the rejoin (assigned %d)", at.Sub(lastFailure), at.Sub(joined), cons.Assigned())
	}
}
