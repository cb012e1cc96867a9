package processors

import (
	"maps"
	"sync"

	"github.com/driftd/driftd/schemas"
)

// Workers update window aggregates on goroutines of their own, so that a member's
// window updates (sketches, bins, categories and the joint co-moments: most of the
// pipeline goroutine's time with many features) use more than one core. The processor
// still decides everything on its owner's goroutine (the series, the window, late or
// not, the watermark); only the update of a window's aggregate runs on a worker. Each
// partial window is updated by one worker, in the order its events were added, so the
// aggregates are exactly those of an update inline, bit for bit. The processor waits for
// the workers (a barrier) before it reads any aggregate: when windows close.
//
// Written here rather than with a worker-pool library: the hot path needs batches (a
// channel operation per event would cost as much as the update), events copied into
// buffers the batches reuse (the caller's event is decoded into again at once), and the
// barrier tied to closing windows.
type Workers struct {
	queues  []chan []job
	free    []chan []job
	filling [][]job
	pending sync.WaitGroup // batches sent and not yet applied
	done    sync.WaitGroup // the goroutines
	next    int            // the worker of the next partial opened
}

// job is one event's update of one partial window.
type job struct {
	agg    *WindowAgg
	layout *Layout
	lim    *Limits
	ev     schemas.PredictionEvent // a copy: the caller's event is reused
}

// workerBatch is how many events a worker is handed at a time, and workerQueue how many
// more batches may wait for it while it applies one: enough to keep a worker busy between its owner's turns,
// little enough that the barrier waits for no more than ~1,000 updates per worker.
const (
	workerBatch = 256
	workerQueue = 4
)

// NewWorkers starts n workers (n < 1: none; Processor.SetWorkers(nil) updates inline).
// Stop ends them.
func NewWorkers(n int) *Workers {
	w := &Workers{}
	for range max(n, 0) {
		// A worker's batches circulate: filled by the owner, applied by the worker, handed
		// back through free. The owner waits for one when all are in flight, so memory is
		// bounded and, after the first batches, nothing is allocated.
		q, free := make(chan []job, workerQueue+1), make(chan []job, workerQueue+1)
		for range workerQueue + 1 {
			free <- nil // made when first taken
		}
		w.queues, w.free, w.filling = append(w.queues, q), append(w.free, free), append(w.filling, nil)
		w.done.Add(1)
		go func() {
			defer w.done.Done()
			for batch := range q {
				for i := range batch {
					j := &batch[i]
					j.agg.add(&j.ev, j.layout, *j.lim)
					j.agg, j.layout, j.lim = nil, nil, nil // nor a closed window, nor its processor, kept alive by a reused batch
				}
				w.pending.Done()
				free <- batch[:0]
			}
		}()
	}
	return w
}

// Len is how many workers there are.
func (w *Workers) Len() int { return len(w.queues) }

// assign picks the worker of a new partial window: round robin, so that partials (and
// the series they are of) spread evenly whatever their keys.
func (w *Workers) assign() int {
	i := w.next
	w.next = (w.next + 1) % len(w.queues)
	return i
}

// add queues e's update of agg on worker i.
func (w *Workers) add(i int, agg *WindowAgg, e *schemas.PredictionEvent, layout *Layout, lim *Limits) {
	b := w.filling[i]
	if b == nil {
		if b = <-w.free[i]; b == nil {
			b = make([]job, 0, workerBatch)
		}
	}
	b = b[:len(b)+1]
	j := &b[len(b)-1]
	features, scores := j.ev.Features[:0], j.ev.Scores
	j.ev = *e
	j.ev.Features = append(features, e.Features...)
	j.ev.Scores = nil
	if len(e.Scores) > 0 {
		if scores == nil {
			scores = make(map[string]float64, len(e.Scores))
		}
		clear(scores)
		maps.Copy(scores, e.Scores)
		j.ev.Scores = scores
	}
	j.agg, j.layout, j.lim = agg, layout, lim
	if len(b) == cap(b) {
		w.send(i, b)
		b = nil
	}
	w.filling[i] = b
}

func (w *Workers) send(i int, b []job) {
	w.pending.Add(1)
	w.queues[i] <- b
}

// sync hands the workers what they were given and waits until they have applied it.
func (w *Workers) sync() {
	for i, b := range w.filling {
		if len(b) > 0 {
			w.send(i, b)
			w.filling[i] = nil
		}
	}
	w.pending.Wait()
}

// Stop applies what was given and ends the workers.
func (w *Workers) Stop() {
	w.sync()
	for _, q := range w.queues {
		close(q)
	}
	w.done.Wait()
}
