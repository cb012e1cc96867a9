package consumers_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/internal/retry"
	"github.com/driftd/driftd/internal/testenv"
)

// Records are fetched, committed only as told, never rewound, and re-read by the next
// member of the group from the committed offset.
func TestConsumerCommitsExplicitlyAndNeverRewinds(t *testing.T) {
	o, ctx, write := numberedTopic(t, 1)
	topic := o.Topics[0]
	write(0, 10)
	c, err := consumers.NewConsumer(o, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		r, err := c.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Value) != strconv.Itoa(i) || r.Offset != int64(i) {
			t.Fatalf("record %d: %q at %d", i, r.Value, r.Offset)
		}
	}
	// Read but not committed: the group's lag counts them (it grows while a member
	// stalls, where the lag of the last record read would not).
	waitGroupLag(ctx, t, c, 10)
	tp := consumers.TopicPartition{Topic: topic}
	if err := c.Commit(ctx, map[consumers.TopicPartition]int64{tp: 6}); err != nil {
		t.Fatal(err)
	}
	// A smaller offset later (a slow, stale commit) must not rewind the group.
	if err := c.Commit(ctx, map[consumers.TopicPartition]int64{tp: 2}); err != nil {
		t.Fatal(err)
	}
	waitGroupLag(ctx, t, c, 4)
	write(10, 15)
	waitGroupLag(ctx, t, c, 9)
	c.Close()

	c2, err := consumers.NewConsumer(o, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	r, err := c2.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Offset != 6 {
		t.Fatalf("the next member starts at %d, want 6", r.Offset)
	}
	// A committed offset beyond the partition's end (the topic was recreated) is named.
	if err := c2.Commit(ctx, map[consumers.TopicPartition]int64{tp: 100}); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for st := c2.Status(); st.LagErr == nil || !strings.Contains(st.LagErr.Error(), topic+"/0 (committed 100, end 15)"); st = c2.Status() {
		select {
		case <-ctx.Done():
			t.Fatalf("lag error %v, want one naming %s/0 committed beyond its end", st.LagErr, topic)
		case <-tick.C:
		}
	}
}

// waitGroupLag waits until c's status reports the group's lag as want (the status is
// checked every WatchInterval).
func waitGroupLag(ctx context.Context, t *testing.T, c *consumers.Consumer, want int64) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if got := c.Status().GroupLag; got == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group lag %d, want %d", c.Status().GroupLag, want)
		case <-tick.C:
		}
	}
}

func TestDeadLetterCarriesProvenance(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	topic := testenv.UniqueName(t)
	o := consumers.Options{Brokers: []string{brokers}}
	ctx := testenv.Context(t, time.Minute)
	if err := consumers.EnsureTopics(ctx, o, 1, topic); err != nil {
		t.Fatal(err)
	}
	d := consumers.NewDeadLetter(o, topic)
	defer d.Close()
	at := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	rec := consumers.Record{Topic: "ml.predictions", Partition: 2, Offset: 41, Key: []byte("k"), Value: []byte{0xff, 0x00},
		Headers: []kafka.Header{{Key: "trace", Value: []byte("abc")}}}
	m := sendAndReadBack(t, ctx, d, brokers, topic, rec, consumers.ClassDecode, errors.New("record is neither JSON nor Avro"), at)
	for k, want := range map[string]string{
		consumers.HeaderSourceTopic: "ml.predictions", consumers.HeaderSourcePartition: "2", consumers.HeaderSourceOffset: "41",
		consumers.HeaderErrorClass: "decode", consumers.HeaderErrorMessage: "record is neither JSON nor Avro",
		consumers.HeaderFailedAt: "2026-03-04T10:00:00Z", "trace": "abc",
	} {
		if got := testenv.Header(m, k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if string(m.Key) != "k" || string(m.Value) != "\xff\x00" {
		t.Errorf("record changed: %q %q", m.Key, m.Value)
	}
}

func TestMain(m *testing.M) { testenv.Main(m) }

// SASL: each mechanism the broker offers carries records both ways; a wrong password is
// refused with a clear error.
func TestSASL(t *testing.T) {
	brokers := os.Getenv("KAFKA_SASL_BROKERS")
	if brokers == "" {
		t.Fatal("KAFKA_SASL_BROKERS is not set: make test starts a SASL listener and sets it")
	}
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			m, err := consumers.SASLMechanism(consumers.SASL(mech), "driftd", "driftd-secret")
			if err != nil {
				t.Fatal(err)
			}
			topic := testenv.UniqueName(t)
			o := consumers.Options{Brokers: []string{brokers}, GroupID: topic + ".g", Topics: []string{topic}, SASL: m}
			ctx := testenv.Context(t, time.Minute)
			if err := consumers.EnsureTopics(ctx, o, 1, topic); err != nil {
				t.Fatal(err)
			}
			w := consumers.NewWriter(o, topic)
			defer w.Close()
			if err := w.Write(ctx, kafka.Message{Value: []byte("over " + mech)}); err != nil {
				t.Fatal(err)
			}
			var logged lockedBuffer
			c, err := consumers.NewConsumer(o, slogTo(&logged))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			r, err := c.Fetch(ctx)
			if err != nil || string(r.Value) != "over "+mech {
				t.Fatalf("fetch: %q %v", r.Value, err)
			}
			// PLAIN sends the password as is: without TLS, driftd says so at start.
			if warned := strings.Contains(logged.String(), "level=WARN msg=\"INSECURE: kafka.sasl.mechanism is PLAIN without kafka.tls"); warned != (mech == "PLAIN") {
				t.Errorf("warned of a clear-text password: %v, want %v; log:\n%s", warned, mech == "PLAIN", logged.String())
			}
			bad, _ := consumers.SASLMechanism(consumers.SASL(mech), "driftd", "wrong-pa55word")
			short, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			err = consumers.EnsureTopics(short, consumers.Options{Brokers: []string{brokers}, SASL: bad}, 1, topic)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), "sasl") {
				t.Fatalf("a wrong password: %v", err)
			}
			if strings.Contains(err.Error(), "wrong-pa55word") {
				t.Fatalf("the password is in the error: %v", err)
			}
		})
	}
	if _, err := consumers.SASLMechanism("GSSAPI", "u", "p"); err == nil {
		t.Error("an unsupported mechanism was accepted")
	}
}

// Spread over members, a rebalance ends the generation: the member that loses partitions is told once
// (ErrRebalanced), never sees records fetched under the ended generation, cannot commit
// partitions it no longer owns, and the group together reads every record exactly from
// the committed offsets.
func TestRebalanceEndsGenerationAndMovesPartitions(t *testing.T) {
	o, ctx, write := numberedTopic(t, 4)
	o.Spread = true
	topic, brokers := o.Topics[0], o.Brokers[0]
	write(0, 400)
	a, err := consumers.NewConsumer(o, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// a owns all four partitions: read ten records, commit them, keep the rest unread.
	seenA := map[consumers.TopicPartition]int64{}
	for i := 0; i < 10; i++ {
		r, err := a.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seenA[consumers.TopicPartition{Topic: r.Topic, Partition: r.Partition}] = r.Offset + 1
	}
	if err := a.Commit(ctx, seenA); err != nil {
		t.Fatal(err)
	}
	b, err := consumers.NewConsumer(o, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// b's join ends a's generation; a keeps fetching until it is told.
	bRecs, _ := fetchInBackground(t, ctx, b)
	var rebalanced error
	for rebalanced == nil {
		_, err := a.Fetch(ctx)
		switch {
		case errors.Is(err, consumers.ErrRebalanced):
			rebalanced = err
		case err != nil:
			t.Fatal(err)
		}
	}
	// From the next generation on, a and b split the partitions and together read every
	// record after the committed offsets exactly once.
	got := map[string]int{}
	owner := map[consumers.TopicPartition]string{}
	want := 400 - 10
	deadline := testenv.Context(t, time.Minute)
	aRecs, _ := fetchInBackground(t, ctx, a)
	for n := 0; n < want; n++ {
		var r consumers.Record
		var who string
		select {
		case r = <-aRecs:
			who = "a"
		case r = <-bRecs:
			who = "b"
		case <-deadline.Done():
			t.Fatalf("read %d of %d records after the rebalance", n, want)
		}
		tp := consumers.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		if o, ok := owner[tp]; ok && o != who {
			t.Fatalf("partition %d read by both members", r.Partition)
		}
		owner[tp] = who
		got[string(r.Value)]++
		if r.Offset < seenA[tp] {
			t.Fatalf("partition %d re-read from %d, committed %d", r.Partition, r.Offset, seenA[tp])
		}
	}
	if len(got) != want {
		t.Fatalf("%d distinct records, want %d", len(got), want)
	}
	for v, n := range got {
		if n != 1 {
			t.Fatalf("record %s read %d times", v, n)
		}
	}
	owners := map[string]int{}
	for _, who := range owner {
		owners[who]++
	}
	if owners["a"] != 2 || owners["b"] != 2 {
		t.Fatalf("partitions per member %v, want 2 and 2", owners)
	}
	// a commits every partition: only its own two move; b's keep b's (none yet).
	all := map[consumers.TopicPartition]int64{}
	for p := 0; p < 4; p++ {
		all[consumers.TopicPartition{Topic: topic, Partition: p}] = 90
	}
	if err := a.Commit(ctx, all); err != nil {
		t.Fatal(err)
	}
	res, err := (&kafka.Client{Addr: kafka.TCP(brokers)}).OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: o.GroupID, Topics: map[string][]int{topic: {0, 1, 2, 3}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Topics[topic] {
		tp := consumers.TopicPartition{Topic: topic, Partition: p.Partition}
		want := seenA[tp] // committed before the rebalance (or nothing: -1)
		if _, ok := seenA[tp]; !ok {
			want = -1
		}
		if owner[tp] == "a" {
			want = 90
		}
		if p.CommittedOffset != want {
			t.Errorf("partition %d (read by %s): committed %d, want %d", p.Partition, owner[tp], p.CommittedOffset, want)
		}
	}
}

// A record larger than the dead-letter topic accepts is kept cut down — its value, its key
// and its headers, whichever made it too large — with the original sizes in headers,
// rather than retried forever (which would stop its partition).
func TestDeadLetterTruncatesWhatTheTopicRefuses(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	ctx := testenv.Context(t, 2*time.Minute)
	conn, err := kafka.DialContext(ctx, "tcp", brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	o := consumers.Options{Brokers: []string{brokers}}
	big := []byte(strings.Repeat("0123456789", 100_000)) // 1 MB
	var manyHeaders []kafka.Header
	for i := 0; i < 40; i++ { // 40 × 10 kB: the first one fits the header budget
		manyHeaders = append(manyHeaders, kafka.Header{Key: "h" + strconv.Itoa(i), Value: big[:10_000]})
	}
	for _, c := range []struct {
		name                            string
		rec                             consumers.Record
		value, key                      []byte
		valueFrom, keyFrom, headersFrom string
		headers                         int // the record's own headers kept
	}{
		{"value", consumers.Record{Value: big}, big[:consumers.TruncatedValueBytes], nil, "1000000", "", "", 0},
		{"key", consumers.Record{Key: big, Value: []byte("v")}, []byte("v"), big[:consumers.TruncatedKeyBytes], "", "1000000", "", 0},
		{"one huge header", consumers.Record{Value: []byte("v"), Headers: []kafka.Header{{Key: "trace", Value: big}, {Key: "small", Value: []byte("s")}}},
			[]byte("v"), nil, "", "", "2", 1},
		{"many headers", consumers.Record{Value: []byte("v"), Headers: manyHeaders}, []byte("v"), nil, "", "", "40", 1},
		{"everything", consumers.Record{Key: big, Value: big, Headers: manyHeaders}, big[:consumers.TruncatedValueBytes],
			big[:consumers.TruncatedKeyBytes], "1000000", "1000000", "40", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			topic := testenv.UniqueName(t)
			if err := conn.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: 1, ReplicationFactor: 1,
				ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: "200000"}}}); err != nil {
				t.Fatal(err)
			}
			if err := consumers.EnsureTopics(ctx, o, 1, topic); err != nil {
				t.Fatal(err)
			}
			d := consumers.NewDeadLetter(o, topic)
			defer d.Close()
			c.rec.Topic, c.rec.Offset = "ml.predictions", 9
			m := sendAndReadBack(t, ctx, d, brokers, topic, c.rec, consumers.ClassInvalid, errors.New("too big"), time.Now())
			if string(m.Value) != string(c.value) || string(m.Key) != string(c.key) {
				t.Errorf("kept a key of %d and a value of %d bytes; want %d and %d", len(m.Key), len(m.Value), len(c.key), len(c.value))
			}
			for h, want := range map[string]string{consumers.HeaderTruncatedFrom: c.valueFrom, consumers.HeaderKeyTruncatedFrom: c.keyFrom,
				consumers.HeaderHeadersTruncatedFrom: c.headersFrom, consumers.HeaderSourceOffset: "9", consumers.HeaderErrorClass: consumers.ClassInvalid} {
				if got := testenv.Header(m, h); got != want {
					t.Errorf("header %s = %q, want %q", h, got, want)
				}
			}
			own := 0
			for _, h := range c.rec.Headers {
				if got := testenv.Header(m, h.Key); got != "" {
					own++
					if got != string(h.Value) {
						t.Errorf("header %s changed", h.Key)
					}
				}
			}
			if own != c.headers {
				t.Errorf("%d of the record's headers kept, want %d", own, c.headers)
			}
		})
	}
}

// Which produce errors are retried: a record refused for what it is fails again; the rest
// may pass.
func TestClassifyWrite(t *testing.T) {
	for _, c := range []struct {
		err  error
		want retry.Class
	}{
		{kafka.MessageSizeTooLarge, retry.Fatal},
		{kafka.MessageTooLargeError{}, retry.Fatal},
		{fmt.Errorf("produce to x: %w", kafka.WriteErrors{nil, kafka.InvalidTopic}), retry.Fatal},
		{kafka.InvalidRecord, retry.Fatal},
		{kafka.LeaderNotAvailable, retry.Retryable},
		{kafka.NotEnoughReplicas, retry.Retryable},
		{kafka.TopicAuthorizationFailed, retry.Retryable},
		{kafka.WriteErrors{kafka.RequestTimedOut, nil}, retry.Retryable},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), retry.Retryable},
		{context.DeadlineExceeded, retry.Retryable},
		{errors.New("something new"), retry.Retryable},
	} {
		if got := consumers.ClassifyWrite(c.err); got != c.want {
			t.Errorf("ClassifyWrite(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// Active/standby (the default): a member that joins waits; the active member goes on
// reading without a reset; when it leaves, the standby takes every partition from the
// committed offsets. Every record after them is read exactly once.
func TestStandbyTakesOverWhenTheActiveMemberLeaves(t *testing.T) {
	o, ctx, write := numberedTopic(t, 3)
	write(0, 100)
	a, err := consumers.NewConsumer(o, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	next := map[consumers.TopicPartition]int64{}
	fetch := func(c *consumers.Consumer, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			r, err := c.Fetch(ctx)
			if err != nil {
				t.Fatalf("fetch %d: %v", i, err)
			}
			seen[string(r.Value)]++
			next[consumers.TopicPartition{Topic: r.Topic, Partition: r.Partition}] = r.Offset + 1
		}
	}
	fetch(a, 50)
	b, err := consumers.NewConsumer(o, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	bRecs, bErrs := fetchInBackground(t, ctx, b)
	// b's join ends a's generation, gives a the same partitions, and a goes on: the 50
	// records left and 50 more, with no ErrRebalanced and no record twice.
	write(100, 150)
	fetch(a, 100)
	if err := a.Commit(ctx, next); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-bRecs:
		t.Fatalf("the standby read record %s while the active member runs", r.Value)
	default:
	}
	// a leaves: b takes over from the committed offsets and reads the rest.
	a.Close()
	write(150, 200)
	deadline := testenv.Context(t, time.Minute)
	for n := 0; n < 50; n++ {
		select {
		case r := <-bRecs:
			seen[string(r.Value)]++
		case err := <-bErrs:
			t.Fatalf("standby: %v", err)
		case <-deadline.Done():
			t.Fatalf("the standby read %d of 50 records after taking over", n)
		}
	}
	for i := 0; i < 200; i++ {
		if seen[strconv.Itoa(i)] != 1 {
			t.Fatalf("record %d read %d times", i, seen[strconv.Itoa(i)])
		}
	}
}

// fetchInBackground fetches from c until the test ends, passing on records and errors
// other than ErrRebalanced.
func fetchInBackground(t *testing.T, ctx context.Context, c *consumers.Consumer) (<-chan consumers.Record, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	recs, errs := make(chan consumers.Record, 1000), make(chan error, 100)
	go func() {
		for {
			r, err := c.Fetch(ctx)
			switch {
			case ctx.Err() != nil:
				return
			case err == nil:
				recs <- r
			case !errors.Is(err, consumers.ErrRebalanced):
				select {
				case errs <- err:
				default:
				}
			}
		}
	}()
	return recs, errs
}

// numberedTopic makes a topic of partitions partitions and a group for it, and returns
// them with a func that produces records from..to-1, each keyed and valued by its number.
func numberedTopic(t *testing.T, partitions int) (consumers.Options, context.Context, func(from, to int)) {
	t.Helper()
	topic := testenv.UniqueName(t)
	o := consumers.Options{Brokers: []string{testenv.KafkaBrokers(t)}, GroupID: topic + ".g", Topics: []string{topic}}
	ctx := testenv.Context(t, 2*time.Minute)
	if err := consumers.EnsureTopics(ctx, o, partitions, topic); err != nil {
		t.Fatal(err)
	}
	w := consumers.NewWriter(o, topic)
	t.Cleanup(func() { w.Close() })
	return o, ctx, func(from, to int) {
		t.Helper()
		var msgs []kafka.Message
		for i := from; i < to; i++ {
			msgs = append(msgs, kafka.Message{Key: []byte(strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))})
		}
		if err := w.Write(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
}

// sendAndReadBack sets rec aside with d and returns the dead letter as the topic holds it.
func sendAndReadBack(t *testing.T, ctx context.Context, d *consumers.DeadLetter, brokers, topic string, rec consumers.Record, class string, reason error, at time.Time) kafka.Message {
	t.Helper()
	if err := d.Send(ctx, rec, class, reason, at); err != nil {
		t.Fatal(err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{brokers}, Topic: topic, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A rolling upgrade: a member that speaks only range (spread, or an older driftd) and a
// default member share one group on range, rather than the newcomer being refused.
func TestMixedGroupFallsBackToRange(t *testing.T) {
	o, ctx, write := numberedTopic(t, 2)
	write(0, 100)
	old := o
	old.Spread = true
	a, err := consumers.NewConsumer(old, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := consumers.NewConsumer(o, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, aErrs := fetchInBackground(t, ctx, a) // a must keep fetching to take part in the rebalance
	bRecs, bErrs := fetchInBackground(t, ctx, b)
	select {
	case <-bRecs:
		if a.Assigned() != 1 || b.Assigned() != 1 {
			t.Fatalf("partitions: %d and %d, want one each", a.Assigned(), b.Assigned())
		}
	case err := <-bErrs:
		t.Fatalf("the newcomer: %v", err)
	case err := <-aErrs:
		t.Fatalf("the older member: %v", err)
	case <-ctx.Done():
		t.Fatal("the newcomer read nothing")
	}
}

// A spread member says whether the group gives its one-reader topics whole to one
// member: yes while every member speaks driftd-spread, no once a member that does not
// (an older driftd) makes the group fall back to range.
func TestSpreadGroupSaysWhetherItsTopicsAreWhole(t *testing.T) {
	o, ctx, write := numberedTopic(t, 2)
	write(0, 100)
	o.WatchInterval = 200 * time.Millisecond
	spread := o
	spread.Spread, spread.OneReader = true, o.Topics
	a, err := consumers.NewConsumer(spread, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if whole, known := a.WholeTopics(); known {
		t.Fatalf("before joining: whole %v, known", whole)
	}
	_, aErrs := fetchInBackground(t, ctx, a)
	waitWhole := func(want bool) {
		t.Helper()
		for {
			if whole, known := a.WholeTopics(); known && whole == want {
				return
			}
			select {
			case err := <-aErrs:
				t.Fatal(err)
			case <-ctx.Done():
				whole, known := a.WholeTopics()
				t.Fatalf("whole %v known %v (status %+v), want whole %v", whole, known, a.Status(), want)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	waitWhole(true)
	b, err := consumers.NewConsumer(o, testenv.Logger(t)) // speaks active/standby and range
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fetchInBackground(t, ctx, b)
	waitWhole(false)
	if a.Assigned() != 1 {
		t.Errorf("the spread member reads %d partitions on range, want 1", a.Assigned())
	}
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
