// Package consumers is driftd's Kafka edge: a consumer-group reader with explicit,
// caller-driven commits, the dead-letter writer, and the alert publisher.
package consumers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/driftd/driftd/internal/retry"
)

// Record is one Kafka record as driftd sees it.
type Record struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []kafka.Header
	Time      time.Time
	// HighWaterMark is the partition's end offset when the record was fetched: the
	// partition's lag is HighWaterMark − Offset − 1.
	HighWaterMark int64
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int
}

// Options configure the Kafka connection.
type Options struct {
	Brokers []string
	GroupID string
	Topics  []string
	TLS     *tls.Config
	// SASL authenticates to the brokers (nil: none); see SASLMechanism.
	SASL sasl.Mechanism
	// MaxBytes bounds one fetch; records larger than this cannot be read (default 16 MiB).
	MaxBytes int
	// Spread spreads partitions over the group's members (Kafka's range assignment)
	// instead of giving them all to one active member with the others on standby. Each
	// member then judges drift on its share of a model's partitions: exact only when every
	// model's events are on one partition (keyed by model).
	Spread bool
	// OneReader lists topics whose partitions a spread group gives all to one member
	// (oneReader): the pipeline topic, whose stages one member judges whole.
	OneReader []string
	// WatchInterval is how often a member checks that the group reads every partition of
	// its topics, so that topics created and partitions added after it joined are read
	// (default 3 s).
	WatchInterval time.Duration
	// MaxOutage is how long joining the group, or reading an assigned partition, may keep
	// failing before Fetch gives up (limits.max_outage; 0: never), so that the member
	// exits and a restart, or another member, reads instead of this one holding on.
	MaxOutage time.Duration
}

// dialTimeout bounds each connection to a broker.
const dialTimeout = 10 * time.Second

// fetchGap is the longest silence between two failures of one outage. Joining and
// reading have no success to report on a quiet topic, and kafka-go reports a failing
// partition once it has tried every broker (two dials each when they time out) plus its
// backoff (1 s).
func (o Options) fetchGap() time.Duration {
	return max(time.Minute, time.Duration(2*len(o.Brokers))*dialTimeout+5*time.Second)
}

// OutageFloor is the shortest MaxOutage that cannot end a run only waiting for Kafka:
// Kafka's own recoveries (a coordinator moving, a leader elected, a rebalance) fail joins
// and fetches for up to the group's rebalance timeout (30 s), and a quiet partition's
// separate failures less than a gap apart count as one outage.
func (o Options) OutageFloor() time.Duration { return max(2*time.Minute, 2*o.fetchGap()) }

// ErrGaveUp is wrapped by the error Fetch returns when joining the group, or reading
// one of its partitions, failed for longer than Options.MaxOutage. It ends the run: the
// member's partitions are not read while it holds them.
var ErrGaveUp = errors.New("gave up fetching")

// Classify is the one place that decides whether a Kafka fetch error is worth another
// attempt: every error is (a broker down or moving, an ACL an operator can fix), until
// the outage bound says otherwise (ErrGaveUp).
func Classify(err error) retry.Class {
	if errors.Is(err, ErrGaveUp) {
		return retry.Fatal
	}
	return retry.Retryable
}

// fetchStreak follows the failures of one fetch loop. kafka-go waits between its own
// attempts; the streak's waits pace the joins only (a partition reader takes kafka-go's
// reports as they come, so that none is read late, after the partition recovered).
func (c *Consumer) fetchStreak(what string) *retry.Streak {
	p := retry.Policy{Initial: 200 * time.Millisecond, Max: 5 * time.Second, MaxOutage: c.o.MaxOutage}
	return &retry.Streak{Policy: p, What: what, Classify: Classify, Gap: c.o.fetchGap(), Observe: func(a retry.Attempt) {
		if a.N&(a.N-1) != 0 {
			return // logged at attempts 1, 2, 4, 8, …: kafka-go reports a failing partition every second
		}
		level := slog.LevelWarn
		if kerr := (kafka.Error)(0); errors.As(a.Err, &kerr) && kerr.Temporary() && a.N == 1 {
			level = slog.LevelInfo // a coordinator loading or moving: it passes by itself
		}
		c.log.Log(context.Background(), level, a.What+" failing; retrying", "err", a.Err, "attempt", a.N,
			"failing_for", a.Elapsed.Round(time.Millisecond))
	}}
}

// groupMoving reports whether a join failed because the group is changing (a live
// coordinator said so): Kafka answered, so it is no failure of Kafka's.
func groupMoving(err error) bool {
	return errors.Is(err, kafka.RebalanceInProgress) || errors.Is(err, kafka.IllegalGeneration) ||
		errors.Is(err, kafka.UnknownMemberId) || errors.Is(err, kafka.MemberIDRequired)
}

// Consumer reads a set of topics in a consumer group. It never commits by itself: the
// caller commits an offset only once everything derived from the records before it is
// durably written.
//
// It drives kafka-go's ConsumerGroup directly rather than its group Reader because the
// Reader hides partition assignments: after a rebalance it would go on handing out
// records fetched for partitions this member no longer owns, and commit them under a
// generation that has ended. Here each generation has its own partition readers and
// channel; when it ends, its buffered records are dropped and Fetch says so once
// (ErrRebalanced), so the caller can drop what it derived from them.
type Consumer struct {
	o   Options
	cg  *kafka.ConsumerGroup
	log *slog.Logger
	// client asks the brokers about topics and the group (watch).
	client *kafka.Client
	// rejoined is when watch last ended a generation (unix ns), so that a group that
	// cannot assign a partition is asked again once a WatchInterval, not in a loop.
	rejoined atomic.Int64

	mu  sync.Mutex
	gen *generation // nil between generations

	// Owned by the fetching goroutine: the generation that ended last, what Fetch
	// returned last per partition, and whether the caller still has to hear that the
	// assignment changed.
	prev *generation
	// delivered is the offset of the last record Fetch returned per partition, by
	// pointer: set in place for every record, without a map assignment.
	delivered map[TopicPartition]*int64
	changed   bool
	// active says, in the next join, that this member reads partitions (activeStandby).
	active *atomic.Bool
	// joins follows failed joins; joinAfter is when the next may be tried.
	joins     *retry.Streak
	joinAfter time.Time
	moving    int // joins in a row that met the group changing (groupMoving)
	// reads follow each partition's failed fetches across generations (under mu).
	reads map[TopicPartition]*retry.Streak
	// failedAt is when each partition last failed to be read (under mu; Failing).
	failedAt map[TopicPartition]time.Time
	// gates steer each partition's reading (Pause, Waiting), under mu.
	gates map[TopicPartition]*gate
	// gaveUp is the error of a join or partition reader that gave up (ErrGaveUp), under
	// mu: every Fetch returns it from then on.
	gaveUp error
}

// ErrRebalanced is returned (wrapped) by Fetch once when a new generation of the group
// assigned this member other partitions than the last one: partitions may have moved to
// another member, which reads them from the committed offsets, and this member reads its
// own from there too. State built from uncommitted records must be dropped. When the
// next generation follows directly with the same partitions (a standby joined), reading
// simply goes on after the last record returned, and Fetch says nothing.
var ErrRebalanced = errors.New("consumer group rebalanced")

type generation struct {
	g     *kafka.Generation
	recs  chan Record
	ended chan struct{}
	// failed wakes Fetch when a partition reader gave up (Consumer.gaveUp).
	failed    chan struct{}
	owned     map[TopicPartition]bool
	committed map[TopicPartition]int64
	// from is where the generation began reading each partition (kafka.FirstOffset or
	// kafka.LastOffset when nothing was committed).
	from   map[TopicPartition]int64
	status atomic.Pointer[Status] // the last check of watch
	// counts are the partition counts of topics asked about by Owned (under Consumer.mu).
	counts map[string]int
}

func dialer(o Options) *kafka.Dialer {
	return &kafka.Dialer{Timeout: dialTimeout, DualStack: true, TLS: o.TLS, SASLMechanism: o.SASL}
}

// SASLMechanism returns the mechanism m names, with these credentials (nil for none).
func SASLMechanism(m SASL, username, password string) (sasl.Mechanism, error) {
	m, err := ParseSASL(string(m)) // a SASL made in code may be in any case
	if err != nil {
		return nil, err
	}
	switch m {
	case SASLNone:
		return nil, nil
	case SASLPlain:
		return plain.Mechanism{Username: username, Password: password}, nil
	case SASLScram256:
		return scram.Mechanism(scram.SHA256, username, password)
	case SASLScram512:
		return scram.Mechanism(scram.SHA512, username, password)
	}
	return nil, fmt.Errorf("SASL mechanism %q is not supported", m) // a new constant without its case here
}

// NewConsumer joins the group. Offsets start at the earliest record for a new group, so
// nothing produced before driftd first ran is skipped.
func NewConsumer(o Options, log *slog.Logger) (*Consumer, error) {
	if len(o.Brokers) == 0 || o.GroupID == "" || len(o.Topics) == 0 {
		return nil, errors.New("consumer: brokers, group id and topics are required")
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 16 << 20
	}
	if o.WatchInterval <= 0 {
		o.WatchInterval = 3 * time.Second
	}
	if o.SASL != nil && o.SASL.Name() == "PLAIN" && o.TLS == nil {
		// Kafka accepts it (a SASL_PLAINTEXT listener), so nothing else would say so.
		log.Warn("INSECURE: kafka.sasl.mechanism is PLAIN without kafka.tls: the Kafka password crosses the network in clear text, "+
			"readable by anyone on the path; enable kafka.tls (a SASL_SSL listener) or use SCRAM-SHA-256/512", "brokers", strings.Join(o.Brokers, ","))
	}
	// The client's topic metadata is kafka-go's cached copy, 6 s old at most by default:
	// a partition added to a topic could then go unseen by the watch and by the
	// assignment (freshPartitions) for that much longer than a WatchInterval, and two
	// members could disagree about it for as long. So the copy is kept no longer than
	// the watch looks.
	client := &kafka.Client{Addr: kafka.TCP(o.Brokers...), Timeout: 10 * time.Second,
		Transport: &kafka.Transport{TLS: o.TLS, SASL: o.SASL, DialTimeout: dialTimeout, MetadataTTL: o.WatchInterval}}
	lookup := func(topics []string) ([]kafka.Partition, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		parts, _, err := topicPartitions(ctx, client, topics)
		return parts, err
	}
	active := &atomic.Bool{}
	// Range second: during a rolling upgrade from a driftd that only spoke range, the
	// group agrees on range (each member judging its share) instead of refusing the
	// newcomer; once every member speaks active/standby, the group chooses it.
	balancers := []kafka.GroupBalancer{
		freshPartitions{activeStandby{since: time.Now().UnixNano(), active: active}, lookup},
		freshPartitions{kafka.RangeGroupBalancer{}, lookup},
	}
	if o.Spread {
		// Range second again: a group whose members do not all speak it yet agrees on range.
		balancers = []kafka.GroupBalancer{freshPartitions{oneReader{topics: o.OneReader}, lookup}, balancers[1]}
	}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:             o.GroupID,
		GroupBalancers: balancers,
		Brokers:        o.Brokers,
		Dialer:         dialer(o),
		Topics:         o.Topics,
		StartOffset:    kafka.FirstOffset,
		// Heartbeats run beside the pipeline, not in it (a long ClickHouse retry does
		// not stop them), so a short session is safe: a standby takes over ~10 s after
		// the active member dies.
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  30 * time.Second,
		JoinGroupBackoff:  time.Second,
		// Not kafka-go's watch of partition changes, which misses topics created during
		// the join and rejoins in a loop while a topic does not exist: see watch.
		WatchPartitionChanges: false,
		Timeout:               10 * time.Second,
		ErrorLogger:           kafka.LoggerFunc(func(msg string, args ...any) { log.Warn("kafka group: " + fmt.Sprintf(msg, args...)) }),
	})
	if err != nil {
		return nil, fmt.Errorf("consumer group %s: %w", o.GroupID, err)
	}
	c := &Consumer{o: o, cg: cg, log: log, client: client, delivered: map[TopicPartition]*int64{}, active: active,
		reads: map[TopicPartition]*retry.Streak{}, failedAt: map[TopicPartition]time.Time{}, gates: map[TopicPartition]*gate{}}
	c.joins = c.fetchStreak("join consumer group " + o.GroupID)
	return c, nil
}

// Fetch returns the next record; it blocks until one arrives or ctx ends. Between
// generations it joins the next one.
func (c *Consumer) Fetch(ctx context.Context) (Record, error) {
	if err := c.failure(); err != nil {
		return Record{}, err
	}
	gen := c.current()
	for gen == nil {
		// The wait after a failed join outlasts a call cut short by ctx (the caller's tick).
		if !retry.Sleep(ctx, time.Until(c.joinAfter)) {
			return Record{}, ctx.Err()
		}
		g, err := c.cg.Next(ctx)
		if err == nil {
			c.joins.Reset()
			c.moving = 0
			gen = c.start(g)
			if c.changed {
				c.changed = false
				return Record{}, fmt.Errorf("generation %d of group %s assigned other partitions: %w", g.ID, c.o.GroupID, ErrRebalanced)
			}
			break
		}
		if ctx.Err() != nil && err == ctx.Err() {
			return Record{}, err
		}
		if groupMoving(err) {
			// kafka-go rejoins at once after some of these: the wait keeps a broker
			// that answers them straight away from being asked in a loop.
			c.joins.Reset()
			if c.moving++; c.moving&(c.moving-1) == 0 {
				c.log.Info("joining consumer group again", "group", c.o.GroupID, "err", err, "times", c.moving)
			}
			c.joinAfter = time.Now().Add(time.Second)
			continue
		}
		wait, err := c.joins.Fail(time.Now(), err)
		if err != nil {
			return Record{}, c.giveUp(err)
		}
		c.joinAfter = time.Now().Add(wait)
	}
	var rec Record
	select {
	case rec = <-gen.recs:
		// A record ready: taken without the select below, which locks all four
		// channels and was a large part of a record's hand-over. A reader's failure or
		// the end of ctx is seen once no record is ready.
	default:
		select {
		case <-gen.failed:
			return Record{}, c.failure()
		case <-gen.ended:
			c.end(gen)
			return c.Fetch(ctx)
		case rec = <-gen.recs:
		case <-ctx.Done():
			return Record{}, ctx.Err()
		}
	}
	select {
	case <-gen.ended:
		// Fetched under a generation that has just ended: another member may already
		// own it.
		c.end(gen)
		return c.Fetch(ctx)
	default:
		if last := c.delivered[TopicPartition{rec.Topic, rec.Partition}]; last != nil {
			*last = rec.Offset
		} else {
			off := rec.Offset
			c.delivered[TopicPartition{rec.Topic, rec.Partition}] = &off
		}
		return rec, nil
	}
}

// readStreak is tp's streak of failed fetches, kept across generations: a rebalance
// does not make a partition that cannot be read readable.
func (c *Consumer) readStreak(tp TopicPartition) *retry.Streak {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.reads[tp]
	if !ok {
		s = c.fetchStreak(fmt.Sprintf("fetch %s/%d", tp.Topic, tp.Partition))
		c.reads[tp] = s
	}
	return s
}

// readFailed records that reading tp failed at now.
func (c *Consumer) readFailed(tp TopicPartition, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failedAt[tp] = now
}

// Failing returns the partitions this member reads that failed to be read less than a
// gap between failures ago (fetchGap), delivering since or not: records fetched after
// a failure may still wait in the buffers, and a flapping leader delivers between
// failures. Whatever they hold may have records after what was read: a reader of the
// stream waits for them as for partitions read behind, so that what it judges does not
// depend on when a broker failed. known is false between generations, when the member
// cannot tell which partitions it reads.
func (c *Consumer) Failing(now time.Time) (failing []TopicPartition, known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == nil {
		return nil, false
	}
	var out []TopicPartition
	for tp, at := range c.failedAt {
		if now.Sub(at) > c.o.fetchGap() {
			delete(c.failedAt, tp) // no failure for a gap: readable again, or moved away
			continue
		}
		if c.gen.owned[tp] {
			out = append(out, tp)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, true
}

// giveUp records that fetching gave up with err, for every Fetch from now on.
func (c *Consumer) giveUp(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gaveUp == nil {
		c.gaveUp = fmt.Errorf("%w: %w", ErrGaveUp, err)
	}
	return c.gaveUp
}

func (c *Consumer) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gaveUp
}

func (c *Consumer) current() *generation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// end forgets an ended generation; its buffered records are dropped with it.
func (c *Consumer) end(gen *generation) {
	c.mu.Lock()
	if c.gen == gen {
		c.gen = nil
	}
	c.mu.Unlock()
	c.prev = gen
}

// start launches one reader per assigned partition, each bound to the generation.
func (c *Consumer) start(g *kafka.Generation) *generation {
	gen := &generation{g: g, recs: make(chan Record, 256), ended: make(chan struct{}), failed: make(chan struct{}, 1),
		owned: map[TopicPartition]bool{}, committed: map[TopicPartition]int64{}, from: map[TopicPartition]int64{}}
	for topic, parts := range g.Assignments {
		for _, pa := range parts {
			tp := TopicPartition{topic, pa.ID}
			gen.owned[tp] = true
			if pa.Offset >= 0 {
				gen.committed[tp] = pa.Offset
			}
		}
	}
	// The same partitions straight after the last generation: nobody else read them in
	// between, so reading goes on after the last record returned (what was buffered for
	// the ended generation is fetched again). Anything else starts over from the
	// committed offsets, and the caller is told. The same generation again is what a
	// follower gets when it joins while the group is stable (watch).
	cont := c.prev != nil && (g.ID == c.prev.g.ID || g.ID == c.prev.g.ID+1) && sameKeys(gen.owned, c.prev.owned)
	c.changed = c.prev != nil && !cont
	var assigned []string
	for topic, parts := range g.Assignments {
		for _, pa := range parts {
			tp := TopicPartition{topic, pa.ID}
			from := pa.Offset
			if last := c.delivered[tp]; cont && last != nil {
				from = *last + 1
			}
			gen.from[tp] = from
			assigned = append(assigned, fmt.Sprintf("%s/%d@%d", topic, pa.ID, from))
			g.Start(func(ctx context.Context) { c.read(ctx, gen, tp, from) })
		}
	}
	if !cont {
		clear(c.delivered)
	}
	c.active.Store(len(gen.owned) > 0)
	sort.Strings(assigned)
	g.Start(func(ctx context.Context) {
		<-ctx.Done()
		close(gen.ended)
	})
	g.Start(func(ctx context.Context) { c.watch(ctx, gen) })
	c.mu.Lock()
	c.gen = gen
	// A partition failing when the last generation ended is failing until its new reader
	// says otherwise: the time between generations, when no reader could fail, does not
	// count towards the gap that lets it go (Failing).
	now := time.Now()
	for tp, at := range c.failedAt {
		if gen.owned[tp] && now.Sub(at) <= c.o.fetchGap() {
			c.failedAt[tp] = now
		}
	}
	c.mu.Unlock()
	c.log.Info("joined consumer group", "group", c.o.GroupID, "generation", g.ID, "continued", cont, "partitions", strings.Join(assigned, " "))
	return gen
}

func sameKeys(a, b map[TopicPartition]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// read fetches one partition from offset into the generation's channel until the
// generation ends. It must not return before that: kafka-go ends a generation as soon as
// one of its goroutines returns.
func (c *Consumer) read(ctx context.Context, gen *generation, tp TopicPartition, offset int64) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        c.o.Brokers,
		Topic:          tp.Topic,
		Partition:      tp.Partition,
		Dialer:         dialer(c.o),
		MinBytes:       1,
		MaxBytes:       c.o.MaxBytes,
		MaxWait:        250 * time.Millisecond,
		QueueCapacity:  64,
		ReadBackoffMin: 50 * time.Millisecond,
		ReadBackoffMax: time.Second,
		ErrorLogger:    kafka.LoggerFunc(func(msg string, args ...any) { c.log.Warn("kafka reader: " + fmt.Sprintf(msg, args...)) }),
	})
	defer r.Close()
	fail := func(err error) {
		c.giveUp(err)
		select {
		case gen.failed <- struct{}{}:
		default: // Fetch is woken already
		}
		<-ctx.Done()
	}
	if err := r.SetOffset(offset); err != nil {
		fail(fmt.Errorf("position the reader of %s/%d at %d: %w", tp.Topic, tp.Partition, offset, err))
		return
	}
	streak := c.readStreak(tp)
	g := c.gateOf(tp)
	// This reader's wait starts now, not when the last generation's reader began one.
	g.waiting.Store(time.Now().UnixNano())
	failing := true // as far as this reader knows: the partition's last reader may have failed
	for {
		if g.waiting.Load() == 0 { // a failure does not end the wait: nothing came
			g.waiting.Store(time.Now().UnixNano())
		}
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			now := time.Now()
			c.readFailed(tp, now)
			failing = true
			// No wait: kafka-go backs off itself, and queues its reports; waiting here
			// would read them late, after the partition recovered.
			if _, err := streak.Fail(now, err); err != nil {
				fail(err)
				return
			}
			continue
		}
		g.waiting.Store(0)
		if failing {
			streak.Reset()
			failing = false
		}
		rec := Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Headers: m.Headers,
			Time: m.Time, HighWaterMark: m.HighWaterMark}
		if !g.pass(ctx) {
			return
		}
		select {
		case gen.recs <- rec: // room: no wait on ctx as well
		default:
			select {
			case gen.recs <- rec:
			case <-ctx.Done():
				return
			}
		}
	}
}

// Commit commits, per partition, the offset of the next record to read. Only partitions
// of the current generation are committed, and offsets at or below what was already
// committed are skipped, so a commit never rewinds and never lands under a generation
// that has ended (ErrRebalanced).
func (c *Consumer) Commit(ctx context.Context, next map[TopicPartition]int64) error {
	gen := c.current()
	if gen == nil {
		return fmt.Errorf("commit offsets: %w", ErrRebalanced)
	}
	offsets := map[string]map[int]int64{}
	for tp, off := range next {
		if !gen.owned[tp] {
			continue
		}
		if cur, ok := gen.committed[tp]; ok && off <= cur {
			continue
		}
		if offsets[tp.Topic] == nil {
			offsets[tp.Topic] = map[int]int64{}
		}
		offsets[tp.Topic][tp.Partition] = off
	}
	if len(offsets) == 0 {
		return nil
	}
	if err := gen.g.CommitOffsets(offsets); err != nil {
		return fmt.Errorf("commit offsets in generation %d: %w", gen.g.ID, err)
	}
	for topic, parts := range offsets {
		for p, off := range parts {
			gen.committed[TopicPartition{topic, p}] = off
		}
	}
	return nil
}

// Assigned returns how many partitions the current generation gives this member (0
// between generations, and on a standby).
func (c *Consumer) Assigned() int {
	if gen := c.current(); gen != nil {
		return len(gen.owned)
	}
	return 0
}

// Buffered is how many records Fetch would return at once, without waiting: the
// decode-ahead stage batches what is ready.
func (c *Consumer) Buffered() int {
	if gen := c.current(); gen != nil {
		return len(gen.recs)
	}
	return 0
}

// Joined reports whether the group has given this member a generation (its partitions,
// perhaps none): before the first, Owned says this member reads nothing.
func (c *Consumer) Joined() bool { return c.current() != nil }

// Generation returns the ID of the group's generation this member reads in: 0 between
// generations, and from the moment the current one ends (its readers stop where they
// are, each partition at another point, before the member learns of the next). A spread
// group's progress rows say which one they were written in, so that a judge tells a
// partition's current reader from one the group has moved past, and a judge does not
// judge on what its own stopped readers last said.
func (c *Consumer) Generation() int32 {
	gen := c.current()
	if gen == nil {
		return 0
	}
	select {
	case <-gen.ended:
		return 0
	default:
		return gen.g.ID
	}
}

// Owned returns the partitions of topic that the current generation gives this member,
// in order, and how many partitions the topic has, as the brokers said when first asked
// in this generation (the client's metadata, at most a WatchInterval old; a partition
// added later starts a new one). Between generations it returns none. A spread group's
// members use it to agree, without talking, on which of them judges a model
// (pipeline/spread.go).
func (c *Consumer) Owned(ctx context.Context, topic string) ([]int, int, error) {
	gen := c.current()
	if gen == nil {
		return nil, 0, nil
	}
	var mine []int
	for tp := range gen.owned {
		if tp.Topic == topic {
			mine = append(mine, tp.Partition)
		}
	}
	sort.Ints(mine)
	c.mu.Lock()
	n, ok := gen.counts[topic]
	c.mu.Unlock()
	if !ok {
		parts, _, err := topicPartitions(ctx, c.client, []string{topic})
		if err != nil {
			return nil, 0, fmt.Errorf("count the partitions of %s: %w", topic, err)
		}
		n = len(parts)
		c.mu.Lock()
		if gen.counts == nil {
			gen.counts = map[string]int{}
		}
		gen.counts[topic] = n
		c.mu.Unlock()
	}
	return mine, n, nil
}

// WholeTopics reports whether the group gives each of Options.OneReader's topics whole
// to one member (it agreed on driftd-spread), and whether that is known yet (the check
// runs as each generation starts and every Options.WatchInterval). A member of an older
// driftd in the group makes it fall back to range, which spreads those topics too.
func (c *Consumer) WholeTopics() (whole, known bool) {
	p := c.Status().Protocol
	return p == oneReader{}.ProtocolName(), p != ""
}

// Close leaves the group, so its partitions move to the other members at once.
func (c *Consumer) Close() error {
	err := c.cg.Close()
	if t, ok := c.client.Transport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
	return err
}

// EnsureTopics creates the topics that do not exist yet (partitions each, replication
// factor 1 or the broker's default when 0 is not allowed).
func EnsureTopics(ctx context.Context, o Options, partitions int, topics ...string) error {
	d := dialer(o)
	conn, err := d.DialContext(ctx, "tcp", o.Brokers[0])
	if err != nil {
		return fmt.Errorf("create topics: dial %s: %w", o.Brokers[0], err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("create topics: find controller: %w", err)
	}
	cc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return fmt.Errorf("create topics: dial controller: %w", err)
	}
	defer cc.Close()
	var cfgs []kafka.TopicConfig
	for _, t := range topics {
		cfgs = append(cfgs, kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: 1})
	}
	if err := cc.CreateTopics(cfgs...); err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topics %v: %w", topics, err)
	}
	// Creation is asynchronous: wait until every partition has a leader, so a producer
	// that starts right away does not meet "unknown topic or partition".
	for {
		parts, err := conn.ReadPartitions(topics...)
		seen, leaderless := map[string]bool{}, 0
		for _, p := range parts {
			seen[p.Topic] = true
			if p.Leader.Host == "" {
				leaderless++
			}
		}
		if err == nil && len(seen) == len(topics) && leaderless == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("create topics %v: not ready (%d of %d topics, %d partitions without a leader): %w", topics, len(seen), len(topics), leaderless, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
