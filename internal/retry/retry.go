// Package retry is driftd's one way to wait out a dependency that fails: exponential
// backoff with jitter, a class per error (retry it, or give up on it at once), a hook that
// sees every failed attempt, and a bound on how long a dependency may stay down before
// the caller gives up — so that driftd exits and a standby, or a restart, takes over
// instead of holding its partitions while doing nothing.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Class says what to do about a failed attempt.
type Class uint8

// Classes of errors.
const (
	// Retryable errors may pass by themselves (the dependency is down, busy, slow, or
	// misconfigured in a way an operator can fix): back off and try again.
	Retryable Class = iota + 1
	// Fatal errors fail again with the same input whatever the dependency's state: the
	// caller sets the input aside instead of trying again.
	Fatal
)

func (c Class) String() string {
	switch c {
	case Retryable:
		return "retryable"
	case Fatal:
		return "fatal"
	}
	return "none"
}

// ErrOutage is wrapped by the error Do returns when the dependency stayed down longer
// than Policy.MaxOutage.
var ErrOutage = errors.New("dependency down longer than limits.max_outage")

// Policy says how to wait between attempts and when to stop.
type Policy struct {
	// Initial is the first wait; each next one doubles up to Max. Each wait is jittered
	// (between half and all of it), so that members retrying together spread out.
	Initial, Max time.Duration
	// MaxOutage is how long from the first attempt Do keeps trying before it gives up
	// with ErrOutage (0: until ctx ends). An attempt that hangs is cut off at the bound.
	MaxOutage time.Duration
}

// Attempt describes one failed attempt, for the observer hook.
type Attempt struct {
	What  string
	N     int // 1 for the first failure
	Err   error
	Class Class
	// Elapsed is the time since the first attempt began.
	Elapsed time.Duration
	// Wait is how long until the next attempt (0 when Do gives up after this one).
	Wait time.Duration
}

// Do runs op until it succeeds and returns nil; or returns op's error at once when
// classify calls it Fatal; or an error wrapping ErrOutage (and the last error) when
// p.MaxOutage has passed; or an error wrapping ctx's error (and the last error) when ctx
// ends. observe, if not nil, sees every failed attempt. what names the work in errors.
func Do(ctx context.Context, p Policy, what string, classify func(error) Class, observe func(Attempt), op func(context.Context) error) error {
	if p.Initial <= 0 {
		p.Initial = 200 * time.Millisecond
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	began := time.Now()
	actx, cancel := ctx, context.CancelFunc(func() {})
	if p.MaxOutage > 0 {
		actx, cancel = context.WithDeadline(ctx, began.Add(p.MaxOutage))
	}
	defer cancel()
	delay := p.Initial
	for n := 1; ; n++ {
		err := op(actx)
		if err == nil {
			return nil
		}
		a := Attempt{What: what, N: n, Err: err, Class: classify(err), Elapsed: time.Since(began)}
		if ctx.Err() != nil {
			a.Class = Retryable
			observeIf(observe, a)
			return fmt.Errorf("%s: %w (last error: %w)", what, ctx.Err(), err)
		}
		if a.Class == Fatal {
			observeIf(observe, a)
			return err
		}
		wait := jitter(delay)
		if p.MaxOutage > 0 && a.Elapsed+wait >= p.MaxOutage {
			// No attempt fits before the bound: wait it out, so that giving up means the
			// dependency was down for all of it.
			observeIf(observe, a)
			if !sleep(ctx, p.MaxOutage-a.Elapsed) {
				return fmt.Errorf("%s: %w (last error: %w)", what, ctx.Err(), err)
			}
			return fmt.Errorf("%s: failing for %s: %w: %w", what, p.MaxOutage, ErrOutage, err)
		}
		a.Wait = wait
		observeIf(observe, a)
		if !sleep(ctx, wait) {
			return fmt.Errorf("%s: %w (last error: %w)", what, ctx.Err(), err)
		}
		delay = min(delay*2, p.Max)
	}
}

// sleep waits d and reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func observeIf(observe func(Attempt), a Attempt) {
	if observe != nil {
		observe(a)
	}
}

// jitter returns a wait between d/2 and d.
func jitter(d time.Duration) time.Duration {
	half := d / 2
	return half + rand.N(d-half+1)
}
