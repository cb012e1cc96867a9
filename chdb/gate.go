package chdb

import (
	"context"
	"sync"
)

// gate lets one query at a time onto the engine. Whoever waits is served in order of
// arrival, except that urgent waiters go before every normal one: a client's long query
// delays driftd's own write by at most the query that is already running.
type gate struct {
	mu     sync.Mutex
	busy   bool
	urgent []chan struct{}
	normal []chan struct{}
}

// acquire returns once the caller holds the engine, or with ctx's error when ctx ends
// first (the caller then does not hold it).
func (g *gate) acquire(ctx context.Context, urgent bool) error {
	g.mu.Lock()
	if !g.busy {
		g.busy = true
		g.mu.Unlock()
		return nil
	}
	turn := make(chan struct{})
	queue := &g.normal
	if urgent {
		queue = &g.urgent
	}
	*queue = append(*queue, turn)
	g.mu.Unlock()
	select {
	case <-turn:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-turn:
		// Handed over just as ctx ended: pass it on.
		g.handOver()
	default:
		for i, c := range *queue {
			if c == turn {
				*queue = append((*queue)[:i], (*queue)[i+1:]...)
				break
			}
		}
	}
	return ctx.Err()
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.handOver()
}

// handOver gives the engine to the next waiter, urgent ones first; g.mu is held.
func (g *gate) handOver() {
	for _, queue := range []*[]chan struct{}{&g.urgent, &g.normal} {
		if len(*queue) > 0 {
			next := (*queue)[0]
			*queue = (*queue)[1:]
			close(next)
			return
		}
	}
	g.busy = false
}

func (g *gate) state() (busy bool, urgent, normal int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.busy, len(g.urgent), len(g.normal)
}
