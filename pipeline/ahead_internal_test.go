package pipeline

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/schemas"
)

// scripted returns its fetches in order, then blocks until ctx ends.
type scripted struct {
	fetches []ahead // rec and fetchErr only
	n       int
}

func (s *scripted) Fetch(ctx context.Context) (consumers.Record, error) {
	if s.n < len(s.fetches) {
		f := s.fetches[s.n]
		s.n++
		return f.rec, f.fetchErr
	}
	<-ctx.Done()
	return consumers.Record{}, ctx.Err()
}
func (s *scripted) Commit(context.Context, map[consumers.TopicPartition]int64) error { return nil }
func (s *scripted) Assigned() int                                                    { return 1 }

// bufferedScripted says its fetches left are ready: the stage batches them.
type bufferedScripted struct{ scripted }

func (s *bufferedScripted) Buffered() int { return len(s.fetches) - s.n }

func predictionJSON(t *testing.T, i int) []byte {
	t.Helper()
	b, err := schemas.MarshalPredictionJSON(&schemas.PredictionEvent{EventID: fmt.Sprint("e", i), Model: "m", ModelVersion: "1",
		Timestamp: time.Date(2026, 12, 1, 0, 0, i, 0, time.UTC), Status: "ok", LatencyMs: 5,
		Features:   []schemas.Feature{{Name: "country", Value: schemas.Value{Kind: schemas.String, Str: fmt.Sprint("c", i%3)}}},
		Prediction: schemas.Value{Kind: schemas.Number, Num: float64(i)}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeAheadKeepsTheOrderAndDecodesOnlyPredictions: what the stage hands over is
// what Fetch returned, in order, errors in their place; predictions come decoded (or
// with their decoding error), other topics and oversized records undecoded; with fewer
// events than records, released events are decoded into again.
func TestDecodeAheadKeepsTheOrderAndDecodesOnlyPredictions(t *testing.T) {
	const topic = "preds"
	rec := func(off int64, topic string, v []byte) ahead {
		return ahead{rec: consumers.Record{Topic: topic, Partition: 0, Offset: off, Value: v}}
	}
	fetches := []ahead{
		rec(0, topic, predictionJSON(t, 0)),
		rec(1, topic, []byte("not an event")),
		rec(2, "pipeline-runs", []byte(`{"pipeline":"p"}`)),
		{fetchErr: fmt.Errorf("generation 2: %w", consumers.ErrRebalanced)},
		rec(3, topic, append(predictionJSON(t, 3), make([]byte, 400)...)), // over MaxEventBytes
	}
	for i := 4; i < 12; i++ {
		fetches = append(fetches, rec(int64(i), topic, predictionJSON(t, i)))
	}
	for _, c := range []struct {
		name     string
		buffered bool
		ahead    int
	}{
		{"one by one", false, 2},
		{"batches of two", true, 2},
		{"batches larger than the records", true, 512},
	} {
		t.Run(c.name, func(t *testing.T) {
			set := Settings{PredictionTopic: topic, Decoder: schemas.Decoder{Format: schemas.FormatJSON}, MaxEventBytes: 300, DecodeAhead: c.ahead}
			var src Source = &scripted{fetches: fetches}
			if c.buffered {
				src = &bufferedScripted{scripted{fetches: fetches}}
			}
			checkDecodedAhead(t, src, set, fetches)
		})
	}
}

func checkDecodedAhead(t *testing.T, src Source, set Settings, fetches []ahead) {
	t.Helper()
	topic := set.PredictionTopic
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := startDecodeAhead(ctx, src, set)
	defer d.stop()

	interned := map[string]string{}
	for i, want := range fetches {
		got, err := d.next(ctx)
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
		switch {
		case want.fetchErr != nil:
			if !errors.Is(got.fetchErr, consumers.ErrRebalanced) || got.event != nil {
				t.Fatalf("item %d: got %+v, want the rebalance in its place", i, got)
			}
		case got.rec.Offset != want.rec.Offset || got.rec.Topic != want.rec.Topic:
			t.Fatalf("item %d: got %s/%d, want %s/%d", i, got.rec.Topic, got.rec.Offset, want.rec.Topic, want.rec.Offset)
		case want.rec.Offset == 1:
			if got.event == nil || got.decodeErr == nil {
				t.Fatalf("item %d: a bad prediction came with no decoding error", i)
			}
		case want.rec.Topic != topic || want.rec.Offset == 3:
			if got.event != nil {
				t.Fatalf("item %d (%s, %d bytes) was decoded ahead", i, want.rec.Topic, len(want.rec.Value))
			}
		default:
			if got.event == nil || got.decodeErr != nil {
				t.Fatalf("item %d: not decoded: %v", i, got.decodeErr)
			}
			if e := got.event; e.EventID != fmt.Sprint("e", want.rec.Offset) || e.Prediction.Num != float64(want.rec.Offset) {
				t.Fatalf("item %d: decoded %s (prediction %v)", i, e.EventID, e.Prediction.Num)
			}
			// One table of interned strings for every event of the stage.
			v := got.event.Features[0].Value.Str
			if prev, ok := interned[v]; ok && unsafe.StringData(prev) != unsafe.StringData(v) {
				t.Fatalf("item %d: %q allocated again, not shared between the stage's events", i, v)
			}
			interned[v] = v
		}
	}
}

// TestDecodeAheadStops: stop returns while the stage waits for an event to decode into,
// for room to hand a record over, or for a record.
func TestDecodeAheadStops(t *testing.T) {
	const topic = "preds"
	var fetches []ahead
	for i := range 8 {
		fetches = append(fetches, ahead{rec: consumers.Record{Topic: topic, Offset: int64(i), Value: predictionJSON(t, i)}})
	}
	for _, c := range []struct {
		name    string
		records int
		take    int // records taken (and not released) before stop
	}{
		{"waiting for an event", 8, 1},
		{"waiting for room", 8, 0},
		{"waiting for a record", 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			set := Settings{PredictionTopic: topic, Decoder: schemas.Decoder{Format: schemas.FormatJSON}, DecodeAhead: 1}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			d := startDecodeAhead(ctx, &scripted{fetches: fetches[:c.records]}, set)
			for range c.take {
				if _, err := d.next(ctx); err != nil {
					t.Fatal(err)
				}
			}
			stopped := make(chan struct{})
			go func() { d.stop(); close(stopped) }()
			select {
			case <-stopped:
			case <-ctx.Done():
				t.Fatal("stop did not return")
			}
		})
	}
}

// endless returns the same record for ever; buffered says records are always ready.
type endless struct {
	rec      consumers.Record
	buffered bool
}

func (s *endless) Fetch(ctx context.Context) (consumers.Record, error) { return s.rec, ctx.Err() }
func (s *endless) Commit(context.Context, map[consumers.TopicPartition]int64) error {
	return nil
}
func (s *endless) Assigned() int { return 1 }

type endlessBuffered struct{ endless }

func (s *endlessBuffered) Buffered() int { return 1 }

// BenchmarkDecodeAheadHandOver is the stage's cost per record beyond decoding: records
// of another topic, handed over one by one or in batches.
func BenchmarkDecodeAheadHandOver(b *testing.B) {
	for _, c := range []struct {
		name string
		src  Source
	}{
		{"one by one", &endless{rec: consumers.Record{Topic: "other"}}},
		{"batched", &endlessBuffered{endless{rec: consumers.Record{Topic: "other"}}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			d := startDecodeAhead(ctx, c.src, Settings{PredictionTopic: "preds", DecodeAhead: DefaultDecodeAhead})
			defer d.stop()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.next(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
