package pipeline

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/driftd/driftd/consumers"
	"github.com/driftd/driftd/schemas"
)

// The decode-ahead stage fetches records and decodes predictions on a goroutine of its
// own, up to Settings.DecodeAhead records ahead of the window updates, so that a member
// uses a second core: decoding is pure (record bytes in, event out) and was most of the
// pipeline goroutine's time. Records reach the pipeline goroutine in the order Fetch
// returned them, fetch errors (a rebalance) in their place among them, so everything
// after decoding (windows, commits, dead letters) happens exactly as with inline
// decoding. Only the first decode attempt runs ahead: a record that fails to decode is
// decoded again inline (a schema registry that is down is waited out there, with the
// runner's retry policy, and the record is set aside with the same error as inline).

// ahead is one record from the decode-ahead stage: a fetch error, or a record and, for a
// prediction it tried to decode, the event or the decoding error.
type ahead struct {
	rec       consumers.Record
	fetchErr  error
	event     *schemas.PredictionEvent // nil: not decoded ahead
	decodeErr error
}

// decodeAhead runs the stage. Its events are recycled: the pipeline goroutine hands each
// back (release) once the record is handled, and the stage decodes into it again; all of
// them share one table of interned strings, used only by the stage's goroutine.
type decodeAhead struct {
	out    chan ahead
	free   chan *schemas.PredictionEvent
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// startDecodeAhead starts the stage; stop ends it.
func startDecodeAhead(ctx context.Context, src Source, set Settings) *decodeAhead {
	n := max(set.DecodeAhead, 1)
	ctx, cancel := context.WithCancel(ctx)
	d := &decodeAhead{out: make(chan ahead, n), free: make(chan *schemas.PredictionEvent, n), cancel: cancel}
	first := &schemas.PredictionEvent{}
	d.free <- first
	for range n - 1 {
		e := &schemas.PredictionEvent{}
		e.ShareInterned(first)
		d.free <- e
	}
	d.done.Add(1)
	go func() {
		defer d.done.Done()
		d.run(ctx, src, set)
	}()
	return d
}

func (d *decodeAhead) run(ctx context.Context, src Source, set Settings) {
	for {
		rec, err := src.Fetch(ctx)
		if ctx.Err() != nil {
			return
		}
		a := ahead{rec: rec, fetchErr: err}
		if err == nil && rec.Topic == set.PredictionTopic && (set.MaxEventBytes <= 0 || len(rec.Value) <= set.MaxEventBytes) {
			select {
			case a.event = <-d.free:
			case <-ctx.Done():
				return
			}
			a.decodeErr = set.Decoder.Prediction(ctx, rec.Value, a.event)
		}
		select {
		case d.out <- a:
		case <-ctx.Done():
			return
		}
		if err != nil && !errors.Is(err, consumers.ErrRebalanced) {
			// The pipeline goroutine logs it; fetching again at once would spin.
			sleep(ctx, time.Second)
		}
	}
}

// next returns the next record from the stage, or ctx's error (the tick's deadline).
func (d *decodeAhead) next(ctx context.Context) (ahead, error) {
	select {
	case a := <-d.out:
		return a, nil
	case <-ctx.Done():
		return ahead{}, ctx.Err()
	}
}

// release hands a's event back for decoding into.
func (d *decodeAhead) release(a ahead) {
	if a.event != nil {
		d.free <- a.event // never blocks: free holds every event
	}
}

// stop ends the stage and waits for its goroutine, so that nothing fetches after Run.
// Records it fetched and the pipeline did not handle are not committed: the next run
// reads them again.
func (d *decodeAhead) stop() {
	d.cancel()
	d.done.Wait()
}
