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
	p = p.withDefaults()
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
		delay = min(delay*2, p.Max)
		if p.MaxOutage > 0 && a.Elapsed+wait >= p.MaxOutage {
			// No attempt fits before the bound: wait it out, so that giving up means the
			// dependency was down for all of it.
			observeIf(observe, a)
			if !Sleep(ctx, p.MaxOutage-a.Elapsed) {
				return fmt.Errorf("%s: %w (last error: %w)", what, ctx.Err(), err)
			}
			return fmt.Errorf("%s: failing for %s: %w: %w", what, p.MaxOutage, ErrOutage, err)
		}
		a.Wait = wait
		observeIf(observe, a)
		if !Sleep(ctx, wait) {
			return fmt.Errorf("%s: %w (last error: %w)", what, ctx.Err(), err)
		}
	}
}

func (p Policy) withDefaults() Policy {
	if p.Initial <= 0 {
		p.Initial = 200 * time.Millisecond
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	return p
}

// Streak follows one dependency's failures across calls, for a loop that cannot wait
// inside Do: one that has other work to do between attempts (the pipeline's fetch loop
// closes idle windows on its tick), or whose attempts a library makes by itself and only
// reports (kafka-go's partition reader). It applies Do's policy to them: waits that
// double with jitter, Fatal errors returned at once, the outage bound, the observer.
//
// Such a loop often has no success to report (a quiet topic fetches nothing, failing or
// not), so failures further apart than Gap start a new streak, as Reset does. A Streak
// belongs to one goroutine at a time.
type Streak struct {
	Policy   Policy
	What     string
	Classify func(error) Class // nil: every error is Retryable
	Observe  func(Attempt)     // nil: none
	// Gap is the longest time between two failures of one streak (0: only Reset ends one).
	Gap time.Duration

	began, last time.Time
	n           int
	delay       time.Duration
}

// Fail records an attempt that failed with err at now. It returns how long to wait
// before the next attempt; or err itself when Classify calls it Fatal; or an error
// wrapping ErrOutage and err once the streak has lasted Policy.MaxOutage.
func (s *Streak) Fail(now time.Time, err error) (time.Duration, error) {
	p := s.Policy.withDefaults()
	if s.n == 0 || s.Gap > 0 && now.Sub(s.last) > s.Gap {
		s.began, s.n, s.delay = now, 0, p.Initial
	}
	s.n++
	s.last = now
	a := Attempt{What: s.What, N: s.n, Err: err, Class: Retryable, Elapsed: now.Sub(s.began)}
	if s.Classify != nil {
		a.Class = s.Classify(err)
	}
	if a.Class == Fatal {
		observeIf(s.Observe, a)
		return 0, err
	}
	if p.MaxOutage > 0 && a.Elapsed >= p.MaxOutage {
		observeIf(s.Observe, a)
		return 0, fmt.Errorf("%s: failing for %s: %w: %w", s.What, a.Elapsed.Round(time.Millisecond), ErrOutage, err)
	}
	a.Wait = jitter(s.delay)
	s.delay = min(s.delay*2, p.Max)
	if p.MaxOutage > 0 {
		// The last attempt is made at the bound, so that giving up means the dependency
		// failed for all of it.
		a.Wait = min(a.Wait, p.MaxOutage-a.Elapsed)
	}
	observeIf(s.Observe, a)
	return a.Wait, nil
}

// Reset ends the streak: the dependency answered.
func (s *Streak) Reset() { s.n = 0 }

// Sleep waits d (nothing when d is not positive) and reports whether ctx is still alive.
func Sleep(ctx context.Context, d time.Duration) bool {
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
