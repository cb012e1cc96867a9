package consumers_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/internal/testenv"
)

// Started before its topic exists, a group (one member, or an active member and a
// standby) reads the topic within seconds of its creation, and a partition added later
// too; each member's status says what it does: nothing to read while the topic is
// missing (not ready), reading, or standing by. On a broker that creates topics on first
// use (the shared test broker), the group's own join creates the topic with the broker's
// default of one partition, after the group assigned nothing: the same case, without the
// missing phase. Without auto-creation the members are also subscribed to a topic that is
// never created (an unused pipeline topic): it must not keep them from the others.
func TestTopicsCreatedAfterStartAreRead(t *testing.T) {
	noAutoCreate := testenv.OwnKafka(t, "KAFKA_AUTO_CREATE_TOPICS=false").Addr
	for _, c := range []struct {
		name       string
		brokers    string
		autoCreate bool
		members    int
	}{
		{"no auto-creation, 1 member", noAutoCreate, false, 1},
		{"no auto-creation, 2 members", noAutoCreate, false, 2},
		{"auto-creation, 1 member", testenv.KafkaBrokers(t), true, 1},
		{"auto-creation, 2 members", testenv.KafkaBrokers(t), true, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			topic := testenv.UniqueName(t)
			o := consumers.Options{Brokers: []string{c.brokers}, GroupID: topic + ".g", Topics: []string{topic}, WatchInterval: time.Second}
			if !c.autoCreate {
				o.Topics = append(o.Topics, topic+".unused")
			}
			ctx := testenv.Context(t, 2*time.Minute)
			var cs []*consumers.Consumer
			logs := make([]*lockedBuffer, c.members)
			recs := make(chan consumers.Record, 1000)
			t.Cleanup(func() {
				if t.Failed() { // each generation's log line says where it started reading
					for i, l := range logs {
						t.Logf("member %d log:\n%s", i, l.String())
					}
				}
			})
			for i := 0; i < c.members; i++ {
				logs[i] = &lockedBuffer{}
				m, err := consumers.NewConsumer(o, slogTo(logs[i]))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { m.Close() })
				cs = append(cs, m)
				r, _ := fetchInBackground(t, ctx, m)
				go func() {
					for rec := range r {
						recs <- rec
					}
				}()
			}
			for i, m := range cs {
				waitStatus(t, ctx, m, "joined", func(s consumers.Status) bool { return s.Joined && s.Partitions >= 0 })
				if c.autoCreate {
					continue
				}
				if s := m.Status(); len(s.Missing) != 2 || s.Assigned != 0 {
					t.Errorf("member %d before the topic exists: status %+v", i, s)
				}
				if _, err := m.Status().Ready(); err == nil || !strings.Contains(err.Error(), "do not exist yet: "+topic+", "+topic+".unused") {
					t.Errorf("member %d before the topic exists: ready %v, want not ready naming the topic", i, err)
				}
			}
			if !c.autoCreate {
				// Three watch intervals with nothing to read: each member waits in its
				// generation (the second member's join makes one more), no rejoin loop.
				quiet, cancel := context.WithTimeout(ctx, 3*time.Second)
				<-quiet.Done()
				cancel()
				for i, l := range logs {
					if n := strings.Count(l.String(), "joined consumer group"); n > c.members {
						t.Errorf("member %d joined %d times while the topic did not exist, want at most %d:\n%s", i, n, c.members, l.String())
					}
				}
			}

			if err := consumers.EnsureTopics(ctx, consumers.Options{Brokers: o.Brokers}, 2, topic); err != nil {
				t.Fatal(err)
			}
			growTo(t, ctx, c.brokers, topic, 2) // an auto-created topic has one
			created := time.Now()
			if c.autoCreate {
				// The partition added to the auto-created topic makes a new generation, not
				// at once: a generation reading partition 0 alone can still form after growTo.
				// A record read in it would be read again in the next one (nothing is
				// committed yet), possibly after expect below has returned, where the next
				// expect would take the copy for a record read past its commit.
				for _, m := range cs {
					waitStatus(t, ctx, m, "a generation with both partitions", func(s consumers.Status) bool {
						return s.Joined && s.Partitions == 2 && s.GroupAssigned == 2
					})
				}
			}
			produce(t, ctx, c.brokers, topic, 0, "p0")
			produce(t, ctx, c.brokers, topic, 1, "p1")
			expect(t, ctx, recs, "p0", "p1")
			t.Logf("records of a topic created after the start read %v after its creation", time.Since(created).Round(time.Millisecond))
			if d := time.Since(created); d > 20*time.Second {
				t.Errorf("the new topic was read %v after its creation, want within seconds", d)
			}
			// The next generation reads from the committed offsets, as after any rebalance.
			// One member commits both partitions: a commit skipped (a member between
			// generations) would make the next expect blame the commit for a record read again.
			committed := 0
			for i, m := range cs {
				if n := m.Assigned(); n > 0 {
					if n != 2 {
						t.Fatalf("member %d commits while reading %d partitions, want 2 (a rebalance under way?): %+v", i, n, m.Status())
					}
					if err := m.Commit(ctx, map[consumers.TopicPartition]int64{{Topic: topic, Partition: 0}: 1, {Topic: topic, Partition: 1}: 1}); err != nil {
						t.Fatal(err)
					}
					committed++
				}
			}
			if committed != 1 {
				t.Fatalf("%d members committed, want 1", committed)
			}

			growTo(t, ctx, c.brokers, topic, 3)
			added := time.Now()
			produce(t, ctx, c.brokers, topic, 2, "p2")
			expect(t, ctx, recs, "p2")
			t.Logf("a record on an added partition read %v after it was added", time.Since(added).Round(time.Millisecond))
			if d := time.Since(added); d > 20*time.Second {
				t.Errorf("the added partition was read %v after it was added, want within seconds", d)
			}

			var reading, standing int
			for _, m := range cs {
				s := waitStatus(t, ctx, m, "every partition read", func(s consumers.Status) bool { return s.Partitions == 3 && s.GroupAssigned == 3 })
				text, err := s.Ready()
				switch {
				case err != nil:
					t.Errorf("member status %+v: not ready: %v", s, err)
				case s.Assigned == 3 && strings.HasPrefix(text, "ready: reading 3 partitions"):
					reading++
				case s.Assigned == 0 && strings.HasPrefix(text, "standby: "):
					standing++
				default:
					t.Errorf("member status %+v says %q", s, text)
				}
			}
			if reading != 1 || standing != c.members-1 {
				t.Errorf("%d members reading and %d standing by, want 1 and %d", reading, standing, c.members-1)
			}
		})
	}
}

// waitStatus polls c's status until cond holds (bounded by ctx) and returns it.
func waitStatus(t *testing.T, ctx context.Context, c *consumers.Consumer, what string, cond func(consumers.Status) bool) consumers.Status {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		s := c.Status()
		if cond(s) {
			return s
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: status %+v", what, s)
		case <-tick.C:
		}
	}
}

// produce writes one record to one partition, waiting out a leader that a new partition
// does not have yet.
func produce(t *testing.T, ctx context.Context, brokers, topic string, partition int, value string) {
	t.Helper()
	for {
		conn, err := kafka.DialLeader(ctx, "tcp", brokers, topic, partition)
		if err == nil {
			_, err = conn.WriteMessages(kafka.Message{Value: []byte(value)})
			conn.Close()
		}
		var kerr kafka.Error
		switch {
		case err == nil:
			return
		case !errors.As(err, &kerr) || !kerr.Temporary():
			t.Fatalf("produce to %s/%d: %v", topic, partition, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("produce to %s/%d: %v", topic, partition, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// expect reads from recs until it has every value, failing on any other. A value may
// come twice: a rebalance before the commit gives its partition again from the
// committed offset.
func expect(t *testing.T, ctx context.Context, recs <-chan consumers.Record, values ...string) {
	t.Helper()
	want, got := map[string]bool{}, map[string]bool{}
	for _, v := range values {
		want[v] = true
	}
	for len(got) < len(want) {
		select {
		case r := <-recs:
			if !want[string(r.Value)] {
				t.Fatalf("record %q (%s/%d@%d) read, want one of %v", r.Value, r.Topic, r.Partition, r.Offset, values)
			}
			got[string(r.Value)] = true
		case <-ctx.Done():
			t.Fatalf("read %v of %v", got, values)
		}
	}
}

// growTo gives topic n partitions if it has fewer, and waits until each has a leader.
func growTo(t *testing.T, ctx context.Context, brokers, topic string, n int) {
	t.Helper()
	partitions := func() ([]kafka.Partition, error) {
		conn, err := kafka.DialContext(ctx, "tcp", brokers)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		return conn.ReadPartitions(topic)
	}
	parts, err := partitions()
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) < n {
		cl := &kafka.Client{Addr: kafka.TCP(brokers)}
		res, err := cl.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: int32(n)}}})
		if err == nil {
			err = res.Errors[topic]
		}
		if err != nil {
			t.Fatalf("add partitions to %s: %v", topic, err)
		}
	}
	for {
		if parts, err := partitions(); err == nil && len(parts) == n && leaders(parts) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s has not got %d partitions with leaders", topic, n)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func leaders(parts []kafka.Partition) bool {
	for _, p := range parts {
		if p.Leader.Host == "" {
			return false
		}
	}
	return true
}

// slogTo is a logger writing text to w.
func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
