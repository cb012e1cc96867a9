package pipeline

import (
	"context"
	"errors"
	"sync"

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

// decodeAhead runs the stage. Records cross to the pipeline goroutine in batches (up to
// aheadBatchSize): a channel send and receive per record, with the event handed back
// the same way, cost more than decoding a small record. A batch goes as soon as the
// source has nothing more ready (bufferedSource), so batching delays nothing. Each
// batch owns the events it decodes into; the pipeline goroutine hands a batch back when
// it asks for the record after its last (the caller is done with a record when it asks
// for the next). Every event shares one table of interned strings, used only by the
// stage's goroutine.
type decodeAhead struct {
	out    chan *aheadBatch
	free   chan *aheadBatch
	cur    *aheadBatch // the pipeline goroutine's
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// aheadBatch is records fetched, and the events they were decoded into.
type aheadBatch struct {
	items  []ahead
	events []*schemas.PredictionEvent // one per item slot
	next   int                        // the next item to hand out
}

// aheadBatchSize is the most records in one batch.
const aheadBatchSize = 64

// bufferedSource is a Source that can say how many records it holds ready to return (a
// *consumers.Consumer). Without it, every record goes alone.
type bufferedSource interface {
	Buffered() int
}

// startDecodeAhead starts the stage; stop ends it.
func startDecodeAhead(ctx context.Context, src Source, set Settings) *decodeAhead {
	n := max(set.DecodeAhead, 1)
	size := min(n, aheadBatchSize)
	count := max(n/size, 1)
	ctx, cancel := context.WithCancel(ctx)
	d := &decodeAhead{out: make(chan *aheadBatch, count), free: make(chan *aheadBatch, count), cancel: cancel}
	var first *schemas.PredictionEvent
	for range count {
		b := &aheadBatch{items: make([]ahead, 0, size), events: make([]*schemas.PredictionEvent, size)}
		for i := range b.events {
			e := &schemas.PredictionEvent{}
			if first == nil {
				first = e
			} else {
				e.ShareInterned(first)
			}
			b.events[i] = e
		}
		d.free <- b
	}
	d.done.Add(1)
	go func() {
		defer d.done.Done()
		d.run(ctx, src, set)
	}()
	return d
}

func (d *decodeAhead) run(ctx context.Context, src Source, set Settings) {
	buffered, _ := src.(bufferedSource)
	var b *aheadBatch
	for {
		if b == nil {
			select {
			case b = <-d.free:
				b.items = b.items[:0]
			case <-ctx.Done():
				return
			}
		}
		rec, err := src.Fetch(ctx)
		if ctx.Err() != nil {
			return
		}
		a := ahead{rec: rec, fetchErr: err}
		if err == nil && rec.Topic == set.PredictionTopic && (set.MaxEventBytes <= 0 || len(rec.Value) <= set.MaxEventBytes) {
			a.event = b.events[len(b.items)]
			a.decodeErr = set.Decoder.Prediction(ctx, rec.Value, a.event)
		}
		b.items = append(b.items, a)
		if err == nil && len(b.items) < cap(b.items) && buffered != nil && buffered.Buffered() > 0 {
			continue // more is ready: it goes in the same batch
		}
		select {
		case d.out <- b:
			b = nil
		case <-ctx.Done():
			return
		}
		if err != nil && err != context.DeadlineExceeded && !errors.Is(err, consumers.ErrRebalanced) {
			return // the error ends the run (Runner.Run); a bare DeadlineExceeded is a tick's
		}
	}
}

// next returns the next record from the stage, or ctx's error (the tick's deadline). The
// record returned before is the caller's no longer: its event is decoded into again.
func (d *decodeAhead) next(ctx context.Context) (ahead, error) {
	if b := d.cur; b != nil {
		if b.next < len(b.items) {
			b.next++
			return b.items[b.next-1], nil
		}
		d.cur = nil
		d.free <- b // never blocks: free holds every batch
	}
	select {
	case b := <-d.out:
		d.cur, b.next = b, 1
		return b.items[0], nil
	case <-ctx.Done():
		return ahead{}, ctx.Err()
	}
}

// stop ends the stage and waits for its goroutine, so that nothing fetches after Run.
// Records it fetched and the pipeline did not handle are not committed: the next run
// reads them again.
func (d *decodeAhead) stop() {
	d.cancel()
	d.done.Wait()
}
