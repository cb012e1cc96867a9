// Package replay runs a simulated event stream through driftd's real pipeline without
// Kafka or ClickHouse: a Source that serves the stream's records (encoded as producers
// would) on a simulated clock, and a Store and sinks that keep what the pipeline writes in
// memory. The detection benchmark (driftd detect-bench) uses it to measure false alarms
// and detection delays over days of event time in minutes, and tests use it to read one
// stream at different paces and compare the alerts. The engines' own behaviour is tested
// elsewhere against the real Kafka and ClickHouse; this package is only about judging.
package replay

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/detectors"
	"github.com/driftd/driftd/processors"
	"github.com/driftd/driftd/schemas"
	"github.com/driftd/driftd/simulate"
	"github.com/driftd/driftd/storage"
)

// Topics the Source puts records on.
const (
	PredictionTopic = "ml.predictions"
	PipelineTopic   = "ml.pipeline-events"
)

// Pace is how the stream is read.
type Pace uint8

// Paces.
const (
	// Live: each record is read one second (of the simulated wall clock) after its event
	// time, as a consumer keeping up with producers would.
	Live Pace = iota + 1
	// Backlog: the whole stream is read after it happened, at full speed: the wall clock
	// stands an hour after the stream's end and moves a millisecond per record. Records
	// come as a Kafka consumer fetches a backlog: a batch of one partition, then of
	// another, so that one partition (a small topic in particular) is read well ahead
	// of the others in event time.
	Backlog
)

// Clock is the simulated wall clock the pipeline runs on (pass Now to pipeline.New).
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the simulated wall time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *Clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

// Source serves a stream's records as a Kafka consumer would: keyed records hashed to
// Partitions partitions with increasing offsets per partition. Once the stream is
// exhausted it lets the clock run on for Tail (so idle windows close and freshness is
// checked on a quiet stream) and then ends the run by calling Stop.
type Source struct {
	Clock      *Clock
	Partitions int
	Pace       Pace
	Tail       time.Duration
	// Stop ends the run (the cancel func of Run's context).
	Stop func()
	// TopicEnds, for a recorded stream read as a backlog, gives each record the
	// high-water mark of a topic that holds the whole stream (its partition's end), as a
	// broker does when a stream is read after it was written. Without it, a record's lag
	// is the records fetched ahead of it (a batch's, at least one until the stream ends).
	TopicEnds bool

	stream    *simulate.Stream
	enc       simulate.Encoder
	offsets   map[consumers.TopicPartition]int64
	read      int
	exhausted time.Time
	streamEnd time.Time
	committed map[consumers.TopicPartition]int64
	// Backlog: records pulled from the stream, per partition, and the batch being served.
	buffered map[consumers.TopicPartition][]consumers.Record
	order    []consumers.TopicPartition
	nbuf     int
	batch    []consumers.Record
	turn     int
	drained  bool // the stream has no more records
	// recorded, when set, are the stream's records already encoded (Record): served
	// instead of encoding each one, so that a benchmark times the pipeline alone.
	recorded []consumers.Record
	ends     map[consumers.TopicPartition]int64 // the recorded stream's partition ends
}

// Backlog fetch shape: batches of up to backlogBatch records of one partition; the
// stream is read at most backlogAhead records ahead of what was served.
const (
	backlogBatch = 500
	backlogAhead = 50000
)

// NewSource returns a source over the stream described by o.
func NewSource(o simulate.StreamOptions, pace Pace, partitions int, tail time.Duration, clock *Clock) (*Source, error) {
	st, err := simulate.NewStream(o)
	if err != nil {
		return nil, err
	}
	if partitions <= 0 {
		partitions = 1
	}
	s := &Source{Clock: clock, Partitions: partitions, Pace: pace, Tail: tail, stream: st,
		offsets: map[consumers.TopicPartition]int64{}, committed: map[consumers.TopicPartition]int64{},
		streamEnd: o.Start.Add(o.Duration), buffered: map[consumers.TopicPartition][]consumers.Record{}}
	switch pace {
	case Live:
		clock.set(o.Start)
	case Backlog:
		clock.set(s.streamEnd.Add(time.Hour))
	default:
		return nil, fmt.Errorf("replay: unknown pace %d", pace)
	}
	return s, nil
}

// Read returns how many records were served.
func (s *Source) Read() int { return s.read }

// Fetch returns the next record; after the stream, it waits (a tick of the clock) as a
// consumer without records would, and finally stops the run.
func (s *Source) Fetch(ctx context.Context) (consumers.Record, error) {
	if err := ctx.Err(); err != nil {
		return consumers.Record{}, err
	}
	var rec consumers.Record
	var ok bool
	var err error
	if s.Pace == Backlog {
		rec, ok, err = s.nextBatched()
	} else {
		rec, ok, err = s.pull()
	}
	if err != nil {
		return consumers.Record{}, err
	}
	if !ok {
		if s.exhausted.IsZero() {
			s.exhausted = s.Clock.Now()
		}
		s.Clock.set(s.Clock.Now().Add(time.Second))
		if s.Clock.Now().Sub(s.exhausted) >= s.Tail && s.Stop != nil {
			s.Stop()
		}
		return consumers.Record{}, context.DeadlineExceeded
	}
	s.read++
	switch s.Pace {
	case Live:
		s.Clock.set(rec.Time.Add(time.Second))
	case Backlog:
		s.Clock.set(s.Clock.Now().Add(time.Millisecond))
	}
	return rec, nil
}

// Record returns the records of the stream described by o as a Source with that many
// partitions serves them before pacing: encoded, keyed to partitions, with offsets.
func Record(o simulate.StreamOptions, partitions int) ([]consumers.Record, error) {
	s, err := NewSource(o, Live, partitions, 0, &Clock{})
	if err != nil {
		return nil, err
	}
	var out []consumers.Record
	for {
		rec, ok, err := s.pull()
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		out = append(out, rec)
	}
}

// NewRecordedSource is NewSource over records Record returned for the same o and
// partitions: the same records served the same way, without encoding them again.
func NewRecordedSource(o simulate.StreamOptions, recs []consumers.Record, pace Pace, partitions int, tail time.Duration, clock *Clock) (*Source, error) {
	s, err := NewSource(o, pace, partitions, tail, clock)
	if err != nil {
		return nil, err
	}
	s.recorded = recs[:len(recs):len(recs)]
	s.ends = map[consumers.TopicPartition]int64{}
	for _, r := range recs {
		tp := consumers.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		s.ends[tp] = max(s.ends[tp], r.Offset+1)
	}
	return s, nil
}

// pull takes the stream's next record as a Kafka record of its partition.
func (s *Source) pull() (consumers.Record, bool, error) {
	if s.recorded != nil {
		if len(s.recorded) == 0 {
			s.drained = true
			return consumers.Record{}, false, nil
		}
		rec := s.recorded[0]
		s.recorded = s.recorded[1:]
		return rec, true, nil
	}
	r, ok := s.stream.Next()
	if !ok {
		s.drained = true
		return consumers.Record{}, false, nil
	}
	msg, err := simulate.Encoder{}.Encode(r, simulate.Topics{Predictions: PredictionTopic, Pipeline: PipelineTopic})
	if err != nil {
		return consumers.Record{}, false, err
	}
	h := fnv.New32a()
	h.Write(msg.Key)
	tp := consumers.TopicPartition{Topic: msg.Topic, Partition: int(h.Sum32() % uint32(s.Partitions))}
	off := s.offsets[tp]
	s.offsets[tp] = off + 1
	return consumers.Record{Topic: tp.Topic, Partition: tp.Partition, Offset: off, Key: msg.Key, Value: msg.Value,
		Time: r.Time, HighWaterMark: off + 1}, true, nil
}

// nextBatched serves the backlog a partition's batch at a time, round robin.
func (s *Source) nextBatched() (consumers.Record, bool, error) {
	if len(s.batch) == 0 {
		// Read ahead until some partition has a whole batch or the read-ahead is full.
		for s.nbuf < backlogAhead {
			full := false
			for _, q := range s.buffered {
				if len(q) >= backlogBatch {
					full = true
					break
				}
			}
			if full {
				break
			}
			rec, ok, err := s.pull()
			if err != nil {
				return rec, false, err
			}
			if !ok {
				break
			}
			tp := consumers.TopicPartition{Topic: rec.Topic, Partition: rec.Partition}
			if _, seen := s.buffered[tp]; !seen {
				s.order = append(s.order, tp)
			}
			s.buffered[tp] = append(s.buffered[tp], rec)
			s.nbuf++
		}
		for range s.order {
			tp := s.order[s.turn%len(s.order)]
			s.turn++
			if q := s.buffered[tp]; len(q) > 0 {
				n := min(len(q), backlogBatch)
				s.batch, s.buffered[tp] = q[:n], q[n:]
				s.nbuf -= n
				break
			}
		}
		if len(s.batch) == 0 {
			return consumers.Record{}, false, nil
		}
	}
	rec := s.batch[0]
	s.batch = s.batch[1:]
	// The lag a broker's high-water mark shows: the partition's records not served yet,
	// and in a backlog at least one more while the stream has not been read to its end.
	tp := consumers.TopicPartition{Topic: rec.Topic, Partition: rec.Partition}
	if end, ok := s.ends[tp]; ok && s.TopicEnds {
		rec.HighWaterMark = end
		return rec, true, nil
	}
	rec.HighWaterMark = rec.Offset + 1 + int64(len(s.batch)+len(s.buffered[tp]))
	if !s.drained {
		rec.HighWaterMark++
	}
	return rec, true, nil
}

// Commit remembers the offsets committed.
func (s *Source) Commit(_ context.Context, next map[consumers.TopicPartition]int64) error {
	for tp, off := range next {
		s.committed[tp] = off
	}
	return nil
}

// Committed returns a copy of the offsets committed, per partition.
func (s *Source) Committed() map[consumers.TopicPartition]int64 {
	return maps.Clone(s.committed)
}

// Assigned is the number of partitions (the source is the only member).
func (s *Source) Assigned() int { return s.Partitions }

// Store keeps in memory what the pipeline writes. It is safe for one pipeline.
type Store struct {
	mu      sync.Mutex
	windows map[windowKey]*processors.WindowAgg
	Alerts  []*schemas.AlertEvent
	// Verdicts counts the windows judged; Stages counts stage rows written.
	Verdicts, Stages int
	// Keys and Labels count the prediction keys and labels written; MostKeys is the
	// most keys written at once.
	Keys, Labels, MostKeys int
	// Writes counts the batches written (WriteWithRetry): one per flush that had any.
	Writes int
	refs   []*detectors.Profile
}

type windowKey struct {
	series processors.SeriesKey
	start  int64
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{windows: map[windowKey]*processors.WindowAgg{}} }

// WriteWithRetry keeps the batch.
func (s *Store) WriteWithRetry(_ context.Context, b *storage.Batch, _ storage.Backoff, _ func(error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Writes++
	for _, c := range b.Closed {
		k := windowKey{c.Merged.Series, c.Merged.Start}
		if w, ok := s.windows[k]; ok {
			w.Merge(c.Merged)
		} else {
			s.windows[k] = c.Merged.Clone()
		}
	}
	s.Verdicts += len(b.Verdicts)
	s.Stages += len(b.Stages)
	s.Alerts = append(s.Alerts, b.Alerts...)
	return nil
}

// Windows returns the windows written, merged per series and window, by start then
// series.
func (s *Store) Windows() []*processors.WindowAgg {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*processors.WindowAgg, 0, len(s.windows))
	for _, w := range s.windows {
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b *processors.WindowAgg) int {
		if c := cmp.Compare(a.Start, b.Start); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Series.Model, b.Series.Model), cmp.Compare(a.Series.Version, b.Series.Version),
			cmp.Compare(a.Series.Deployment, b.Series.Deployment))
	})
	return out
}

// SaveReference keeps a reference.
func (s *Store) SaveReference(_ context.Context, p *detectors.Profile) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs = append(s.refs, p)
	return nil
}

// References returns the references saved, in order.
func (s *Store) References() []*detectors.Profile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*detectors.Profile(nil), s.refs...)
}

// LoadReferences returns nothing: a replay starts from scratch.
func (s *Store) LoadReferences(context.Context) ([]*detectors.Profile, error) { return nil, nil }

// LoadClosedWindows returns nothing: a replay starts from scratch.
func (s *Store) LoadClosedWindows(context.Context, time.Duration) ([]storage.ClosedWindow, error) {
	return nil, nil
}

// LoadFiringAlerts returns nothing: a replay starts from scratch.
func (s *Store) LoadFiringAlerts(context.Context) ([]storage.FiringAlert, error) { return nil, nil }

// LoadUnpublishedAlerts returns nothing: every alert is published when written.
func (s *Store) LoadUnpublishedAlerts(context.Context, time.Duration) ([]*schemas.AlertEvent, error) {
	return nil, nil
}

// MarkPublished does nothing.
func (s *Store) MarkPublished(context.Context, []string, time.Time) error { return nil }

// LoadClosedStageWindows returns nothing: a replay starts from scratch.
func (s *Store) LoadClosedStageWindows(context.Context, time.Duration) ([]storage.ClosedWindow, error) {
	return nil, nil
}

// LoadStageHistory returns nothing: a replay starts from scratch.
func (s *Store) LoadStageHistory(context.Context, time.Duration) ([]storage.StageHistory, error) {
	return nil, nil
}

// LoadWindow returns a written window (rolling references), nil if none.
func (s *Store) LoadWindow(_ context.Context, series processors.SeriesKey, start time.Time) (*processors.WindowAgg, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := s.windows[windowKey{series, start.UnixMilli()}]; ok {
		return w.Clone(), nil
	}
	return nil, nil
}

// LoadHourlyEvents returns nothing: a replay starts from scratch.
func (s *Store) LoadHourlyEvents(context.Context, time.Duration) ([]storage.HourlyEvents, error) {
	return nil, nil
}

// LoadVolumeWindows returns nothing: a replay starts from scratch.
func (s *Store) LoadVolumeWindows(context.Context, time.Duration, int) ([]storage.WindowVolume, error) {
	return nil, nil
}

// LoadAlertStates returns nothing: a replay starts from scratch.
func (s *Store) LoadAlertStates(context.Context, time.Duration) ([]detectors.FingerprintState, error) {
	return nil, nil
}

// LoadStageStates returns nothing: a replay starts from scratch.
func (s *Store) LoadStageStates(context.Context, time.Duration) ([]storage.StageState, error) {
	return nil, nil
}

// LoadReferenceSamples returns nothing: a replay starts from scratch.
func (s *Store) LoadReferenceSamples(context.Context) ([]storage.ReferenceSample, error) {
	return nil, nil
}

// LoadLateWindows returns nothing: a replay starts from scratch.
func (s *Store) LoadLateWindows(context.Context, time.Duration) ([]storage.ClosedWindow, error) {
	return nil, nil
}

// LoadSeriesEnds returns nothing: a replay starts from scratch.
func (s *Store) LoadSeriesEnds(context.Context, time.Duration) ([]storage.SeriesEnd, error) {
	return nil, nil
}

// The label join is ClickHouse's (storage/labels.go): a replay's records are
// predictions only, so the store counts what it is given and has nothing to settle.

// WriteLabelData counts the keys and labels (Keys, Labels, MostKeys).
func (s *Store) WriteLabelData(_ context.Context, keys []storage.PredictionKey, labels []storage.LabelRow, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Keys += len(keys)
	s.Labels += len(labels)
	s.MostKeys = max(s.MostKeys, len(keys))
	return nil
}

// LoadLabelProgress returns nothing: no label is kept, so no window settles.
func (s *Store) LoadLabelProgress(context.Context) ([]storage.LabelProgress, []string, error) {
	return nil, nil, nil
}

// LoadUnsettledWindows returns nothing (LoadLabelProgress).
func (s *Store) LoadUnsettledWindows(context.Context, []string, time.Time, time.Time) ([]storage.SettledWindow, error) {
	return nil, nil
}

// LoadWindowPairs returns nothing (LoadLabelProgress).
func (s *Store) LoadWindowPairs(context.Context, storage.SettledWindow, storage.JoinSpec, func(detectors.PerfPair)) (uint64, error) {
	return 0, nil
}

// LoadSettled returns nothing: a replay starts from scratch.
func (s *Store) LoadSettled(context.Context, ...processors.SeriesKey) ([]storage.SeriesSettled, error) {
	return nil, nil
}

// Sink collects dead letters and published alerts.
type Sink struct {
	mu          sync.Mutex
	DeadLetters []string
	Published   []*schemas.AlertEvent
}

// Send keeps a dead letter's reason.
func (k *Sink) Send(_ context.Context, rec consumers.Record, class string, reason error, _ time.Time) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.DeadLetters = append(k.DeadLetters, fmt.Sprintf("%s/%d@%d %s: %v", rec.Topic, rec.Partition, rec.Offset, class, reason))
	return nil
}

// Publish keeps the alerts.
func (k *Sink) Publish(_ context.Context, alerts []*schemas.AlertEvent) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.Published = append(k.Published, alerts...)
	return nil
}

// Transition is the part of an alert that must not depend on how the stream was read:
// what, about which subject, for which window, in which state.
type Transition struct {
	Kind, Model, Version, Deployment, Feature, Pipeline, Stage, Metric, State string
	WindowStart, WindowEnd                                                    time.Time
}

func (t Transition) String() string {
	subject := t.Model + " " + t.Version
	if t.Pipeline != "" {
		subject = t.Pipeline + "/" + t.Stage
	}
	if t.Feature != "" {
		subject += " " + t.Feature
	}
	return fmt.Sprintf("%s %s %s %s [%s, %s)", t.State, t.Kind, subject, t.Metric,
		t.WindowStart.UTC().Format("01-02 15:04:05"), t.WindowEnd.UTC().Format("01-02 15:04:05"))
}

// Transitions returns the alerts' transitions in a canonical order (window end, then
// subject), so that two reads of one stream can be compared.
func Transitions(alerts []*schemas.AlertEvent) []Transition {
	out := make([]Transition, 0, len(alerts))
	for _, a := range alerts {
		out = append(out, Transition{Kind: a.Kind, Model: a.Model, Version: a.ModelVersion, Deployment: a.Deployment,
			Feature: a.Feature, Pipeline: a.Pipeline, Stage: a.Stage, Metric: a.Metric, State: a.State,
			WindowStart: a.WindowStart.UTC(), WindowEnd: a.WindowEnd.UTC()})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].WindowEnd.Equal(out[j].WindowEnd) {
			return out[i].WindowEnd.Before(out[j].WindowEnd)
		}
		return out[i].String() < out[j].String()
	})
	return out
}

// JoinShadow joins nothing: no prediction key is kept (WriteLabelData).
func (s *Store) JoinShadow(context.Context, processors.SeriesKey, string, time.Time) (detectors.ShadowCounts, error) {
	return detectors.ShadowCounts{}, nil
}

// LoadShadowReference returns nothing: a replay starts from scratch.
func (s *Store) LoadShadowReference(context.Context, processors.SeriesKey) ([]detectors.ShadowWindow, error) {
	return nil, nil
}

// LabelCuts finds none (LoadLabelProgress).
func (s *Store) LabelCuts(context.Context, time.Time, time.Time, []storage.LabelPartition) (map[storage.LabelPartition]int64, error) {
	return map[storage.LabelPartition]int64{}, nil
}

// LoadPartitionProgress: a replay is one member, which judges in memory.
func (s *Store) LoadPartitionProgress(context.Context) ([]storage.PartitionProgress, error) {
	return nil, nil
}

// LoadJudgeProgress: nothing was judged before a replay.
func (s *Store) LoadJudgeProgress(context.Context, ...string) ([]storage.JudgeProgress, error) {
	return nil, nil
}

// LoadWrittenWindows: a replay is one member, which writes what it judges.
func (s *Store) LoadWrittenWindows(context.Context, []string, time.Time, time.Time) ([]storage.ClosedWindow, error) {
	return nil, nil
}

// LoadStageLinks: nothing was read before a replay.
func (s *Store) LoadStageLinks(context.Context, time.Time, ...string) ([]storage.StageLink, error) {
	return nil, nil
}

// LoadStageRuns: a replay is one member, whose hints come from its stages in memory.
func (s *Store) LoadStageRuns(context.Context, string, string, time.Time, time.Time, int) ([]time.Time, []time.Time, error) {
	return nil, nil, nil
}

// LoadWindows: a replay is one member, which judges in memory.
func (s *Store) LoadWindows(context.Context, string, time.Time, time.Time) ([]*processors.WindowAgg, error) {
	return nil, nil
}

// WindowEnd: a replay is one member, which judges in memory.
func (s *Store) WindowEnd(context.Context, string, time.Time, int) (time.Time, bool, error) {
	return time.Time{}, false, nil
}

// LoadSampleParts: a replay is one member, which samples in memory.
func (s *Store) LoadSampleParts(context.Context, string, time.Time, time.Time) ([]storage.SamplePart, error) {
	return nil, nil
}
