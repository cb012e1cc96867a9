package chdb

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// waitUntil polls cond until it holds or d passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %v", what, d)
		case <-time.After(time.Millisecond):
		}
	}
}

// An urgent waiter goes before normal ones that came earlier; normal ones keep their
// order; a waiter whose context ends leaves the queue without taking a turn.
func TestGateServesUrgentFirst(t *testing.T) {
	var g gate
	if err := g.acquire(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	enter := func(name string, urgent bool, waiting int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.acquire(context.Background(), urgent); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			g.release()
		}()
		waitUntil(t, 5*time.Second, name+" queued", func() bool { _, u, n := g.state(); return u+n == waiting })
	}
	enter("a", false, 1)
	enter("b", false, 2)
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error)
	go func() { gone <- g.acquire(ctx, false) }()
	waitUntil(t, 5*time.Second, "cancelled waiter queued", func() bool { _, u, n := g.state(); return u+n == 3 })
	enter("own", true, 4)
	cancel()
	if err := <-gone; err == nil {
		t.Fatal("a cancelled waiter got the engine")
	}
	g.release()
	wg.Wait()
	if got := fmt.Sprint(order); got != "[own a b]" {
		t.Fatalf("order %s, want [own a b]", got)
	}
	if busy, u, n := g.state(); busy || u+n != 0 {
		t.Fatalf("after all: busy=%v waiting=%d", busy, u+n)
	}
}
